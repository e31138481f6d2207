"""The engine's own CPU per call, without sockets: the ASGI app called in-process (a profiling aid).

Wall-clock benchmarks on this shared 2-core machine move with the neighbours; this one times the app's
CPU alone (``time.process_time``), so a change to the hot path shows up as microseconds per call within
a few percent. It compares, in rotating rounds: :mod:`bench.raw_app` (the floor: read the body, send the
bytes), the engine with a repeated payload (its memo answers), and the engine with a different prompt per
call (full policy evaluation), and the engine with a rule that delays every call by 0 ms (the fault
path a delay benchmark takes, without the wait), and the matcher's cost: that rule matching by a JSON path
into the double-encoded payload plus a header (``matched``; ``matched_distinct`` with a different prompt per
call, so nothing is memoised), and a scripted verdict answering every call (``scripted``). ``--profile VARIANT`` runs cProfile over one variant and prints the top
frames by own time. The server stack (uvicorn + httptools, ~25 µs per request) is not in these numbers:
``engine_throughput`` measures the whole thing.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from typing import Any, Awaitable, Callable, Sequence

import uvloop

from akto_wire import HTTP_PROXY_PATH
from bench._common import console, machine_notes, round_orders
from harness.payloads import ALLOW_PROMPT, ENGINE_QUERY, engine_chat_body
from mock_akto.app import build_app
from mock_akto.faults import FixedDelay
from mock_akto.matching import Matcher
from mock_akto.rules import FaultRule
from mock_akto.scripted import ScriptedVerdict
from mock_akto.server import EngineConfig

App = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[..., Awaitable[None]]], Awaitable[None]]


def _scope(query: str) -> dict[str, Any]:
    return {
        "type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "path": HTTP_PROXY_PATH,
        "raw_path": HTTP_PROXY_PATH.encode(), "query_string": query.encode(), "root_path": "",
        "server": ("127.0.0.1", 8090), "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"127.0.0.1:8090"), (b"content-type", b"application/json"),
                    (b"content-length", b"0"), (b"user-agent", b"bench")],
    }


async def _calls(app: App, bodies: Callable[[int], bytes], count: int) -> float:
    """CPU seconds for ``count`` calls; each call gets a fresh scope and ASGI channels like uvicorn's."""
    base = _scope(ENGINE_QUERY)
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    start = time.process_time()
    for i in range(count):
        body = bodies(i)
        scope = dict(base)
        scope["headers"] = [*base["headers"][:2], (b"content-length", str(len(body)).encode()), base["headers"][3]]

        async def receive(body: bytes = body) -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, receive, send)
    elapsed = time.process_time() - start
    if statuses.count(200) != count:
        raise RuntimeError(f"expected {count} answers 200, got {len(statuses)} answers: {set(statuses)}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench engine_inprocess", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round (default 20,000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=("raw", "engine", "distinct", "faulted", "matched", "matched_distinct", "scripted"), help="cProfile this variant instead")
    parser.add_argument("--top", type=int, default=30, help="frames to print with --profile")
    args = parser.parse_args(argv)

    from bench import raw_app

    body = engine_chat_body(ALLOW_PROMPT)
    head, _, tail = engine_chat_body(f"{ALLOW_PROMPT} Ticket DISTINCTSLOT.").partition(b"DISTINCTSLOT")
    counter = iter(range(10**12))
    engine = build_app(EngineConfig())
    faulted = build_app(EngineConfig())
    faulted.registry.global_rules.add(FaultRule(fault=FixedDelay(ms=0)))
    matcher = Matcher.model_validate({"json": {"requestPayload.body.messages[-1].content": {"contains": "France"}},
                                      "headers": {"host": "bench-app"}})
    matched = build_app(EngineConfig())
    matched.registry.global_rules.add(FaultRule(fault=FixedDelay(ms=0), match=matcher))
    scripted = build_app(EngineConfig())
    scripted.registry.get("default").scripts.add(ScriptedVerdict.model_validate(
        {"match": {"prompt": {"contains": "France"}}, "answer": {"verdict": {"Allowed": False, "Reason": "scripted"}}}))
    distinct_counter = iter(range(10**12))
    variants: dict[str, tuple[App, Callable[[int], bytes]]] = {
        "raw": (raw_app.app, lambda i: body),
        "engine": (engine, lambda i: body),
        "distinct": (engine, lambda i: head + str(next(counter)).encode() + tail),
        "faulted": (faulted, lambda i: body),
        "matched": (matched, lambda i: body),
        "matched_distinct": (matched, lambda i: head + str(next(distinct_counter)).encode() + tail),
        "scripted": (scripted, lambda i: body),
    }
    console.print(machine_notes())

    async def run() -> None:
        for app, bodies in variants.values():  # warm-up: fills the journal ring, caches, memo
            await _calls(app, bodies, 12_000)
        if args.profile:
            app, bodies = variants[args.profile]
            profiler = cProfile.Profile()
            profiler.enable()
            await _calls(app, bodies, args.calls)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
            return
        totals = {name: 0.0 for name in variants}
        gen2 = gc.get_stats()[2]["collections"]
        for order in round_orders(list(variants), args.rounds):
            for name in order:
                app, bodies = variants[name]
                totals[name] += await _calls(app, bodies, args.calls)
        per_call = {name: total * 1e6 / (args.calls * args.rounds) for name, total in totals.items()}
        for name, us in per_call.items():
            console.print(f"{name:>16}: {us:7.1f} µs CPU per call")
        console.print(f"full GC collections during the rounds: {gc.get_stats()[2]['collections'] - gen2}")

    uvloop.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
