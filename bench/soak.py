"""Soak and fuzz: issue 11's probe figures, rerun in bounded time against real processes.

``make soak`` (``python -m bench soak``) prints four sections (``--only NAME`` runs one), the first three
against one engine started with its defaults:

* ``fuzz``: random JSON bodies, query strings and headers (hypothesis, a fixed number of examples) on the
  contract routes and on every state-changing admin route: inputs tried, 5xx answers, crashes (the
  engine stopped answering) and hangs (no answer within the client's deadline);
* ``probe``: /health latency (p50 / p99 / max), probed from a child process (``bench._probe``), quiet, then
  while slowloris connections dribble headers, idle connections sit open and bodies trickle in, then while
  a 10 MB payload of 528,000 emails is judged (blocked), then while three allowed 10 MB payloads are judged
  and their ~10 MB answers (the verdict echoes the payload) sent back; each phase on its own, the target on
  the attacks together;
* ``memory``: the RSS of the engine and its scan worker processes before and after filling every
  namespace's journal and ingest records with big payloads and answering a big ``status`` fault body to
  clients that do not read, against the budget;
* ``connectors``: :mod:`bench.connector_faults`, every connector x fail mode x engine fault.

Targets (issue 11): 0 5xx, 0 crashes, 0 hangs, probe p99 under 10 ms during attacks, RSS within the
documented budget, every client answered within the engine timeout + 250 ms. Exit 0 unless ``--strict``
and a target is missed. Results: docs/hardening.md.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import httpx
import orjson
import psutil
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import connector_faults
from bench._common import Check, console, machine_notes, print_checks
from bench._probe import Prober
from harness.engine import EngineProcess
from mock_akto.journal import DEFAULT_MEMORY_BUDGET_BYTES

PROXY = "/api/http-proxy"
CONTRACT_ROUTES = (PROXY, "/api/validate/request", "/api/validate/response")
ADMIN_ROUTES = (("POST", "/__admin/policies"), ("PUT", "/__admin/policies"), ("POST", "/__admin/faults/rules"),
                ("POST", "/__admin/listeners"), ("POST", "/__admin/namespaces/api-keys"),
                ("POST", "/__admin/reset"), ("DELETE", "/__admin/policies/x%2Fy"))
CALL_DEADLINE_S = 10.0
MB = 1024 * 1024
#: What the engine process may hold beyond the payload budget: interpreter, FastAPI, memos, socket buffers.
RSS_OVERHEAD_BYTES = 400 * MB

_json_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=200)
JSON = st.recursive(_json_leaves, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5),
                    max_leaves=30)
ENVELOPE = st.fixed_dictionaries({}, optional={
    "requestPayload": st.text(max_size=500) | JSON.map(json.dumps) | JSON,
    "responsePayload": st.text(max_size=200) | JSON,
    "requestHeaders": st.text(max_size=100) | JSON,
    "tag": JSON, "statusCode": JSON, "akto_connector": JSON,
})
QUERY = st.dictionaries(st.sampled_from(["guardrails", "ingest_data", "response_guardrails", "akto_connector", "x"]),
                        st.sampled_from(["true", "false", "", "TRUE", "1"]), max_size=4)


@dataclass
class FuzzTally:
    tried: int = 0
    server_errors: int = 0
    crashes: int = 0
    hangs: int = 0
    examples: list[str] = field(default_factory=list)

    def record(self, call: Callable[[], httpx.Response], what: str) -> None:
        self.tried += 1
        try:
            status = call().status_code
        except httpx.TimeoutException:
            self.hangs += 1
            self.examples.append(f"hang: {what[:200]}")
            return
        except httpx.TransportError as exc:
            self.crashes += 1
            self.examples.append(f"no answer ({type(exc).__name__}): {what[:200]}")
            return
        if status >= 500:
            self.server_errors += 1
            self.examples.append(f"{status}: {what[:200]}")


def fuzz(url: str, examples: int) -> FuzzTally:
    tally = FuzzTally()
    client = httpx.Client(base_url=url, timeout=CALL_DEADLINE_S, trust_env=False)
    quiet = settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                     suppress_health_check=list(HealthCheck))

    @quiet
    @given(route=st.sampled_from(CONTRACT_ROUTES), body=ENVELOPE | JSON, query=QUERY, raw=st.booleans())
    def contract(route: str, body: Any, query: dict[str, str], raw: bool) -> None:
        encoded = json.dumps(body).encode()  # stdlib: big integers, Infinity and lone surrogates pass through
        content = encoded if not raw else encoded[:-1]  # raw: cut one byte off
        tally.record(lambda: client.post(route, content=content, params=query), f"{route} {content!r}")

    @quiet
    @given(route=st.sampled_from(ADMIN_ROUTES), body=JSON, content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded"]), origin=st.sampled_from([None, "http://evil.example"]))
    def admin(route: tuple[str, str], body: Any, content_type: str, origin: str | None) -> None:
        method, path = route
        headers = {"content-type": content_type, **({"origin": origin} if origin else {})}
        if method == "POST" and path.endswith("/listeners"):
            body = {}  # listeners are real sockets: fuzz their body shape elsewhere, not their count
        content = json.dumps(body).encode()
        tally.record(lambda: client.request(method, path, content=content, headers=headers),
                     f"{method} {path} {content[:120]!r}")

    contract()
    admin()
    client.close()
    return tally


# --------------------------------------------------------------------------------------------- slow attacks


def probe_during(url: str, attack: Callable[[], None]) -> list[float]:
    """/health latencies (seconds), one probe every 5 ms from a child process, while ``attack`` runs."""
    with Prober(url) as prober:
        start = time.monotonic()
        attack()
        end = time.monotonic()
    return prober.between(start, end)


@dataclass
class AttackLatencies:
    """/health latencies (seconds) per phase of :func:`slow_attacks`; ``quiet`` is the same probe just before
    (the machine's own noise floor, to read the others against)."""

    quiet: list[float] = field(default_factory=list)
    slow_connections: list[float] = field(default_factory=list)
    big_scan: list[float] = field(default_factory=list)
    big_allowed: list[float] = field(default_factory=list)

    @property
    def attacked(self) -> list[float]:
        return self.slow_connections + self.big_scan + self.big_allowed

    def phases(self) -> dict[str, list[float]]:
        return {"quiet (no attack)": self.quiet, "slow connections": self.slow_connections,
                "10 MB scan": self.big_scan, f"{ALLOWED_CALLS} x 10 MB allowed": self.big_allowed,
                "during attacks": self.attacked}

    def add(self, other: "AttackLatencies") -> None:
        """Pool another round's probes into this one."""
        self.quiet += other.quiet
        self.slow_connections += other.slow_connections
        self.big_scan += other.big_scan
        self.big_allowed += other.big_allowed


def email_payload() -> bytes:
    """The probe's 10 MB legal-size body: 528,000 distinct emails in one requestPayload."""
    return orjson.dumps({"requestPayload": " ".join(f"user{index}@example.com" for index in range(528_000))[:10_000_000]})


def allowed_payload() -> bytes:
    """A 10 MB body the default policies allow: its verdict echoes the payload, so the answer is ~10 MB too."""
    return orjson.dumps({"requestPayload": ("a harmless sentence about fruit. " * 310_000)[:10_000_000]})


#: Allowed 10 MB calls sent at once in the probe's last phase.
ALLOWED_CALLS = 3


def big_allowed_calls(url: str, body: bytes, calls: int = ALLOWED_CALLS) -> None:
    """``calls`` allowed 10 MB calls at once, each answer read whole and checked (an allow echoing the payload)."""
    def one_call() -> int:
        answer = httpx.post(url + PROXY, content=body, params={"guardrails": "true"}, timeout=60, trust_env=False)
        result = orjson.loads(answer.content)["data"]["guardrailsResult"]  # orjson: this client's CPU is noise here
        if not result["Allowed"]:
            raise RuntimeError(f"the allowed 10 MB payload was blocked: {result['Reason']}")
        return len(answer.content)

    with ThreadPoolExecutor(calls) as pool:
        sizes = list(pool.map(lambda _: one_call(), range(calls)))
    if min(sizes) < len(body):
        raise RuntimeError(f"an allowed 10 MB call got a {min(sizes)}-byte answer, not the echoed payload")


def slow_attacks(url: str, port: int, seconds: float, idle: int, quiet_seconds: float = 1.0) -> AttackLatencies:
    """/health probed from a child process: quiet for ``quiet_seconds``, then slowloris, idle connections and
    trickled bodies for ``seconds``, then the 10 MB email scan, then :data:`ALLOWED_CALLS` allowed 10 MB calls
    at once (their bodies built before probing starts)."""
    body, allowed = email_payload(), allowed_payload()
    sockets: list[socket.socket] = []
    with Prober(url) as prober:
        time.sleep(quiet_seconds)  # the quiet phase: nothing to wait for, the probes are the point
        attack_started = time.monotonic()
        try:
            scan_started, scan_ended = _slow_connections_then_scan(url, port, seconds, idle, body, sockets)
        finally:
            for sock in sockets:
                sock.close()
        allowed_started = time.monotonic()
        big_allowed_calls(url, allowed)
        allowed_ended = time.monotonic()
    return AttackLatencies(quiet=prober.between(0.0, attack_started),
                           slow_connections=prober.between(attack_started, scan_started),
                           big_scan=prober.between(scan_started, scan_ended),
                           big_allowed=prober.between(allowed_started, allowed_ended))


def _slow_connections_then_scan(url: str, port: int, seconds: float, idle: int, body: bytes,
                                sockets: list[socket.socket]) -> tuple[float, float]:
    """The attack itself; when the scan started and ended (``time.monotonic()``)."""
    for index in range(idle):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if index % 3 == 1:
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: engine\r\n")  # slowloris: headers never end
        elif index % 3 == 2:
            sock.sendall(b"POST /api/http-proxy HTTP/1.1\r\nhost: engine\r\ncontent-length: 100000\r\n\r\n{")
        sockets.append(sock)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for sock in sockets[1::3]:
            try:
                sock.send(b"x-drip: 1\r\n")
            except OSError:
                pass
        time.sleep(0.1)
    scan_started = time.monotonic()
    httpx.post(url + PROXY, content=body, params={"guardrails": "true"}, timeout=60, trust_env=False)
    return scan_started, time.monotonic()


# --------------------------------------------------------------------------------------------- memory


def engine_rss(pid: int) -> int:
    """The engine process's resident size plus its scan worker processes' (:mod:`mock_akto.scan_worker`)."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def memory_cases(url: str, namespaces: int, non_readers: int) -> None:
    """Fill many namespaces' journals and ingest records with 60 KB payloads, then hold a 1 MB fault body
    open on clients that never read it."""
    payload = "m" * 60_000
    with httpx.Client(base_url=url, timeout=CALL_DEADLINE_S, trust_env=False) as client:
        for index in range(namespaces):
            for call in range(40):
                client.post(f"/ns/soak-{index}{PROXY}", params={"guardrails": "true", "ingest_data": "true"},
                            content=orjson.dumps({"requestPayload": f"{payload}{call}", "responsePayload": payload}))
        client.post("/ns/soak-fault/__admin/faults/rules", json={"fault": {"type": "status", "status": 500,
                                                                          "body": "e" * (1024 * 1024 - 100)}})
    port = httpx.URL(url).port
    sockets = []
    for _ in range(non_readers):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"POST /ns/soak-fault/api/http-proxy HTTP/1.1\r\nhost: e\r\ncontent-length: 2\r\n\r\n{}")
        sockets.append(sock)
    time.sleep(2)  # let the engine write what the sockets take; measured below while they are still open
    global _HELD
    _HELD = sockets


_HELD: list[socket.socket] = []


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


SECTIONS = ("fuzz", "probe", "memory", "connectors")


def fuzz_section(url: str, examples: int) -> list[Check]:
    started = time.monotonic()
    tally = fuzz(url, examples)
    console.print(f"fuzz: {tally.tried} inputs in {time.monotonic() - started:.0f} s, {tally.server_errors} 5xx, "
                  f"{tally.crashes} crashes, {tally.hangs} hangs")
    for example in tally.examples[:10]:
        console.print(f"  {example}")
    alive = httpx.get(url + "/health", timeout=CALL_DEADLINE_S, trust_env=False).status_code == 200
    return [
        Check("fuzz: 5xx", f"{tally.server_errors}", "0", tally.server_errors == 0),
        Check("fuzz: crashes", f"{tally.crashes}", "0", tally.crashes == 0 and alive),
        Check("fuzz: hangs", f"{tally.hangs}", "0", tally.hangs == 0),
    ]


def probe_section(url: str, port: int, seconds: float, idle: int, rounds: int) -> list[Check]:
    pooled = AttackLatencies()
    for _ in range(rounds):
        pooled.add(slow_attacks(url, port, seconds, idle))
    console.print(f"probe (/health every 5 ms from its own process), {rounds} round(s):")
    for phase, latencies in pooled.phases().items():
        console.print(f"  {phase:20s} {len(latencies):5d} probes, p50 {percentile(latencies, 0.5) * 1000:6.1f} ms, "
                      f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms, max {max(latencies, default=0) * 1000:6.1f} ms")
    p99 = percentile(pooled.attacked, 0.99) * 1000
    quiet = percentile(pooled.quiet, 0.99) * 1000
    return [Check("probe p99 during slow attacks", f"{p99:.1f} ms (quiet: {quiet:.1f} ms)", "< 10 ms", p99 < 10)]


def memory_section(url: str, pid: int, namespaces: int, non_readers: int) -> list[Check]:
    before = engine_rss(pid)
    memory_cases(url, namespaces, non_readers)
    after = engine_rss(pid)
    health = httpx.get(url + "/__admin/health", timeout=CALL_DEADLINE_S, trust_env=False).json()
    for sock in _HELD:
        sock.close()
    budget = DEFAULT_MEMORY_BUDGET_BYTES + RSS_OVERHEAD_BYTES
    console.print(f"RSS (engine + scan workers): {before / MB:.0f} MiB before, {after / MB:.0f} MiB after {namespaces} "
                  f"full namespaces and {non_readers} non-reading clients of a 1 MiB fault body (budget "
                  f"{budget / MB:.0f} MiB; journals hold {health['memory_used_bytes'] / MB:.0f} MiB, "
                  f"{health['evicted_by_budget']} evicted)")
    return [Check("engine RSS", f"{after / MB:.0f} MiB", f"<= {budget / MB:.0f} MiB", after <= budget)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only this section (repeatable)")
    parser.add_argument("--examples", type=int, default=300, help="hypothesis examples per API (default 300)")
    parser.add_argument("--attack-seconds", type=float, default=5.0, help="slow attacks last this long")
    parser.add_argument("--idle", type=int, default=300, help="slow / idle connections held open")
    parser.add_argument("--rounds", type=int, default=2, help="slow-attack rounds, probes pooled (default 2)")
    parser.add_argument("--namespaces", type=int, default=30, help="namespaces filled in the memory case")
    parser.add_argument("--non-readers", type=int, default=200, help="clients that never read a fault body")
    parser.add_argument("--calls", type=int, default=connector_faults.CALLS,
                        help="calls per connector x fail mode x fault (connectors section)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    sections = args.only or SECTIONS
    console.print(machine_notes())
    checks: list[Check] = []
    if {"fuzz", "probe", "memory"} & set(sections):
        with EngineProcess() as engine:
            assert engine.url is not None and engine.process.proc is not None
            if "fuzz" in sections:
                checks += fuzz_section(engine.url, args.examples)
            if "probe" in sections:
                checks += probe_section(engine.url, engine.port, args.attack_seconds, args.idle, args.rounds)
            if "memory" in sections:
                checks += memory_section(engine.url, engine.process.proc.pid, args.namespaces, args.non_readers)
    if "connectors" in sections:
        checks += connector_faults.run(args.calls)
    ok = print_checks(checks)
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
