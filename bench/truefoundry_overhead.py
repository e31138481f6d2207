"""TrueFoundry endpoint overhead: what ``POST /api/http-proxy/truefoundry`` adds over calling the engine
directly, in latency and in throughput, measured side by side in one run (issue 5, Performance).

Both variants ask the same engine process for the same verdict on the same record: "direct" posts the
envelope the endpoint would build to ``/api/http-proxy?guardrails=true&akto_connector=truefoundry``;
"endpoint" posts TrueFoundry's input-hook body (``sync=true``, a valid JWT in ``Authorization``) to the
reference endpoint, which checks the token, reads the body, builds that envelope and calls the engine. So
the difference is the endpoint: one more loopback hop, the JWT check, parsing and serialising. A third
variant, "endpoint (httpx)", is the same endpoint with httpx's own transport toward the engine instead of
the default aiohttp one: it shows what that choice buys.

Servers (engine and endpoint, each one uvicorn process) on core 0; the load generator (a raw keep-alive
client on uvloop: tens of microseconds of client cost per request) on core 1 (``--no-pin``: unpinned, for a
machine busy with other work); rounds alternate variants.

* latency: one request at a time (p50/p99 of exact per-request timings);
* throughput: a closed loop at ``--concurrency``; the endpoint's own CPU time per request is read from
  /proc as well (on a shared machine req/s moves with the neighbours, CPU per request does not);
* with ``--engine-delay-ms 100`` (repeatable), the throughput loop again with the engine answering that
  much later (a ``fixed_delay`` fault on every call), direct and endpoint side by side (issue 12.3);
* stalled engine (unless ``--no-stall``): a ``hang`` fault, an endpoint with a 1 s timeout, ``--concurrency``
  agents x 3 requests at once: every answer's status (the fail mode's) and the time to decide;
* ``--third-party TARGET.yaml``: a TrueFoundry-style guardrail endpoint you have (a conformance target of
  kind ``guardrail_url``, docs/conformance.md), measured beside ours in the latency, throughput and delayed
  loops. With a ``command`` it is started against this run's engine (``{port}``, ``{engine_url}``) and its
  CPU per request is read too; without one, it is called where it runs.

Target: endpoint p50 added latency < 1 ms; under the stall every request decided within 1 s + 250 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

import httpx
import psutil
import uvloop

from akto_wire import HTTP_PROXY_PATH
from bench._common import Check, Timings, Variant, console, interleave_async, machine_notes, print_checks, print_comparison
from bench.load import closed_loop
from harness.payloads import ALLOW_PROMPT, fill, truefoundry_template
from bench.rawhttp import RawHttpPool
from bench.servers import LOADGEN_CPU, SERVER_CPU, engine_process, pin_process, pin_self, server_pid
from harness.conformance.target import GuardrailURLConnector, UserEndpoint, load_target
from harness.connectors import ConnectorConfig
from harness.engine import EngineProcess
from harness.process import StartupError
from harness.scenarios.model import ScenarioError
from harness.hosts.truefoundry_endpoint import TrueFoundryEndpoint, make_token
from reference_impl.truefoundry.records import parse_call, to_envelope

TARGET_ADDED_P50_MS = 1.0
STALL_TIMEOUT_S = 1.0
STALL_MARGIN_S = 0.25
STALL_TURNS = 3
#: The endpoint's answer when it decides by its fail mode (fail_open lets the call through: ``{}``).
FAIL_MODE_STATUS = {"fail_open": 200, "fail_closed": 503}
DIRECT_QUERY = "guardrails=true&akto_connector=truefoundry"
HTTPX = "endpoint (httpx)"
THIRD_PARTY = "third-party"


def _pid(endpoint: TrueFoundryEndpoint) -> int:
    assert endpoint.process is not None and endpoint.process.proc is not None
    return endpoint.process.proc.pid


def third_party_connector(path: Path) -> GuardrailURLConnector:
    """The user's endpoint described by a conformance target file (checked before anything starts)."""
    try:
        connector = load_target(path).connector()
    except ScenarioError as exc:
        raise SystemExit(f"--third-party: {exc}") from None
    if not isinstance(connector, GuardrailURLConnector):
        raise SystemExit(f"--third-party: {path} is not a guardrail_url target (a TrueFoundry-style endpoint)")
    return connector


def start_third_party(connector: GuardrailURLConnector, engine: EngineProcess, stack: ExitStack) -> UserEndpoint:
    """The user's endpoint, started (with its command) against ``engine`` in fail_open with a 3 s timeout,
    as ours; stopped with ``stack``."""
    try:
        endpoint = connector.start_endpoint(ConnectorConfig(fail_mode="fail_open", timeout_s=3), engine, timeout=3.0)
    except StartupError as exc:
        raise SystemExit(f"--third-party: {exc}") from None
    stack.callback(endpoint.stop)
    return endpoint


class AuthorizedPool(RawHttpPool):
    """The raw keep-alive client, plus the ``Authorization`` header TrueFoundry sends."""

    def __init__(self, url: str, size: int, authorization: str | None) -> None:
        super().__init__(url, size)
        self.authorization = authorization

    def request_bytes(self, body: bytes, content_type: str = "application/json", method: str = "POST") -> bytes:
        request = super().request_bytes(body, content_type, method)
        if self.authorization is None:
            return request
        head, _, rest = request.partition(b"\r\n")
        return head + f"\r\nauthorization: {self.authorization}".encode("latin-1") + b"\r\n" + rest


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def _round(url: str, body: bytes, authorization: str | None, *, requests: int, concurrency: int,
                 name: str) -> Timings:
    """One round on fresh connections: uvicorn closes keep-alive connections idle for 5 s, and a variant's
    connections sit idle while the other variants run."""
    async with AuthorizedPool(url, concurrency, authorization) as pool:
        return await closed_loop(pool.caller(body), requests=requests, concurrency=concurrency, name=name)


async def _measure(urls: dict[str, str], bodies: dict[str, bytes], auth: dict[str, str | None], *, requests: int,
                   rounds: int, concurrency: int, throughput_requests: int, processes: dict[str, psutil.Process],
                   ) -> tuple[dict[str, Timings], dict[str, Timings], dict[str, float]]:
    latency = await interleave_async(
        [Variant(name, lambda n=name: _round(urls[n], bodies[n], auth[n], requests=requests, concurrency=1, name=n))
         for name in urls], rounds=rounds)
    cpu_s = {name: 0.0 for name in processes}
    served = {name: 0 for name in processes}

    async def loaded_round(name: str) -> Timings:
        before = _cpu_seconds(processes[name]) if name in processes else 0.0
        timings = await _round(urls[name], bodies[name], auth[name], requests=throughput_requests,
                               concurrency=concurrency, name=name)
        if name in processes:
            cpu_s[name] += _cpu_seconds(processes[name]) - before
            served[name] += throughput_requests
        return timings

    throughput = await interleave_async([Variant(name, lambda n=name: loaded_round(n)) for name in urls], rounds=rounds)
    return latency, throughput, {name: cpu_s[name] * 1e6 / max(served[name], 1) for name in processes}


async def _delayed_throughput(urls: dict[str, str], bodies: dict[str, bytes], auth: dict[str, str | None], *,
                              rounds: int, concurrency: int, requests: int) -> dict[str, Timings]:
    return await interleave_async(
        [Variant(name, lambda n=name: _round(urls[n], bodies[n], auth[n], requests=requests, concurrency=concurrency,
                                             name=n)) for name in urls], rounds=rounds)


def _stall(engine: EngineProcess, body: bytes, token: str, *, fail_mode: str, agents: int) -> Timings:
    """``agents`` x :data:`STALL_TURNS` requests at once through an endpoint with a 1 s timeout while the
    engine hangs; a request answered other than by the fail mode counts as an error."""
    with TrueFoundryEndpoint(engine.url, timeout=STALL_TIMEOUT_S, fail_mode=fail_mode) as endpoint:
        engine.client().add_fault({"type": "hang", "max_ms": 60_000})
        try:
            async def run() -> Timings:
                async with AuthorizedPool(endpoint.guardrail_url(sync=True), agents, token) as pool:
                    call = pool.caller(body, expect_status=FAIL_MODE_STATUS[fail_mode])
                    return await closed_loop(call, requests=agents * STALL_TURNS, concurrency=agents,
                                             name=f"endpoint, engine stalled ({fail_mode})")
            return uvloop.run(run())
        finally:
            engine.client().reset()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench truefoundry_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="sequential requests per latency round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32, help="connections in the throughput loop")
    parser.add_argument("--throughput-requests", type=int, default=2000, help="requests per throughput round")
    parser.add_argument("--engine-delay-ms", type=int, action="append", default=[],
                        help="also run the throughput loop with the engine this much slower (repeatable, e.g. 100)")
    parser.add_argument("--no-stall", action="store_true", help="skip the stalled-engine phase")
    parser.add_argument("--fail-mode", choices=sorted(FAIL_MODE_STATUS), default="fail_open",
                        help="the endpoint's fail mode under the stall")
    parser.add_argument("--third-party", type=Path, metavar="TARGET.yaml",
                        help="also measure this TrueFoundry-style endpoint (a conformance target of kind guardrail_url)")
    parser.add_argument("--no-pin", action="store_true",
                        help="leave the processes unpinned (a machine busy with other work starves a pinned core)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    third_party = third_party_connector(args.third_party) if args.third_party else None

    console.rule("TrueFoundry endpoint overhead vs a direct engine call")
    console.print(machine_notes())
    tfy_body = fill(truefoundry_template(), ALLOW_PROMPT)
    envelope = to_envelope(parse_call(tfy_body), account_id="1000000", vxlan_id="0")
    direct_body = envelope.model_dump_json().encode()
    token = make_token(expires_in=24 * 3600)
    with engine_process() as engine, TrueFoundryEndpoint(engine.url, timeout=3.0) as endpoint, \
            TrueFoundryEndpoint(engine.url, timeout=3.0, http_client="httpx") as endpoint_httpx, ExitStack() as stack:
        urls = {"direct": f"{engine.url}{HTTP_PROXY_PATH}?{DIRECT_QUERY}", "endpoint": endpoint.guardrail_url(sync=True),
                HTTPX: endpoint_httpx.guardrail_url(sync=True)}
        third = start_third_party(third_party, engine, stack) if third_party else None
        if third is not None:
            urls[THIRD_PARTY] = third.guardrail_url(sync=True)
        check = httpx.post(urls["direct"], content=direct_body, headers={"content-type": "application/json"},
                           timeout=10, trust_env=False)
        if check.status_code != 200 or check.json()["data"]["guardrailsResult"]["Allowed"] is not True:
            sys.exit(f"the engine did not allow the benchmark prompt: {check.status_code} {check.text[:300]}")
        for name in [n for n in urls if n != "direct"]:
            check = httpx.post(urls[name], content=tfy_body, headers={"authorization": token}, timeout=10, trust_env=False)
            if check.status_code != 200 or (name != THIRD_PARTY and check.text != "{}"):
                sys.exit(f"{name} did not allow the benchmark prompt: {check.status_code} {check.text[:300]}")
        pids = {"endpoint": _pid(endpoint), HTTPX: _pid(endpoint_httpx)}
        if third is not None and third.process is not None and third.process.proc is not None:
            pids[THIRD_PARTY] = third.process.proc.pid
        pinned = not args.no_pin and all([pin_process(server_pid(engine), SERVER_CPU),
                                          *(pin_process(pid, SERVER_CPU) for pid in pids.values()), pin_self(LOADGEN_CPU)])
        console.print(f"servers pinned to cpu {SERVER_CPU}, load generator to cpu {LOADGEN_CPU}: {pinned}; "
                      f"TrueFoundry body {len(tfy_body)} B, engine envelope {len(direct_body)} B")
        bodies = {"direct": direct_body, "endpoint": tfy_body, HTTPX: tfy_body, THIRD_PARTY: tfy_body}
        auth = {"direct": None, "endpoint": token, HTTPX: token, THIRD_PARTY: token}
        latency, throughput, cpu_us = uvloop.run(_measure(
            urls, bodies, auth, requests=args.requests, rounds=args.rounds,
            concurrency=args.concurrency, throughput_requests=args.throughput_requests,
            processes={name: psutil.Process(pid) for name, pid in pids.items()}))
        delayed: dict[int, dict[str, Timings]] = {}
        for delay_ms in args.engine_delay_ms:
            engine.client().add_fault({"type": "fixed_delay", "ms": delay_ms})
            pair = {name: urls[name] for name in ("direct", "endpoint", THIRD_PARTY) if name in urls}
            delayed[delay_ms] = uvloop.run(_delayed_throughput(pair, bodies, auth, rounds=args.rounds,
                                                               concurrency=args.concurrency,
                                                               requests=args.throughput_requests))
            engine.client().reset()
        stalled = None if args.no_stall else _stall(engine, tfy_body, token, fail_mode=args.fail_mode,
                                                    agents=args.concurrency)

    latency_rows = print_comparison(latency, baseline="direct", title=f"latency: one request at a time, "
                                    f"{args.rounds} x {args.requests} requests", percentiles=(50.0, 90.0, 99.0))
    throughput_rows = print_comparison(throughput, baseline="direct", title=f"throughput: closed loop, "
                                       f"{args.concurrency} connections, {args.rounds} x {args.throughput_requests} requests")
    for name, us in cpu_us.items():
        console.print(f"{name}: CPU per request in its own process (user+system, throughput loop): {us:.0f} us")
    delayed_rows = {delay_ms: print_comparison(timings, baseline="direct", title=f"throughput with the engine "
                                               f"{delay_ms} ms slower: closed loop, {args.concurrency} connections")
                    for delay_ms, timings in delayed.items()}
    added_p50 = latency["endpoint"].summary().p50 - latency["direct"].summary().p50
    measured = [*latency.values(), *throughput.values(), *(t for pair in delayed.values() for t in pair.values())]
    errors = sum(t.errors for t in measured)
    checks = [
        Check("endpoint added latency, p50", f"{added_p50:.3f} ms", f"< {TARGET_ADDED_P50_MS:g} ms",
              added_p50 < TARGET_ADDED_P50_MS),
        Check("no errors", f"{errors} errors", "0", errors == 0),
    ]
    if stalled is not None:
        summary = stalled.summary()
        bound_ms = (STALL_TIMEOUT_S + STALL_MARGIN_S) * 1000
        console.print(f"engine stalled, {args.fail_mode}, {args.concurrency} agents x {STALL_TURNS}: "
                      f"{summary.count} decided as the fail mode says, {stalled.errors} otherwise; "
                      f"p50 {summary.p50:.0f} ms, p99 {summary.p99:.0f} ms, slowest {summary.max_ms:.0f} ms")
        checks.append(Check(f"stalled engine: every request decided ({args.fail_mode}) within "
                            f"{STALL_TIMEOUT_S:g} s + {STALL_MARGIN_S * 1000:.0f} ms",
                            f"slowest {summary.max_ms:.0f} ms, {stalled.errors} other answers",
                            f"<= {bound_ms:.0f} ms, 0", summary.max_ms <= bound_ms and stalled.errors == 0))
    ok = print_checks(checks)
    if args.json:
        args.json.write_text(json.dumps({"notes": machine_notes(), "latency": latency_rows, "throughput": throughput_rows,
                                         "delayed_throughput": delayed_rows, "added_p50_ms": added_p50,
                                         "cpu_us_per_request": cpu_us,
                                         "stall": None if stalled is None else dataclasses.asdict(stalled.summary())},
                                        indent=2, default=str))
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
