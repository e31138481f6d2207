"""Egress addon overhead: what the addon adds per request beyond mitmdump itself, side by side in one run
(issue 4, Performance).

Variants, one request at a time, in rotating rounds (bench._common.interleave):

* ``direct``: the client posts an OpenAI chat completion straight to the fake LLM;
* ``mitmdump``: the same request to ``http://api.openai.com/...`` through a mitmdump with only the test
  router (harness/hosts/mitm_route.py), which re-targets the flow to the fake LLM;
* ``mitmdump+addon``: the same, with reference_impl/egress/addon.py loaded before the router (request and
  response phase checks against the fake engine, which answers at once);
* ``engine x2``: the two engine calls the addon makes (its exact request-phase and response-phase
  envelopes), made from this process one after the other with the addon's own engine client
  (``reference_impl.core.EngineClient`` over the lean HTTP/1.1 transport, as the addon builds it): the engine
  round trip as the addon pays it.

Target: p50(mitmdump+addon) - p50(mitmdump) - p50(engine x2) <= 2 ms, i.e. the addon's own work (hooks,
envelope building, verdict reading, its HTTP client) costs at most 2 ms at p50. ``--https`` sends the
client's requests as ``https://`` through the proxy instead (TLS interception on both proxy variants).

Servers (fake LLM, engine, mitmdumps) are pinned to core 0, the client to core 1. The client is httpx with
keep-alive; its own cost is the same in every variant and cancels out of the differences.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import httpx
import psutil

from akto_wire import Envelope
from bench._common import Check, Timings, Variant, console, interleave, machine_notes, print_checks, print_comparison
from harness.payloads import ALLOW_PROMPT
from bench.servers import LOADGEN_CPU, SERVER_CPU, engine_process, pin_process, pin_self, server_pid
from harness.fakes.llm import FakeLLMServer
from harness.hosts.mitmdump import EGRESS_ADDON, ROUTE_ADDON, MitmDump
from reference_impl.core import EngineClient, EngineSettings
from reference_impl.core.http1_transport import Http1Transport
from reference_impl.egress.payload import build_envelope, request_payload

TARGET_ADDED_P50_MS = 2.0
CHAT_PATH = "/v1/chat/completions"


def _timed(call: Callable[[], None], requests: int, name: str) -> Timings:
    timings = Timings(name=name)
    began = time.perf_counter()
    for _ in range(requests):
        start = time.perf_counter_ns()
        try:
            call()
        except (httpx.HTTPError, AssertionError):
            timings.record_error()
            continue
        timings.record_ns(time.perf_counter_ns() - start)
    timings.wall_s = time.perf_counter() - began
    return timings


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _post_ok(client: httpx.Client, url: str, **kwargs: object) -> Callable[[], None]:
    def call() -> None:
        response = client.post(url, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:200]}"

    return call


def _engine_envelopes(chat: dict, answer: httpx.Response) -> tuple[Envelope, Envelope]:
    """The request- and response-phase envelopes the addon sends for this exchange (app name unset)."""
    sent = request_payload(chat)
    headers = {"content-type": "application/json", "host": "api.openai.com"}
    request_phase = build_envelope(path=CHAT_PATH, method="POST", request_headers=headers, app_name="",
                                   request_payload_text=sent)
    response_phase = build_envelope(path=CHAT_PATH, method="POST", request_headers=headers, app_name="",
                                    request_payload_text=sent, response_payload_text=answer.text,
                                    response_headers=dict(answer.headers), status_code=answer.status_code)
    return request_phase, response_phase


def _engine_rounds(engine_url: str, request_phase: Envelope, response_phase: Envelope) -> tuple[Callable[[int], Timings], Callable[[], None]]:
    """``run(n)``: n request+response check pairs through the addon's engine client, on one event loop.

    Each round opens its own client: the loop does not run between rounds, so a pooled connection the
    engine closed meanwhile (keep-alive 5 s) would only be noticed when written to."""
    loop = asyncio.new_event_loop()
    settings = EngineSettings(akto_base_url=engine_url)

    async def pairs(requests: int) -> Timings:
        client = EngineClient(settings, transport=Http1Transport.for_settings(settings))  # as the addon builds it
        timings = Timings(name="engine x2")
        began = time.perf_counter()
        try:
            for _ in range(requests):
                start = time.perf_counter_ns()
                first = await client.check(request_phase, direction="request", ingest=True)
                second = await client.check(response_phase, direction="response", ingest=True)
                if first.allowed and second.allowed:
                    timings.record_ns(time.perf_counter_ns() - start)
                else:
                    timings.record_error()
            timings.wall_s = time.perf_counter() - began
        finally:
            await client.aclose()
        return timings

    def close() -> None:
        loop.close()

    return (lambda requests: loop.run_until_complete(pairs(requests))), close


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench egress_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--https", action="store_true", help="clients use https:// through the proxy (TLS interception)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and client to cores")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    console.rule("Egress addon overhead: direct vs mitmdump vs mitmdump + addon (engine answering at once)")
    console.print(machine_notes())
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ALLOW_PROMPT}]}
    scheme = "https" if args.https else "http"
    with engine_process() as engine, FakeLLMServer() as llm:
        routes = f"api.openai.com=http://127.0.0.1:{llm.port}"
        proxy_options = {"route_map": routes, "connection_strategy": "lazy", "flow_detail": 0}
        with MitmDump([ROUTE_ADDON], options=proxy_options) as bare, \
                MitmDump([EGRESS_ADDON, ROUTE_ADDON], options=proxy_options, env={"AKTO_URL": engine.url}) as guarded:
            pids = [server_pid(engine), llm.process.proc.pid, bare.process.proc.pid, guarded.process.proc.pid]  # type: ignore[union-attr]
            pinned = not args.no_pin and all([*(pin_process(pid, SERVER_CPU) for pid in pids), pin_self(LOADGEN_CPU)])
            console.print(f"servers pinned to cpu {SERVER_CPU}, client to cpu {LOADGEN_CPU}: {pinned}; client scheme {scheme}")
            provider_url = f"{scheme}://api.openai.com{CHAT_PATH}"
            clients = {
                "direct": httpx.Client(trust_env=False, timeout=10),
                "mitmdump": httpx.Client(proxy=bare.proxy_url, verify=str(bare.ca_cert), trust_env=False, timeout=10),
                "mitmdump+addon": httpx.Client(proxy=guarded.proxy_url, verify=str(guarded.ca_cert), trust_env=False, timeout=10),
            }
            close_engine = None
            cpu_s: dict[str, float] = {}
            served: dict[str, int] = {}
            try:
                answer = clients["direct"].post(f"{llm.url}{CHAT_PATH}", json=chat)
                request_phase, response_phase = _engine_envelopes(chat, answer)
                guarded_answer = clients["mitmdump+addon"].post(provider_url, json=chat)
                if guarded_answer.status_code != 200 or guarded_answer.json() is None:
                    sys.exit(f"the addon did not pass the benchmark prompt: {guarded_answer.status_code} {guarded_answer.text[:300]}")
                engine_pairs, close_engine = _engine_rounds(engine.url, request_phase, response_phase)
                calls = {
                    "direct": _post_ok(clients["direct"], f"{llm.url}{CHAT_PATH}", json=chat),
                    "mitmdump": _post_ok(clients["mitmdump"], provider_url, json=chat),
                    "mitmdump+addon": _post_ok(clients["mitmdump+addon"], provider_url, json=chat),
                }
                processes = {"mitmdump": psutil.Process(bare.process.proc.pid),  # type: ignore[union-attr]
                             "mitmdump+addon": psutil.Process(guarded.process.proc.pid)}  # type: ignore[union-attr]

                def measured(name: str) -> Timings:
                    process = processes.get(name)
                    before = _cpu_seconds(process) if process else 0.0
                    timings = _timed(calls[name], args.requests, name)
                    if process:
                        cpu_s[name] = cpu_s.get(name, 0.0) + _cpu_seconds(process) - before
                        served[name] = served.get(name, 0) + args.requests
                    return timings

                variants = [Variant(name, lambda n=name: measured(n)) for name in calls]
                me = psutil.Process()

                def engine_round() -> Timings:
                    before = _cpu_seconds(me)
                    timings = engine_pairs(args.requests)
                    cpu_s["engine x2"] = cpu_s.get("engine x2", 0.0) + _cpu_seconds(me) - before
                    served["engine x2"] = served.get("engine x2", 0) + args.requests
                    return timings

                variants.append(Variant("engine x2", engine_round))
                results = interleave(variants, rounds=args.rounds)
            finally:
                for client in clients.values():
                    client.close()
                if close_engine is not None:
                    close_engine()

    rows = print_comparison(results, baseline="direct", title=f"one request at a time, {args.rounds} x {args.requests} "
                            f"requests per variant ({scheme} client)", percentiles=(50.0, 90.0, 99.0))
    p50 = {name: timings.summary().p50 for name, timings in results.items()}
    added = p50["mitmdump+addon"] - p50["mitmdump"] - p50["engine x2"]
    errors = sum(t.errors for t in results.values())
    console.print(f"mitmdump adds {p50['mitmdump'] - p50['direct']:.2f} ms at p50 over direct; the addon adds "
                  f"{p50['mitmdump+addon'] - p50['mitmdump']:.2f} ms over mitmdump, of which the two engine calls "
                  f"take {p50['engine x2']:.2f} ms")
    # CPU time of the mitmdump process per request (warm-up rounds included on both sides): robust to the
    # scheduling noise of a shared machine, which wall-clock percentiles are not.
    cpu_ms = {name: cpu_s[name] * 1000 / served[name] for name in cpu_s}
    own_cpu = cpu_ms["mitmdump+addon"] - cpu_ms["mitmdump"] - cpu_ms["engine x2"]
    console.print(f"CPU per request: mitmdump {cpu_ms['mitmdump']:.2f} ms alone, {cpu_ms['mitmdump+addon']:.2f} ms with the "
                  f"addon; the two engine calls cost their client {cpu_ms['engine x2']:.2f} ms; the addon's own code "
                  f"{own_cpu:+.2f} ms")
    ok = print_checks([
        Check("addon's own cost at p50 (addon - mitmdump - engine x2)", f"{added:.2f} ms", f"<= {TARGET_ADDED_P50_MS:g} ms",
              added <= TARGET_ADDED_P50_MS),
        Check("no errors", f"{errors} errors", "0", errors == 0),
    ])
    if args.json:
        args.json.write_text(json.dumps({"notes": machine_notes(), "rows": rows, "addon_own_p50_ms": added,
                                         "cpu_ms_per_request": cpu_ms, "addon_own_cpu_ms": own_cpu}, indent=2, default=str))
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
