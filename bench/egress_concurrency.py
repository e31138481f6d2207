"""Egress at 50 agents: mitmdump alone, with our addon, and with a third-party addon, side by side (issue 12).

Every proxy runs at once (the test router re-targets api.openai.com to the fake LLM) and rounds rotate
between them, so a neighbour's burst hits them alike. For each engine behaviour:

* ``0 ms`` and ``100 ms`` (a ``fixed_delay`` fault on every engine call): ``--agents`` clients in a closed
  loop for ``--seconds`` per round; req/s, p50/p99 and the proxy process's CPU per request (user +
  system). The CPU ratio is the throughput ratio a CPU-bound proxy reaches, whatever else the machine runs.
* ``stalled`` (the ``hang`` fault): ``--agents`` clients at once, ``--stall-turns`` requests each, against
  each guarded proxy: the time to decide every request (p50 / p99 / max); an answer other than the fail
  mode's (200 under fail_open, 503 under fail_closed) counts as an error. mitmdump alone
  has no engine to wait on, so it has no row there.

``--third-party-addon FILE`` adds the addon file a user has (e.g. Akto's published ``akto_guardrails.py``);
it is configured through the same environment variables as ours (harness/connectors/egress.py) and never
committed here. Our addon runs with ``--fail-mode`` (fail_open) and ``--timeout-s`` (1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Sequence

import psutil

from bench._common import (ENGINE_BEHAVIOURS, Check, add_concurrency_options, conclude, console, figures, machine_notes,
                           print_comparison, print_cpu, rounds_with_cpu, stall_check)
from bench.rawhttp import RawHttpPool
from bench.servers import engine_process
from harness.connectors.base import ConnectorConfig
from harness.connectors.egress import addon_env
from harness.fakes.llm import FakeLLMServer
from harness.hosts.mitmdump import EGRESS_ADDON, ROUTE_ADDON, MitmDump
from harness.payloads import ALLOW_PROMPT
from harness.timing import Timings

TARGET_CPU_RATIO = 0.70
STALL_MARGIN_S = 0.25
BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ALLOW_PROMPT}]}).encode()
ALONE, OURS, THIRD_PARTY = "mitmdump", "mitmdump+addon", "mitmdump+third-party"


class ProxyPool(RawHttpPool):
    """Keep-alive connections to the proxy, each request addressed to the provider's host."""

    def request_bytes(self, body: bytes, content_type: str = "application/json", method: str = "POST") -> bytes:
        head = (f"{method} /v1/chat/completions HTTP/1.1\r\nhost: api.openai.com\r\ncontent-type: {content_type}\r\n"
                f"content-length: {len(body)}\r\n\r\n")
        return head.encode("latin-1") + body


async def _drive(proxy_url: str, agents: int, *, expect_status: int = 200, seconds: float | None = None,
                 turns: int | None = None) -> Timings:
    """``agents`` clients at once, each in a closed loop for ``seconds`` or for ``turns`` requests: one timing
    per request; a failed request (or one answered with another status than ``expect_status``) is counted
    as an error."""
    timings = Timings()
    async with ProxyPool(proxy_url, agents) as pool:
        call = pool.caller(BODY, expect_status=expect_status)
        end = time.perf_counter() + seconds if seconds is not None else None

        def more(sent: int) -> bool:
            return time.perf_counter() < end if end is not None else sent < (turns or 0)

        async def agent() -> None:
            sent = 0
            while more(sent):
                sent += 1
                started = time.perf_counter_ns()
                try:
                    await call()
                except Exception:  # a failed request is a counted outcome
                    timings.record_error()
                    continue
                timings.record_ns(time.perf_counter_ns() - started)

        began = time.perf_counter()
        await asyncio.gather(*(agent() for _ in range(agents)))
        timings.wall_s = time.perf_counter() - began
    return timings


def _cpu_s(proxy: MitmDump) -> float:
    times = psutil.Process(proxy.process.proc.pid).cpu_times()  # type: ignore[union-attr]
    return times.user + times.system


def _throughput(proxies: dict[str, MitmDump], args: argparse.Namespace) -> tuple[dict[str, Timings], dict[str, float]]:
    """Rotating rounds over the proxies: merged timings and the median CPU ms per request."""
    return rounds_with_cpu(list(proxies), args.rounds,
                           lambda name: asyncio.run(_drive(proxies[name].proxy_url, args.agents, seconds=args.seconds)),
                           lambda name: _cpu_s(proxies[name]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench egress_concurrency", description=__doc__.split("\n")[0])
    add_concurrency_options(parser, "addons")
    parser.add_argument("--seconds", type=float, default=6, help="per round and proxy")
    parser.add_argument("--third-party-addon", type=Path, help="another egress addon file to compare (yours)")
    args = parser.parse_args(argv)
    if args.third_party_addon is not None and not args.third_party_addon.is_file():
        parser.error(f"--third-party-addon {args.third_party_addon}: no such file")

    console.print(machine_notes())
    report: dict[str, Any] = {"agents": args.agents, "throughput": {}, "stall": {}}
    checks: list[Check] = []
    with engine_process() as engine, FakeLLMServer() as llm, ExitStack() as stack:
        options = {"route_map": f"api.openai.com=http://127.0.0.1:{llm.port}", "connection_strategy": "lazy",
                   "flow_detail": 0}
        env = addon_env(ConnectorConfig(fail_mode=args.fail_mode, timeout_s=args.timeout_s), engine.url)
        addons = {OURS: EGRESS_ADDON, **({THIRD_PARTY: args.third_party_addon} if args.third_party_addon else {})}
        proxies = {ALONE: stack.enter_context(MitmDump([ROUTE_ADDON], options=options))}
        for name, addon in addons.items():
            proxies[name] = stack.enter_context(MitmDump([addon, ROUTE_ADDON], options=options, env=env))
        admin = engine.client()
        for behaviour in args.engine or list(ENGINE_BEHAVIOURS):
            admin.reset()
            if ENGINE_BEHAVIOURS[behaviour] is not None:
                admin.add_fault(ENGINE_BEHAVIOURS[behaviour])
            merged, cpu = _throughput(proxies, args)
            print_comparison(merged, baseline=ALONE, title=f"engine {behaviour}, {args.agents} agents")
            print_cpu(cpu, ALONE)
            report["throughput"][behaviour] = figures(merged, cpu)
            if behaviour == "0 ms":
                ratio = cpu[ALONE] / cpu[OURS]
                checks.append(Check("our addon keeps mitmdump's CPU-bound throughput (engine 0 ms)",
                                    f"{ratio:.2f}", f">= {TARGET_CPU_RATIO}", ratio >= TARGET_CPU_RATIO))
        if not args.no_stall:
            admin.reset()
            admin.add_fault({"type": "hang", "max_ms": 120_000})
            stalled: dict[str, Timings] = {}
            for name in addons:
                expect = 200 if args.fail_mode == "fail_open" else 503
                timings = asyncio.run(_drive(proxies[name].proxy_url, args.agents, turns=args.stall_turns, expect_status=expect))
                stalled[name] = timings
            report["stall"] = figures(stalled)
            print_comparison(stalled, baseline=OURS, title=f"time to decide, engine stalled, timeout {args.timeout_s}s")
            checks.append(stall_check("our addon", stalled[OURS], args.timeout_s, STALL_MARGIN_S))
            admin.reset()
    return conclude(checks, report, args.json, args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
