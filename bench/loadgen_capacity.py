"""How many requests per second one Locust process drives on one core: when to add ``--worker``s.

``python -m bench loadgen_capacity`` runs the shipped ``target`` locustfiles as users run them (``locust -f``,
the engine's request envelope as body template) pinned to core 1 with ``taskset``, against
``bench/raw_app.py`` on core 0 answering the engine's allow verdict (a server far faster than the generator, so the generator is what is measured):
the closed loop (FastHttpUser, ``--users`` users) and the open model at rising ``--arrival-rate`` (one
user). An open-model rate is kept up when the requests sent match the schedule and the p99 measured from
the scheduled start stays low; past capacity the schedule slips and that p99 grows.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import httpx
from rich.table import Table

from akto_wire import HTTP_PROXY_PATH
from bench._common import console, machine_notes
from bench.servers import LOADGEN_CPU, SERVER_CPU, engine_process, pin_process, raw_app_process
from harness import resources
from harness.payloads import ENGINE_QUERY, engine_chat_body, engine_envelope_template


def run_locust(name: str, url: str, seconds: int, workdir: Path, *extra: str) -> tuple[int, float]:
    """One pinned ``locust -f`` run; returns (requests answered, p99 ms) from the exact-timings CSV."""
    out = workdir / f"{name}.csv"
    (workdir / "template.json").write_text(engine_envelope_template())
    argv = [sys.executable, "-m", "locust", "-f", str(resources.locustfiles()[name]), "--headless",
            "--target-url", f"{url}{HTTP_PROXY_PATH}?{ENGINE_QUERY}", "--body-template", str(workdir / "template.json"),
            "-t", str(seconds), "--only-summary", "--akto-csv", str(out), *extra]
    if shutil.which("taskset"):
        argv = ["taskset", "-c", str(LOADGEN_CPU), *argv]
    subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False, cwd=workdir)
    rows = list(csv.DictReader(out.open())) if out.exists() else []
    count = sum(int(r["count"]) for r in rows)
    p99 = max((float(r["p99_ms"]) for r in rows), default=float("nan"))
    return count, p99


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench loadgen_capacity", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--users", type=int, default=50, help="closed-loop users (default 50)")
    parser.add_argument("--rates", default="250,500,1000,2000", help="open-model arrival rates to try")
    args = parser.parse_args(argv)
    console.print(machine_notes())
    with tempfile.TemporaryDirectory() as tmp, engine_process() as engine:
        workdir = Path(tmp)
        verdict = httpx.post(f"{engine.url}{HTTP_PROXY_PATH}?{ENGINE_QUERY}", content=engine_chat_body(),
                             headers={"content-type": "application/json"}, timeout=10).content
        (workdir / "verdict.json").write_bytes(verdict)
        raw, url = raw_app_process(workdir / "verdict.json")
        with raw:
            pin_process(raw.proc.pid, SERVER_CPU)
            table = Table(title=f"one Locust process on one core, {args.seconds} s runs", title_justify="left")
            for header in ("generator", "asked", "req/s sent", "p99 ms", "kept up"):
                table.add_column(header, justify="left" if header == "generator" else "right")
            count, p99 = run_locust("target", url, args.seconds, workdir, "-u", str(args.users), "-r", str(args.users))
            table.add_row("closed loop (FastHttpUser)", f"{args.users} users", f"{count / args.seconds:,.0f}",
                          f"{p99:.1f}", "-")
            for rate in (float(r) for r in args.rates.split(",")):
                count, p99 = run_locust("target_open", url, args.seconds, workdir, "-u", "1", "--arrival-rate", str(rate))
                sent = count / args.seconds
                table.add_row("open model", f"{rate:,.0f}/s", f"{sent:,.0f}", f"{p99:.1f}",
                              "yes" if sent >= 0.97 * rate and p99 < 50 else "no")
            console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
