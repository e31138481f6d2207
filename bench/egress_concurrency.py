"""Egress addon at 50 agents: mitmdump alone vs mitmdump + the addon (instant engine), side by side (issue 12.2).

Both proxies run at once (the test router re-targets api.openai.com to the fake LLM); rounds alternate
between them. Printed per variant: req/s and the proxy process's CPU per request (user + system). The
CPU ratio is the throughput ratio a CPU-bound proxy reaches; req/s depends on what else the machine runs.
A first step of issue 12.3's per-connector bench: no 100 ms / stalled engine and no third-party file yet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Sequence

import httpx
import psutil

from bench.servers import engine_process
from harness.fakes.llm import FakeLLMServer
from harness.hosts.mitmdump import EGRESS_ADDON, ROUTE_ADDON, MitmDump
from harness.payloads import ALLOW_PROMPT

BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ALLOW_PROMPT}]}).encode()
HEADERS = {"host": "api.openai.com", "content-type": "application/json"}


async def _load(proxy_url: str, seconds: float, agents: int) -> tuple[int, float]:
    done = 0
    end = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=agents, max_keepalive_connections=agents)
    async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
        async def agent() -> None:
            nonlocal done
            while time.perf_counter() < end:
                answer = await client.post(f"{proxy_url}/v1/chat/completions", content=BODY, headers=HEADERS)
                if answer.status_code != 200:
                    raise RuntimeError(f"proxy answered {answer.status_code}: {answer.text[:200]}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(agent() for _ in range(agents)))
        return done, time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench egress_concurrency", description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, list[tuple[float, float]]] = {"mitmdump": [], "mitmdump+addon": []}
    with engine_process() as engine, FakeLLMServer() as llm:
        options = {"route_map": f"api.openai.com=http://127.0.0.1:{llm.port}", "connection_strategy": "lazy",
                   "flow_detail": 0}
        with MitmDump([ROUTE_ADDON], options=options) as bare, \
                MitmDump([EGRESS_ADDON, ROUTE_ADDON], options=options, env={"AKTO_URL": engine.url}) as guarded:
            for round_number in range(args.rounds):
                for name, proxy in (("mitmdump", bare), ("mitmdump+addon", guarded)):
                    process = psutil.Process(proxy.process.proc.pid)  # type: ignore[union-attr]
                    cpu_before = sum(process.cpu_times()[:2])
                    done, took = asyncio.run(_load(proxy.proxy_url, args.seconds, args.agents))
                    cpu_ms = (sum(process.cpu_times()[:2]) - cpu_before) / done * 1000
                    results[name].append((done / took, cpu_ms))
                    print(f"round {round_number}: {name:<15} {done / took:7.0f} req/s  proxy CPU {cpu_ms:.2f} ms/request")
    rate = {name: statistics.median(r for r, _ in runs) for name, runs in results.items()}
    cpu = {name: statistics.median(c for _, c in runs) for name, runs in results.items()}
    print(f"median: mitmdump {rate['mitmdump']:.0f} req/s ({cpu['mitmdump']:.2f} ms CPU), "
          f"+addon {rate['mitmdump+addon']:.0f} req/s ({cpu['mitmdump+addon']:.2f} ms CPU)")
    print(f"ratio req/s {rate['mitmdump+addon'] / rate['mitmdump']:.2f}, "
          f"ratio CPU per request (CPU-bound throughput) {cpu['mitmdump'] / cpu['mitmdump+addon']:.2f} (target >= 0.70)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
