"""Memory: the engine's resident size stays flat across 100,000 requests with the journal on (issue 2).

The journal and the ingest records are bounded ring buffers; this checks that nothing else grows either.
After a warm-up that fills the rings (30,000 requests: 10,000 journal entries kept, a third of the calls
also ask for ingestion), RSS is sampled every 10,000 requests over 100,000 more. The calls mix allow,
block and redact verdicts with 1,000 distinct payloads. The raw ASGI app runs the same sequence side by side
as the reference for what the server stack itself does with memory.

Target: engine RSS after the run within 10% of RSS after warm-up (and no sample above it).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import psutil
import uvloop
from rich.table import Table

from akto_wire import FLAG_ON, GUARDRAILS, HTTP_PROXY_PATH, INGEST_DATA
from bench._common import Check, cpu_steal_note, console, machine_notes, print_checks
from bench.load import closed_loop
from harness.payloads import ALLOW_PROMPT, BLOCK_PROMPT, REDACT_PROMPT, engine_envelope_template, fill
from bench.rawhttp import RawHttpPool
from bench.servers import LOADGEN_CPU, SERVER_CPU, engine_beside_raw_app, server_pid

TARGET_GROWTH = 0.10
MB = 1024 * 1024


def distinct_bodies(count: int) -> list[bytes]:
    """``count`` different envelopes: allow / block / redact prompts, a third asking for ingestion."""
    template = engine_envelope_template()
    bodies = []
    for i in range(count):
        prompt = (ALLOW_PROMPT, BLOCK_PROMPT, REDACT_PROMPT)[i % 3] + f" Request number {i}."
        body = json.loads(fill(template, prompt))
        body[GUARDRAILS] = FLAG_ON
        if i % 3 == 1:
            body[INGEST_DATA] = FLAG_ON
        bodies.append(json.dumps(body).encode())
    return bodies


@dataclass
class MemoryRun:
    name: str
    at_start: int = 0
    after_warmup: int = 0
    samples: list[tuple[int, int]] = field(default_factory=list)  # (requests after warm-up, rss bytes)
    errors: int = 0

    @property
    def final(self) -> int:
        return self.samples[-1][1]

    @property
    def growth(self) -> float:
        return self.final / self.after_warmup - 1

    @property
    def max_growth(self) -> float:
        return max(rss for _, rss in self.samples) / self.after_warmup - 1


async def _drive(url: str, pid: int, name: str, bodies: list[bytes], *, warmup: int, total: int, step: int,
                 connections: int) -> MemoryRun:
    process = psutil.Process(pid)
    run = MemoryRun(name, at_start=process.memory_info().rss)
    async with RawHttpPool(url, connections) as pool:
        call = pool.cycling_caller(bodies)
        run.errors += (await closed_loop(call, requests=warmup, concurrency=connections)).errors
        run.after_warmup = process.memory_info().rss
        done = 0
        while done < total:
            batch = min(step, total - done)
            run.errors += (await closed_loop(call, requests=batch, concurrency=connections)).errors
            done += batch
            run.samples.append((done, process.memory_info().rss))
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench engine_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=30_000)
    parser.add_argument("--step", type=int, default=10_000, help="requests between RSS samples")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    console.rule(f"engine memory across {args.requests:,} requests (journal on)")
    console.print(machine_notes())
    bodies = distinct_bodies(1_000)
    path = HTTP_PROXY_PATH
    runs: list[MemoryRun] = []
    journal_entries = None
    with engine_beside_raw_app(path, bodies[0]) as sides:
        engine, raw_proc, raw_url, pinned = sides.engine, sides.raw, sides.raw_url, sides.pinned
        sides.answer.raise_for_status()
        console.print(f"servers pinned to cpu {SERVER_CPU}, load generator to cpu {LOADGEN_CPU}: {pinned}")
        for name, url, pid in (("raw", raw_url + path, server_pid(raw_proc)),
                               ("engine", engine.url + path, server_pid(engine))):
            runs.append(uvloop.run(_drive(url, pid, name, bodies, warmup=args.warmup, total=args.requests,
                                          step=args.step, connections=args.connections)))
        with engine.client() as admin:
            journal_entries = admin.count()

    table = Table(title=f"RSS in MB after warm-up ({args.warmup:,} requests) and every {args.step:,} requests",
                  title_justify="left")
    table.add_column("requests", justify="right")
    for run in runs:
        table.add_column(f"{run.name} MB", justify="right")
        table.add_column(f"{run.name} vs warm-up", justify="right")
    table.add_row("idle, before warm-up", *[c for run in runs for c in (f"{run.at_start / MB:.1f}", "")])
    table.add_row("0", *[c for run in runs for c in (f"{run.after_warmup / MB:.1f}", "1.00x")])
    for i, (done, _) in enumerate(runs[0].samples):
        table.add_row(f"{done:,}", *[c for run in runs for c in
                                     (f"{run.samples[i][1] / MB:.1f}", f"{run.samples[i][1] / run.after_warmup:.3f}x")])
    console.print(table)
    console.print(f"engine journal entries kept in the default namespace: {journal_entries}")
    engine = next(r for r in runs if r.name == "engine")
    console.print(cpu_steal_note())
    ok = print_checks([
        Check("engine RSS after the run vs after warm-up", f"{engine.growth:+.1%} ({engine.after_warmup / MB:.1f} -> "
              f"{engine.final / MB:.1f} MB)", f"within {TARGET_GROWTH:.0%}", abs(engine.growth) <= TARGET_GROWTH),
        Check("engine RSS peak vs after warm-up", f"{engine.max_growth:+.1%}", f"<= {TARGET_GROWTH:.0%}",
              engine.max_growth <= TARGET_GROWTH),
        Check("no errors", f"{sum(r.errors for r in runs)}", "0", all(r.errors == 0 for r in runs)),
    ])
    if args.json:
        args.json.write_text(json.dumps({"notes": machine_notes(), "steal": cpu_steal_note(), "journal_entries": journal_entries, "runs": [
            {"name": r.name, "at_start": r.at_start, "after_warmup": r.after_warmup, "samples": r.samples, "growth": r.growth,
             "max_growth": r.max_growth, "errors": r.errors} for r in runs]}, indent=2))
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
