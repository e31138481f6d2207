"""Engine throughput and p99 against the ceiling of its own server stack (issue 2, Performance).

Two servers on core 0, each one uvicorn process with uvloop + httptools: the engine (default policies,
journal on) and :mod:`bench.raw_app` answering the engine's own verdict bytes. Load comes from core 1:

* closed loop: ``wrk``, 50 connections, a typical LiteLLM-style chat envelope (guardrails=true); rounds
  alternate raw / engine / engine with a distinct prompt per request (the engine memoises answers to
  repeated payloads, so the third variant shows the full policy-evaluation cost), so that noise from
  other work on the machine hits all alike;
* fixed rate: 500 req/s open loop (:mod:`bench.rawhttp` on uvloop, latency from each request's scheduled
  start, exact per-request timings), because Debian ships no ``wrk2``; the same three variants.

The server's CPU seconds per request are read from /proc around every round as well: on a shared machine
wall-clock req/s drops whenever a neighbour takes the core, while CPU per request does not, and a
saturated single-process server's req/s is exactly 1 / (CPU per request).

Targets: engine >= 70% of raw req/s; engine p99 at 500 req/s < 10 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Sequence

import uvloop

from akto_wire import HTTP_PROXY_PATH
from bench._common import Check, cpu_steal_note, Summary, Timings, console, machine_notes, print_checks, print_comparison, round_orders
from bench.load import open_loop
from bench.rawhttp import RawHttpPool
from harness.payloads import ALLOW_PROMPT, ENGINE_QUERY, engine_chat_body
from bench.servers import LOADGEN_CPU, SERVER_CPU, cpu_seconds, engine_beside_raw_app, server_pid
from bench.wrk import WrkResult, require_wrk, run_wrk

HEADERS = {"content-type": "application/json"}
TARGET_RATIO = 0.70
#: A third closed-loop variant: the engine with a different prompt on every request (no memo can help).
DISTINCT = "engine, distinct prompts"
DISTINCT_SLOT = "DISTINCTSLOT"
TARGET_FIXED_RATE_P99_MS = 10.0
#: Keep-alive connections of the fixed-rate generator (an open loop: enough that a slow answer never
#: makes the next scheduled request wait for a connection, which would still be counted as latency).
FIXED_RATE_CONNECTIONS = 64


def _cpu_us_per_request(runs: list[WrkResult], cpu_s: list[float]) -> float:
    return sum(cpu_s) * 1e6 / sum(r.requests for r in runs)


def _closed_loop_summary(runs: list[WrkResult]) -> Summary:
    """Throughput over every round; percentiles are the median of the rounds' exact wrk percentiles."""
    requests = sum(r.requests for r in runs)
    wall = sum(r.duration_s for r in runs)
    pct = {p: statistics.median(r.summary.percentiles_ms[p] for r in runs) for p in (50.0, 90.0, 99.0, 99.9)}
    return Summary(count=requests, percentiles_ms=pct, min_ms=min(r.summary.min_ms for r in runs),
                   max_ms=max(r.summary.max_ms for r in runs),
                   mean_ms=statistics.fmean(r.summary.mean_ms for r in runs),
                   errors=sum(r.errors + r.non_2xx for r in runs), wall_s=wall, exact=True)


async def _fixed_rate(variants: dict[str, tuple[str, list[bytes]]], *, rate: float, seconds: float,
                      rounds: int) -> dict[str, Timings]:
    """Open loop at ``rate`` over keep-alive connections of :class:`RawHttpPool` (tens of microseconds of
    client CPU per request, so the timings are the server's); each variant cycles through its bodies.

    Every round opens fresh connections and warms them for a second first (thrown away): uvicorn closes
    connections idle for 5 s, and re-opening them mid-round cost the first calls tens of milliseconds."""
    totals = {name: Timings(name=name) for name in variants}
    for order in round_orders(list(variants), rounds):
        for name in order:
            url, bodies = variants[name]
            async with RawHttpPool(url, FIXED_RATE_CONNECTIONS) as pool:
                call = pool.cycling_caller(bodies)
                await open_loop(call, rate=rate, duration_s=1.0)
                totals[name].merge(await open_loop(call, rate=rate, duration_s=seconds, name=name))
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench engine_throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk round (default 5)")
    parser.add_argument("--rounds", type=int, default=4, help="closed-loop rounds per server (default 4)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=float, default=500.0, help="fixed-rate requests per second (default 500)")
    parser.add_argument("--rate-seconds", type=float, default=10.0, help="seconds per fixed-rate round (default 10)")
    parser.add_argument("--rate-rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    require_wrk()

    console.rule("engine throughput vs raw ASGI ceiling")
    console.print(machine_notes())
    body = engine_chat_body(ALLOW_PROMPT)
    distinct_body = engine_chat_body(f"{ALLOW_PROMPT} Ticket {DISTINCT_SLOT}.")
    path = f"{HTTP_PROXY_PATH}?{ENGINE_QUERY}"
    with engine_beside_raw_app(path, body) as sides:
        engine, raw_proc, raw_url, answer, pinned = sides.engine, sides.raw, sides.raw_url, sides.answer, sides.pinned
        if answer.status_code != 200 or answer.json()["data"]["guardrailsResult"]["Allowed"] is not True:
            sys.exit(f"the engine did not allow the benchmark prompt: {answer.status_code} {answer.text[:300]}")
        console.print(f"servers pinned to cpu {SERVER_CPU}, load generators to cpu {LOADGEN_CPU}: {pinned}; "
                      f"body {len(body)} B, answer {len(answer.content)} B")
        urls = {"raw": raw_url + path, "engine": engine.url + path}
        # name -> (url, body, slot replaced by a per-request counter or None)
        closed_variants = {"raw": (urls["raw"], body, None), "engine": (urls["engine"], body, None),
                           DISTINCT: (urls["engine"], distinct_body, DISTINCT_SLOT)}
        processes = {"raw": server_pid(raw_proc), "engine": server_pid(engine)}
        processes[DISTINCT] = processes["engine"]
        for url, variant_body, slot in closed_variants.values():  # warm-up, thrown away
            run_wrk(url, body=variant_body, headers=HEADERS, connections=args.connections, duration_s=2,
                    cpu=LOADGEN_CPU, distinct_slot=slot)
        runs: dict[str, list[WrkResult]] = {name: [] for name in closed_variants}
        cpu: dict[str, list[float]] = {name: [] for name in closed_variants}
        for order in round_orders(list(closed_variants), args.rounds):
            for name in order:
                url, variant_body, slot = closed_variants[name]
                before = cpu_seconds(processes[name])
                runs[name].append(run_wrk(url, body=variant_body, headers=HEADERS, connections=args.connections,
                                          duration_s=args.duration, cpu=LOADGEN_CPU, distinct_slot=slot))
                cpu[name].append(cpu_seconds(processes[name]) - before)
        distinct_bodies = [distinct_body.replace(DISTINCT_SLOT.encode(), str(i).encode())
                           for i in range(int(args.rate * args.rate_seconds * (args.rate_rounds + 1)))]
        fixed = uvloop.run(_fixed_rate({"raw": (urls["raw"], [body]), "engine": (urls["engine"], [body]),
                                        DISTINCT: (urls["engine"], distinct_bodies)},
                                       rate=args.rate, seconds=args.rate_seconds, rounds=args.rate_rounds))

    closed = {name: _closed_loop_summary(r) for name, r in runs.items()}
    closed_rows = print_comparison(closed, baseline="raw",
                                   title=f"closed loop: wrk, {args.connections} connections, {args.rounds} x {args.duration} s "
                                   "(percentiles: median of rounds)")
    for name, r in runs.items():
        console.print(f"  {name} rounds req/s: " + ", ".join(f"{x.rps:,.0f}" for x in r))
    fixed_rows = print_comparison(fixed, baseline="raw", title=f"fixed rate: {args.rate:g} req/s open loop, "
                                  f"{args.rate_rounds} x {args.rate_seconds:g} s (exact per-request timings)",
                                  percentiles=(50.0, 99.0, 99.9))
    ratio = closed["engine"].rps / closed["raw"].rps
    cpu_us = {name: _cpu_us_per_request(runs[name], cpu[name]) for name in runs}
    cpu_ratio = cpu_us["raw"] / cpu_us["engine"]
    busy = {name: sum(cpu[name]) / sum(r.duration_s for r in runs[name]) for name in runs}
    console.print("server CPU per request (user+system, all threads; contention-proof: a saturated server's "
                  "req/s is 1 / this):")
    for name, us in cpu_us.items():
        console.print(f"  {name}: {us:.1f} us/request, raw/this {cpu_us['raw'] / us:.0%}, core busy {busy[name]:.0%}")
    engine_p99 = fixed["engine"].summary().p99
    console.print(cpu_steal_note())
    ok = print_checks([
        Check("engine req/s vs raw ASGI", f"{ratio:.0%} ({closed['engine'].rps:,.0f} vs {closed['raw'].rps:,.0f} req/s)",
              f">= {TARGET_RATIO:.0%}", ratio >= TARGET_RATIO),
        Check("engine CPU cost per request vs raw (req/s ratio on an otherwise idle core)",
              f"{cpu_ratio:.0%} ({cpu_us['raw']:.1f} vs {cpu_us['engine']:.1f} us)", f">= {TARGET_RATIO:.0%}",
              cpu_ratio >= TARGET_RATIO),
        Check(f"engine p99 at {args.rate:g} req/s", f"{engine_p99:.2f} ms", f"< {TARGET_FIXED_RATE_P99_MS:g} ms",
              engine_p99 < TARGET_FIXED_RATE_P99_MS),
        Check("no errors", f"{sum(s.errors for s in closed.values()) + sum(t.errors for t in fixed.values())} errors",
              "0", all(s.errors == 0 for s in closed.values()) and all(t.errors == 0 for t in fixed.values())),
    ])
    if args.json:
        args.json.write_text(json.dumps({"notes": machine_notes(), "steal": cpu_steal_note(), "closed_loop": closed_rows, "fixed_rate": fixed_rows,
                                         "ratio": ratio, "distinct_ratio": closed[DISTINCT].rps / closed["raw"].rps, "cpu_us_per_request": cpu_us, "cpu_ratio": cpu_ratio, "rounds_rps": {n: [x.rps for x in r] for n, r in runs.items()}},
                                        indent=2, default=str))
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
