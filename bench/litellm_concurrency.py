"""LiteLLM at 50 agents: the proxy alone, with a null guardrail and with our hook, side by side (issue 12).

Real LiteLLM proxies (``litellm[proxy]==1.106.2``) run at once against one fake OpenAI upstream and one
engine, and rounds rotate between them (bench/_common.py's ``round_orders``), so a neighbour's burst hits
them alike:

* ``no-guardrail``: the proxy alone;
* ``null-hook``: two entries of a guardrail that does nothing (LiteLLM's own cost of running guardrail hooks);
* ``reference``: the seed document's two entries of our hook, ``--fail-mode`` (fail_open) and ``--timeout-s`` (1 s);
* ``builtin`` (with ``--builtin``): LiteLLM's own ``akto`` guardrail, the same entries.

For each engine behaviour, ``0 ms`` and ``100 ms`` (a ``fixed_delay`` fault on every engine call):
``--agents`` clients in a closed loop, ``--requests`` per round and proxy; req/s, p50/p99 and the proxy
process's CPU per request (user + system, median over rounds). The CPU per request is what a CPU-bound proxy's
throughput follows, whatever else the machine runs; the hook's share of the proxy's CPU is
(reference - no-guardrail) / reference, and the part that is our hook's own is (reference - null-hook) /
reference (target: under 10%). Then ``stalled`` (the ``hang`` fault): ``--agents`` clients at once,
``--stall-turns`` requests each, against each guarded proxy: the time to decide every request (p50 / p99 /
max); an answer other than the fail mode's (200 under fail_open, 503 under fail_closed) counts as an error.

Servers (proxies, engine, fake LLM) share core 0 and the load generator has core 1, as in litellm_overhead
(``--no-pin``: unpinned, for a machine busy with other work). Failed requests are counted and their causes printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from collections import Counter, defaultdict
from typing import Any, Mapping, Sequence

import psutil

from bench._common import (ENGINE_BEHAVIOURS, Check, Timings, add_concurrency_options, closed_loop, conclude, console,
                           figures, machine_notes, print_comparison, print_cpu, rounds_with_cpu, stall_check)
from bench.litellm_overhead import MODEL, cpu_seconds, proxy_configs, start_answering
from bench.load import http_session, post_call
from bench.servers import LOADGEN_CPU, SERVER_CPU, engine_process, pin_process, pin_self, server_pid
from harness.connectors import ConnectorConfig
from harness.fakes.llm import FakeLLMServer
from harness.hosts.litellm_proxy import LiteLLMProxy
from harness.payloads import ALLOW_PROMPT

ALONE, NULL, OURS, BUILTIN = "no-guardrail", "null-hook", "reference", "builtin"
TARGET_SHARE = 0.10
STALL_MARGIN_S = 0.25
BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": ALLOW_PROMPT}]}).encode()


#: Why requests failed, per proxy name (printed at the end: a count alone does not say whose fault it was).
FAILURES: dict[str, Counter[str]] = defaultdict(Counter)


async def _drive(proxy: LiteLLMProxy, agents: int, requests: int, expect_status: int = 200) -> Timings:
    """``requests`` chat completions through ``agents`` keep-alive clients at once (a closed loop)."""
    async with http_session(max_connections=agents) as session:
        post = post_call(session, f"{proxy.url}/v1/chat/completions", BODY,
                         {"content-type": "application/json", **proxy.auth_headers}, expect_status=expect_status)

        async def call() -> None:
            try:
                await post()
            except Exception as exc:
                FAILURES[proxy.name][f"{type(exc).__name__}: {str(exc)[-60:]}"] += 1
                raise

        return await closed_loop(call, requests=requests, concurrency=agents, name=proxy.name)


def _stall(proxies: Mapping[str, LiteLLMProxy], guarded: Sequence[str], args: argparse.Namespace) -> dict[str, Timings]:
    """Every guarded proxy under the stalled engine, one after another: ``agents`` x ``stall_turns`` requests."""
    expect = 200 if args.fail_mode == "fail_open" else 503
    return {name: asyncio.run(_drive(proxies[name], args.agents, args.agents * args.stall_turns, expect))
            for name in guarded}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench litellm_concurrency", description=__doc__.split("\n")[0])
    add_concurrency_options(parser, "guardrails")
    parser.add_argument("--requests", type=int, default=300, help="requests per round and proxy")
    parser.add_argument("--no-pin", action="store_true",
                        help="leave the processes unpinned (a machine busy with other work starves a pinned core)")
    parser.add_argument("--builtin", action="store_true", help="add LiteLLM's built-in akto guardrail")
    args = parser.parse_args(argv)

    console.print(machine_notes())
    report: dict[str, Any] = {"agents": args.agents, "fail_mode": args.fail_mode, "throughput": {}, "stall": {}}
    checks: list[Check] = []
    variants = (ALONE, NULL, OURS, *((BUILTIN,) if args.builtin else ()))
    guarded = [name for name in variants if name in (OURS, BUILTIN)]
    config = ConnectorConfig(fail_mode=args.fail_mode, timeout_s=args.timeout_s)
    engine_key = "bench-" + secrets.token_urlsafe(16)
    with engine_process() as engine, FakeLLMServer() as llm:
        assert engine.url is not None
        proxies = {name: LiteLLMProxy(built, env={"AKTO_API_KEY": engine_key}, name=f"bench-litellm-{name}")
                   for name, built in proxy_configs(engine.url, llm.url, config, variants).items()}
        try:
            start_answering(proxies)
            if not args.no_pin:
                pids = [server_pid(engine), llm.process.proc.pid] + [p.process.proc.pid for p in proxies.values()]  # type: ignore[union-attr]
                pinned = all([*(pin_process(pid, SERVER_CPU) for pid in pids), pin_self(LOADGEN_CPU)])
                console.print(f"servers pinned to cpu {SERVER_CPU}, load generator to cpu {LOADGEN_CPU}: {pinned}")
            processes = {name: psutil.Process(proxy.process.proc.pid) for name, proxy in proxies.items()}  # type: ignore[union-attr]
            admin = engine.client()
            for behaviour in args.engine or list(ENGINE_BEHAVIOURS):
                admin.reset()
                if ENGINE_BEHAVIOURS[behaviour] is not None:
                    admin.add_fault(ENGINE_BEHAVIOURS[behaviour])
                merged, cpu = rounds_with_cpu(
                    list(proxies), args.rounds, lambda name: asyncio.run(_drive(proxies[name], args.agents, args.requests)),
                    lambda name: cpu_seconds(processes[name]))
                print_comparison(merged, baseline=ALONE, title=f"engine {behaviour}, {args.agents} agents")
                print_cpu(cpu, ALONE)
                report["throughput"][behaviour] = figures(merged, cpu)
                hook_share = (cpu[OURS] - cpu[ALONE]) / cpu[OURS]
                own_share = (cpu[OURS] - cpu[NULL]) / cpu[OURS]
                console.print(f"  guardrail hooks' share of the proxy's CPU: {hook_share:.1%} "
                              f"(LiteLLM's hook dispatch {(cpu[NULL] - cpu[ALONE]) / cpu[OURS]:.1%}, our hook's own {own_share:.1%})")
                report["throughput"][behaviour]["shares"] = {"hooks": hook_share, "ours": own_share}
                errors = sum(t.errors for t in merged.values())
                checks.append(Check(f"our hook's own share of the proxy's CPU (engine {behaviour})", f"{own_share:.1%}",
                                    f"< {TARGET_SHARE:.0%}", own_share < TARGET_SHARE))
                checks.append(Check(f"no errors (engine {behaviour})", f"{errors}", "0", errors == 0))
            if not args.no_stall:
                admin.reset()
                admin.add_fault({"type": "hang", "max_ms": 120_000})
                stalled = _stall(proxies, guarded, args)
                admin.reset()
                report["stall"] = figures(stalled)
                print_comparison(stalled, baseline=OURS, title=f"time to decide, engine stalled, timeout {args.timeout_s}s, "
                                                              f"{args.fail_mode}")
                checks.append(stall_check("our hook", stalled[OURS], args.timeout_s, STALL_MARGIN_S))
        finally:
            for proxy in proxies.values():
                proxy.stop()
    for name, reasons in FAILURES.items():
        console.print(f"{name} failed requests: {dict(reasons)}")
    report["failures"] = {name: dict(reasons) for name, reasons in FAILURES.items()}
    return conclude(checks, report, args.json, args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
