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

Servers (proxies, engine, fake LLM) share core 0 and the load generator has core 1, as in litellm_overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
from pathlib import Path
from typing import Any, Mapping, Sequence

import psutil

from bench._common import Check, Timings, closed_loop, console, machine_notes, print_checks, print_comparison, round_orders
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
ENGINE_FAULTS: dict[str, dict[str, Any] | None] = {"0 ms": None, "100 ms": {"type": "fixed_delay", "ms": 100}}


async def _drive(proxy: LiteLLMProxy, agents: int, requests: int, expect_status: int = 200) -> Timings:
    """``requests`` chat completions through ``agents`` keep-alive clients at once (a closed loop)."""
    async with http_session(max_connections=agents) as session:
        call = post_call(session, f"{proxy.url}/v1/chat/completions", BODY,
                         {"content-type": "application/json", **proxy.auth_headers}, expect_status=expect_status)
        return await closed_loop(call, requests=requests, concurrency=agents, name=proxy.name)


def _throughput(proxies: Mapping[str, LiteLLMProxy], args: argparse.Namespace) -> tuple[dict[str, Timings], dict[str, float]]:
    """Rotating rounds over the proxies (one warm-up round thrown away): merged timings and the median
    proxy CPU ms per request."""
    merged = {name: Timings(name=name) for name in proxies}
    cpu_ms: dict[str, list[float]] = {name: [] for name in proxies}
    processes = {name: psutil.Process(proxy.process.proc.pid) for name, proxy in proxies.items()}  # type: ignore[union-attr]
    for round_number, order in enumerate(round_orders(list(proxies), args.rounds + 1)):
        for name in order:
            before = cpu_seconds(processes[name])
            timings = asyncio.run(_drive(proxies[name], args.agents, args.requests))
            done = timings.count + timings.errors
            if round_number and done:
                merged[name].merge(timings)
                cpu_ms[name].append((cpu_seconds(processes[name]) - before) / done * 1000)
    return merged, {name: statistics.median(values) if values else float("nan") for name, values in cpu_ms.items()}


def _stall(proxies: Mapping[str, LiteLLMProxy], guarded: Sequence[str], args: argparse.Namespace) -> dict[str, Timings]:
    """Every guarded proxy under the stalled engine, one after another: ``agents`` x ``stall_turns`` requests."""
    expect = 200 if args.fail_mode == "fail_open" else 503
    return {name: asyncio.run(_drive(proxies[name], args.agents, args.agents * args.stall_turns, expect))
            for name in guarded}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench litellm_concurrency", description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--requests", type=int, default=300, help="requests per round and proxy")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (after one warm-up round)")
    parser.add_argument("--stall-turns", type=int, default=3, help="requests per agent under the stalled engine")
    parser.add_argument("--timeout-s", type=int, default=1, help="the guardrails' engine timeout")
    parser.add_argument("--fail-mode", choices=["fail_open", "fail_closed"], default="fail_open")
    parser.add_argument("--builtin", action="store_true", help="add LiteLLM's built-in akto guardrail")
    parser.add_argument("--engine", choices=list(ENGINE_FAULTS), action="append",
                        help="engine behaviours to measure throughput under (default: all)")
    parser.add_argument("--no-stall", action="store_true", help="skip the stalled-engine phase")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
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
            pids = [server_pid(engine), llm.process.proc.pid] + [p.process.proc.pid for p in proxies.values()]  # type: ignore[union-attr]
            pinned = all([*(pin_process(pid, SERVER_CPU) for pid in pids), pin_self(LOADGEN_CPU)])
            console.print(f"servers pinned to cpu {SERVER_CPU}, load generator to cpu {LOADGEN_CPU}: {pinned}")
            admin = engine.client()
            for behaviour in args.engine or list(ENGINE_FAULTS):
                admin.reset()
                if ENGINE_FAULTS[behaviour] is not None:
                    admin.add_fault(ENGINE_FAULTS[behaviour])
                merged, cpu = _throughput(proxies, args)
                print_comparison(merged, baseline=ALONE, title=f"engine {behaviour}, {args.agents} agents")
                for name, ms in cpu.items():
                    console.print(f"  {name:<14} proxy CPU {ms:.2f} ms/request  (CPU ratio vs alone {cpu[ALONE] / ms:.2f})")
                report["throughput"][behaviour] = {name: {"rps": t.summary().rps, "p50_ms": t.summary().p50,
                                                          "p99_ms": t.summary().p99, "errors": t.errors, "cpu_ms": cpu[name]}
                                                   for name, t in merged.items()}
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
                for name, timings in stalled.items():
                    report["stall"][name] = {"max_ms": timings.summary().max_ms, "p50_ms": timings.summary().p50,
                                             "p99_ms": timings.summary().p99, "errors": timings.errors}
                print_comparison(stalled, baseline=OURS, title=f"time to decide, engine stalled, timeout {args.timeout_s}s, "
                                                              f"{args.fail_mode}")
                slowest = stalled[OURS].summary().max_ms / 1000
                checks.append(Check("our hook decides every request under a stall, as its fail mode says",
                                    f"slowest {slowest:.3f}s, {stalled[OURS].errors} other answers",
                                    f"<= {args.timeout_s + STALL_MARGIN_S:g}s, 0",
                                    slowest <= args.timeout_s + STALL_MARGIN_S and not stalled[OURS].errors))
        finally:
            for proxy in proxies.values():
                proxy.stop()
    ok = print_checks(checks)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    raise SystemExit(main())
