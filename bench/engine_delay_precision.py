"""Delay precision: a 200 ms ``fixed_delay`` fault at 500 concurrent requests (issue 2, Performance).

A fake that holds a worker per delayed call serves delays in waves (WireMock's default serves 47 req/s
here); the engine awaits the delay, so 500 concurrent delayed calls should all finish in about one delay.
Compared side by side with the ceiling of the stack: :mod:`bench.raw_app` doing a bare ``asyncio.sleep``
of the same length. Servers on core 0; the load generator on core 1 is :mod:`bench.rawhttp` on uvloop
(500 keep-alive connections, exact per-request timings, tens of microseconds of client cost per request:
a full Python client would queue a 500-request burst for ~100 ms itself); rounds alternate servers.

Target: engine p99 < 215 ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import httpx
import uvloop

from bench._common import Check, Variant, console, interleave_async, machine_notes, print_checks, print_comparison
from bench.load import closed_loop
from bench.rawhttp import RawHttpPool
from bench.payloads import ALLOW_PROMPT, ENGINE_QUERY, engine_chat_body
from bench.servers import LOADGEN_CPU, SERVER_CPU, engine_process, pin_process, pin_self, raw_app_process, server_pid
from mock_akto.wire import HTTP_PROXY_PATH

HEADERS = {"content-type": "application/json"}
TARGET_P99_MS = 215.0
#: asyncio timers may fire up to a clock tick early (uvloop rounds to 1 ms): a 199.6 ms answer is on time.
TIMER_SLACK_MS = 1.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench engine_delay_precision", description=__doc__.split("\n")[0])
    parser.add_argument("--delay-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--waves", type=int, default=6, help="requests per round = concurrency x waves (default 6)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    target_p99 = args.delay_ms + (TARGET_P99_MS - 200.0)

    console.rule(f"delay precision: {args.delay_ms} ms fixed_delay at {args.concurrency} concurrent requests")
    console.print(machine_notes())
    body = engine_chat_body(ALLOW_PROMPT)
    path = f"{HTTP_PROXY_PATH}?{ENGINE_QUERY}"
    with engine_process() as engine, tempfile.TemporaryDirectory() as tmp:
        answer = httpx.post(engine.url + path, content=body, headers=HEADERS, timeout=10, trust_env=False)
        answer.raise_for_status()
        verdict_file = Path(tmp) / "verdict.json"
        verdict_file.write_bytes(answer.content)
        with engine.client() as admin:
            admin.add_fault({"type": "fixed_delay", "ms": args.delay_ms})
        raw_proc, raw_url = raw_app_process(verdict_file, delay_ms=args.delay_ms)
        with raw_proc:
            pinned = all([pin_process(server_pid(engine), SERVER_CPU), pin_process(server_pid(raw_proc), SERVER_CPU),
                          pin_self(LOADGEN_CPU)])
            console.print(f"servers pinned to cpu {SERVER_CPU}, load generator to cpu {LOADGEN_CPU}: {pinned}")
            requests = args.concurrency * args.waves

            async def measure() -> dict:
                async with RawHttpPool(raw_url + path, args.concurrency) as raw_pool, \
                        RawHttpPool(engine.url + path, args.concurrency) as engine_pool:
                    raw_call, engine_call = raw_pool.caller(body), engine_pool.caller(body)
                    variants = [
                        Variant(f"asyncio.sleep({args.delay_ms} ms) raw app",
                                lambda: closed_loop(raw_call, requests=requests, concurrency=args.concurrency)),
                        Variant(f"engine fixed_delay {args.delay_ms} ms",
                                lambda: closed_loop(engine_call, requests=requests, concurrency=args.concurrency)),
                    ]
                    return await interleave_async(variants, rounds=args.rounds, warmup_rounds=1)

            results = uvloop.run(measure())

    rows = print_comparison(results, title=f"{args.concurrency} concurrent, {args.rounds} rounds x {requests} requests "
                            "(exact per-request timings)", percentiles=(50.0, 99.0, 99.9))
    engine_name = next(name for name in results if name.startswith("engine"))
    engine_summary = results[engine_name].summary()
    ideal_rps = args.concurrency / (args.delay_ms / 1000)
    console.print(f"ideal throughput at this concurrency: {ideal_rps:,.0f} req/s (every call exactly {args.delay_ms} ms)")
    ok = print_checks([
        Check(f"engine p99 of a {args.delay_ms} ms delay at {args.concurrency} concurrent", f"{engine_summary.p99:.1f} ms",
              f"< {target_p99:g} ms", engine_summary.p99 < target_p99),
        Check("engine never answers early", f"min {engine_summary.min_ms:.1f} ms",
              f">= {args.delay_ms - TIMER_SLACK_MS:g} ms (event-loop timer slack {TIMER_SLACK_MS:g} ms)",
              engine_summary.min_ms >= args.delay_ms - TIMER_SLACK_MS),
        Check("no errors", f"{sum(t.errors for t in results.values())}", "0", all(t.errors == 0 for t in results.values())),
    ])
    if args.json:
        args.json.write_text(json.dumps({"notes": machine_notes(), "rows": rows}, indent=2, default=str))
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
