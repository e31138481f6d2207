"""Every fault, observed by real clients (httpx, http.client, a raw socket) over loopback sockets.

The server is tests/engine/fault_server.py in a child process: it computes an allow answer and lets the
fault named in the request body deliver (or break) it, exactly as the engine will.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import socket
import statistics
import sys
import time
from pathlib import Path

import httpx
import pytest

import akto_wire as wire
from harness.process import ManagedProcess, free_port, http_ready
from mock_akto.app import build_app
from mock_akto.client import MockAktoClient
from mock_akto.faults import (
    FAULTS, HTML_ERROR_PAGE, NON_JSON_TEXT, FixedDelay, LognormalDelay, RandomDataThenClose, UniformDelay,
    parse_fault,
)
from mock_akto.protocol import ARRIVED_KEY
from mock_akto.rules import FaultRule
from mock_akto.server import EngineConfig

SERVER_SCRIPT = Path(__file__).with_name("fault_server.py")
PROXY_PATH = wire.HTTP_PROXY_PATH
MARK_HEADER = "x-fault-server"


@pytest.fixture(scope="module")
def server() -> tuple[str, int]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, str(SERVER_SCRIPT), "--port", str(port)]
    with ManagedProcess("fault-server", argv, ready=http_ready(url + "/health"), startup_timeout=20):
        yield url, port


@pytest.fixture
def base_url(server: tuple[str, int]) -> str:
    return server[0]


@pytest.fixture
def client(base_url: str) -> httpx.Client:
    with httpx.Client(base_url=base_url, timeout=5.0, trust_env=False) as http:
        yield http


def call(client: httpx.Client, fault: dict | None, **body: object) -> httpx.Response:
    return client.post(PROXY_PATH, json={"fault": fault, **body})


def raw_post(path: str, body: bytes, *, close: bool = False) -> bytes:
    """One HTTP/1.1 POST of ``body`` as raw bytes (keep-alive unless ``close``)."""
    connection = "connection: close\r\n" if close else ""
    return (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"{connection}content-length: {len(body)}\r\n\r\n").encode() + body


def raw_call(port: int, fault: dict, timeout: float = 5.0) -> tuple[list[tuple[float, bytes]], BaseException | None]:
    """Send one request on a plain socket; return every read (seconds since sending, bytes) until EOF or
    an error, and the error."""
    request = raw_post(PROXY_PATH, json.dumps({"fault": fault}).encode(), close=True)
    reads: list[tuple[float, bytes]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        started = time.monotonic()
        try:
            while chunk := sock.recv(65536):
                reads.append((time.monotonic() - started, chunk))
        except OSError as error:
            return reads, error
    return reads, None


def http_client_call(port: int, fault: dict) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("POST", PROXY_PATH, body=json.dumps({"fault": fault}),
                       headers={"content-type": "application/json"})
    return connection.getresponse()


def test_catalogue_has_every_fault_of_the_design() -> None:
    assert set(FAULTS) == {
        "fixed_delay", "uniform_delay", "lognormal_delay", "chunked_dribble", "hang", "down",
        "connection_reset_by_peer", "empty_response", "random_data_then_close", "truncated_body", "status",
        "non_json_body", "html_body", "wrong_content_type", "schema_break", "fail_open_verdict",
        "slow_guardrails",
    }
    for name, cls in FAULTS.items():
        assert cls.__doc__ and cls.__doc__.strip(), f"{name} needs a docstring saying what the client sees"


def test_without_a_fault_the_computed_answer_arrives(client: httpx.Client) -> None:
    response = call(client, None, text="hi")
    assert response.status_code == 200
    assert response.headers[MARK_HEADER] == "1"
    assert response.json()["data"]["guardrailsResult"]["Allowed"] is True


# --- delays -------------------------------------------------------------------------------------------

def timed(function, *args, **kwargs):
    started = time.monotonic()
    result = function(*args, **kwargs)
    return result, time.monotonic() - started


def test_fixed_delay_answers_after_ms(client: httpx.Client) -> None:
    response, elapsed = timed(call, client, {"type": "fixed_delay", "ms": 300})
    assert response.status_code == 200 and response.json()["success"] is True
    assert 0.29 <= elapsed < 2.5


def test_uniform_delay_answers_within_its_bounds(client: httpx.Client) -> None:
    response, elapsed = timed(call, client, {"type": "uniform_delay", "lower_ms": 150, "upper_ms": 300})
    assert response.status_code == 200
    assert 0.145 <= elapsed < 2.5


def test_uniform_delay_samples_cover_the_range_and_stay_inside() -> None:
    delay = UniformDelay(lower_ms=100, upper_ms=200)
    samples = [delay.sample_ms(random.Random(seed)) for seed in range(2000)]
    assert 100 <= min(samples) < 105 and 195 < max(samples) <= 200


def test_lognormal_delay_has_the_asked_median_and_p99() -> None:
    delay = LognormalDelay(median_ms=100, p99_ms=1000)
    rng = random.Random(42)
    samples = sorted(delay.sample_ms(rng) for _ in range(40_000))
    assert statistics.median(samples) == pytest.approx(100, rel=0.05)
    assert samples[int(len(samples) * 0.99)] == pytest.approx(1000, rel=0.12)
    assert delay.sigma == pytest.approx(0.99, abs=0.01)


def test_lognormal_delay_over_the_wire_delivers_the_answer(client: httpx.Client) -> None:
    response, elapsed = timed(call, client, {"type": "lognormal_delay", "median_ms": 40, "p99_ms": 41})
    assert response.status_code == 200 and response.json()["success"] is True
    assert 0.03 <= elapsed < 2.5


def test_a_delay_then_a_reset_resets_after_the_delay(server: tuple[str, int]) -> None:
    reads, error = raw_call(server[1], {"type": "fixed_delay", "ms": 250, "then": {"type": "connection_reset_by_peer"}})
    assert reads == [] and isinstance(error, ConnectionResetError)


def test_a_delay_then_a_status_arrives_late_with_that_status(client: httpx.Client) -> None:
    fault = {"type": "uniform_delay", "lower_ms": 200, "upper_ms": 220, "then": {"type": "status", "status": 502}}
    response, elapsed = timed(call, client, fault)
    assert response.status_code == 502 and elapsed >= 0.195


def test_chained_delays_add_up(client: httpx.Client) -> None:
    fault = {"type": "fixed_delay", "ms": 150, "then": {"type": "fixed_delay", "ms": 150}}
    response, elapsed = timed(call, client, fault)
    assert response.status_code == 200 and elapsed >= 0.3


def test_a_delay_counts_from_when_the_engine_received_the_call(make_engine) -> None:  # noqa: ANN001
    """The engine starts counting when the call reaches it (its headers), not after its own work: a client
    that takes 1.5 s to upload the body of a 1 s-delayed call gets the answer right after the body, not 1 s
    later; and never before 1 s from the headers. (Seconds, not tenths: a busy CI machine must not be able
    to take the whole margin.)"""
    delay_s = 1.0
    engine = make_engine()
    with MockAktoClient(engine.url) as admin:
        admin.add_fault({"type": "fixed_delay", "ms": int(delay_s * 1000)})
    body = json.dumps({"requestPayload": "hello"}).encode()
    head = (f"POST {PROXY_PATH}?guardrails=true HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", engine.port), timeout=10) as sock:
        sock.sendall(head)
        headers_sent = time.monotonic()
        time.sleep(1.5)  # the slow upload under test, not a synchronisation
        sock.sendall(body)
        body_sent = time.monotonic()
        first = sock.recv(65536)
        answered = time.monotonic()
    assert first.startswith(b"HTTP/1.1 200")
    assert answered - headers_sent >= delay_s
    assert answered - body_sent < delay_s, f"answered {answered - body_sent:.3f}s after the body: the delay restarted"


def test_a_delay_counts_from_the_arrival_the_server_stamped() -> None:
    """Under a burst, uvicorn parses every readable socket before any app task runs, so the app may start
    a call long after it arrived; the engine's protocol stamps the arrival and a delay counts from that
    stamp (here: the call waited 800 ms for the app, so a 1 s delay has about 200 ms left; restarted, the
    answer would come 1.8 s after arrival)."""
    app = build_app(EngineConfig())
    app.registry.global_rules.add(FaultRule(fault=FixedDelay(ms=1000)))
    body = json.dumps({"requestPayload": "hello"}).encode()
    statuses: list[int] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run() -> float:
        arrived = time.perf_counter() - 0.8
        scope = {"type": "http", "method": "POST", "path": PROXY_PATH, "query_string": b"guardrails=true",
                 "headers": [(b"content-type", b"application/json")], "server": ("127.0.0.1", 1),
                 "extensions": {ARRIVED_KEY: arrived}}
        await app(scope, receive, send)
        return time.perf_counter() - arrived

    since_arrival = asyncio.run(asyncio.wait_for(run(), timeout=10))
    assert statuses == [200]
    assert 1.0 <= since_arrival < 1.8, f"answered {since_arrival:.3f}s after arrival: the delay restarted"


def concurrent_round(port: int, request: bytes, concurrency: int, timeout: float) -> tuple[float, list[float], list[bytes]]:
    """Send ``request`` once on each of ``concurrency`` pre-opened connections, all at once; the round's
    total time, each call's time and each answer's body (every answer must be a 200).

    The client is plain asyncio streams, so the round times the server: an httpx AsyncClient spends 3-5 ms
    of CPU per request on this 2-core machine (measured: 0.8-6 s for a round of 200), which would hide
    exactly the queueing these tests look for.
    """

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[float, bytes]:
        started = time.monotonic()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:80]
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        body = await reader.readexactly(length)
        return time.monotonic() - started, body

    async def run() -> tuple[float, list[tuple[float, bytes]]]:
        connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(concurrency)]
        try:
            started = time.monotonic()
            answers = await asyncio.gather(*(one(*connection) for connection in connections))
            return time.monotonic() - started, answers
        finally:
            for _, writer in connections:
                writer.close()

    total, answers = asyncio.run(asyncio.wait_for(run(), timeout=timeout))
    return total, [elapsed for elapsed, _ in answers], [body for _, body in answers]


def test_200_concurrent_delays_do_not_queue(server: tuple[str, int]) -> None:
    """A delay never holds a worker: 200 concurrent 1 s delays end together, not in waves. (The delay is
    long beside the round's own CPU: 200 ms delays took 0.67 s on a busy CI machine, no waves involved.)"""
    delay_s, concurrency = 1.0, 200
    body = json.dumps({"fault": {"type": "fixed_delay", "ms": int(delay_s * 1000)}}).encode()
    total, each, bodies = concurrent_round(server[1], raw_post(PROXY_PATH, body), concurrency, timeout=30)
    assert all(json.loads(answer)["success"] is True for answer in bodies)
    assert min(each) >= delay_s * 0.95
    # Served in waves (a worker held per delay) the round would take >= 2 x the delay.
    assert total < delay_s * 2, f"200 concurrent 1 s delays took {total:.3f}s"


def test_1000_concurrent_delays_finish_in_about_one_delay(akto) -> None:  # noqa: ANN001
    """The issue's own figure, on the real engine (its ``serve`` process raises its open-files limit):
    1,000 calls delayed (1 s each here, long beside the round's own CPU on a busy machine), sent at once on
    1,000 connections, all answered after their delay and the whole round under two delays (a worker held
    per delay would take waves)."""
    from mock_akto.server import raise_open_files_limit

    delay_s, concurrency = 1.0, 1000
    if (raise_open_files_limit(4 * concurrency) or 0) < 2 * concurrency + 100:
        pytest.skip("this process may not open 2,100 files (hard RLIMIT_NOFILE too low)")
    akto.client.add_fault({"type": "fixed_delay", "ms": int(delay_s * 1000)})
    port = int(akto.url.rsplit(":", 1)[1])
    body = json.dumps(wire.Envelope.build(request_payload="hello").model_dump()).encode()
    total, each, _ = concurrent_round(port, raw_post(PROXY_PATH + "?guardrails=true", body), concurrency, timeout=60)
    assert len(each) == concurrency and min(each) >= delay_s * 0.99
    assert total < delay_s * 2, f"1,000 concurrent 1 s delays took {total:.3f}s"
    assert akto.client.count() == concurrency  # every call journaled


def test_concurrent_delays_through_a_shared_httpx_client(base_url: str) -> None:
    """The same with httpx (a real client's view): every answer arrives, none before its delay."""

    async def run() -> list[float]:
        limits = httpx.Limits(max_connections=60, max_keepalive_connections=60)
        async with httpx.AsyncClient(base_url=base_url, timeout=20, limits=limits, trust_env=False) as http:
            async def one() -> float:
                started = time.monotonic()
                response = await http.post(PROXY_PATH, json={"fault": {"type": "fixed_delay", "ms": 200}})
                assert response.status_code == 200
                return time.monotonic() - started
            return await asyncio.gather(*(one() for _ in range(50)))

    each = asyncio.run(run())
    assert len(each) == 50 and min(each) >= 0.19


# --- trickle and hang ---------------------------------------------------------------------------------

def test_chunked_dribble_body_arrives_in_pieces_over_time(client: httpx.Client) -> None:
    fault = {"type": "chunked_dribble", "chunks": 5, "total_ms": 500}
    arrivals: list[tuple[float, int]] = []
    started = time.monotonic()
    with client.stream("POST", PROXY_PATH, json={"fault": fault, "text": "x" * 400}) as response:
        assert response.status_code == 200
        assert response.headers[MARK_HEADER] == "1"
        body = b""
        for piece in response.iter_raw():
            arrivals.append((time.monotonic() - started, len(piece)))
            body += piece
    assert json.loads(body)["data"]["guardrailsResult"]["ModifiedPayload"] == "x" * 400
    assert len(arrivals) >= 4, arrivals
    assert arrivals[-1][0] - arrivals[0][0] >= 0.3, arrivals
    assert arrivals[-1][0] >= 0.48


def test_chunked_dribble_seen_on_a_raw_socket(server: tuple[str, int]) -> None:
    reads, error = raw_call(server[1], {"type": "chunked_dribble", "chunks": 3, "total_ms": 300})
    assert error is None
    assert len(reads) >= 3 and reads[-1][0] - reads[0][0] >= 0.15
    head, _, body = b"".join(chunk for _, chunk in reads).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["success"] is True


def test_hang_is_observed_as_a_client_read_timeout(client: httpx.Client) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post(PROXY_PATH, json={"fault": {"type": "hang"}}, timeout=httpx.Timeout(5.0, read=0.5))
    assert time.monotonic() - started >= 0.45
    assert call(client, None).status_code == 200  # the server is not stuck


def test_hang_ends_with_a_silent_close_after_max_ms(client: httpx.Client) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        call(client, {"type": "hang", "max_ms": 300})
    assert 0.29 <= time.monotonic() - started < 3


# --- socket breaks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fault_type", ["connection_reset_by_peer", "down"])
def test_reset_is_an_rst(server: tuple[str, int], client: httpx.Client, fault_type: str) -> None:
    reads, error = raw_call(server[1], {"type": fault_type})
    assert reads == [] and isinstance(error, ConnectionResetError)
    with pytest.raises(httpx.ReadError, match="reset"):
        call(client, {"type": fault_type})
    with pytest.raises(ConnectionResetError):
        http_client_call(server[1], {"type": fault_type})


def test_empty_response_is_a_fin_without_bytes(server: tuple[str, int], client: httpx.Client) -> None:
    reads, error = raw_call(server[1], {"type": "empty_response"})
    assert reads == [] and error is None
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        call(client, {"type": "empty_response"})
    with pytest.raises(http.client.RemoteDisconnected):
        http_client_call(server[1], {"type": "empty_response"})


def test_random_data_then_close_sends_seeded_garbage(server: tuple[str, int], client: httpx.Client) -> None:
    fault = {"type": "random_data_then_close", "bytes": 200, "seed": 7}
    reads, error = raw_call(server[1], fault)
    received = b"".join(chunk for _, chunk in reads)
    assert error is None
    assert received == RandomDataThenClose(bytes=200, seed=7).garbage() and len(received) == 200
    assert not received.startswith(b"HTTP/")
    with pytest.raises(httpx.RemoteProtocolError):
        call(client, fault)
    with pytest.raises(http.client.HTTPException):
        http_client_call(server[1], fault)


def test_truncated_body_promises_more_than_it_sends(server: tuple[str, int], client: httpx.Client) -> None:
    reads, error = raw_call(server[1], {"type": "truncated_body", "fraction": 0.25})
    assert error is None
    head, _, body = b"".join(chunk for _, chunk in reads).partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert lines[0].startswith("http/1.1 200")
    promised = int(next(line.split(":")[1] for line in lines if line.startswith("content-length")))
    assert len(body) == int(promised * 0.25) and 0 < len(body) < promised
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete|complete message body"):
        call(client, {"type": "truncated_body"})
    response = http_client_call(server[1], {"type": "truncated_body"})
    with pytest.raises(http.client.IncompleteRead):
        response.read()


# --- HTTP-level faults ----------------------------------------------------------------------------------

def test_status_serves_any_status_body_type_and_headers(client: httpx.Client) -> None:
    fault = {"type": "status", "status": 503, "body": "<b>busy</b>", "content_type": "text/html",
             "headers": {"retry-after": "3"}}
    response = call(client, fault)
    assert response.status_code == 503
    assert response.text == "<b>busy</b>"
    assert response.headers["content-type"] == "text/html"
    assert response.headers["retry-after"] == "3"


def test_non_json_body_cannot_be_parsed(client: httpx.Client) -> None:
    response = call(client, {"type": "non_json_body"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == NON_JSON_TEXT
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_html_body_is_an_error_page(client: httpx.Client) -> None:
    response = call(client, {"type": "html_body"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == HTML_ERROR_PAGE
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_wrong_content_type_labels_valid_json_as_html(client: httpx.Client) -> None:
    normal = call(client, None, text="same").json()
    response = call(client, {"type": "wrong_content_type"}, text="same")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.json() == normal


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("missing_allowed", lambda data: "Allowed" not in data["guardrailsResult"]
         and data["guardrailsResult"]["Reason"] == ""),
        ("wrong_types", lambda data: data["guardrailsResult"]["Allowed"] == "true"
         and data["guardrailsResult"]["Modified"] == "false"),
        ("null_guardrails_result", lambda data: "guardrailsResult" in data and data["guardrailsResult"] is None),
        ("no_guardrails_result", lambda data: "guardrailsResult" not in data and data["success"] is True),
    ],
)
def test_schema_break_bends_the_verdict(client: httpx.Client, kind: str, check) -> None:
    response = call(client, {"type": "schema_break", "kind": kind})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers[MARK_HEADER] == "1"
    assert check(response.json()["data"])


def test_schema_break_reaches_merged_results() -> None:
    merged = wire.merge_verdicts(wire.Verdict.allow("a"), wire.Verdict(allowed=False, reason="PII"))
    body = wire.success_body(merged)
    bent = parse_fault({"type": "schema_break", "kind": "missing_allowed"}).bend(body)["data"]["guardrailsResult"]
    assert "Allowed" not in bent and "Allowed" not in bent["requestResult"] and "Allowed" not in bent["responseResult"]
    assert body["data"]["guardrailsResult"]["Allowed"] is False  # the original is untouched
    assert parse_fault({"type": "schema_break", "kind": "wrong_types"}).bend({"success": False}) == {"success": False}


@pytest.mark.parametrize("legacy", [False, True])
def test_fail_open_verdict_is_akto_gateways_own(client: httpx.Client, legacy: bool) -> None:
    response = call(client, {"type": "fail_open_verdict", "error": "upstream timed out", "legacy": legacy})
    assert response.status_code == 200
    result = response.json()["data"]["guardrailsResult"]
    assert result == wire.fail_open_verdict("upstream timed out", legacy=legacy)
    assert ("Allowed" in result) is not legacy


def test_an_invalid_fault_is_refused_naming_the_field(client: httpx.Client) -> None:
    response = call(client, {"type": "truncated_body", "fraction": 1.5})
    assert response.status_code == 422
    assert "truncated_body.fraction" in response.json()["error"]


# --- faults chosen by rules, over the wire ----------------------------------------------------------------

@pytest.fixture
def rules(client: httpx.Client) -> httpx.Client:
    client.delete("/__rules")
    yield client
    client.delete("/__rules")


def test_a_rule_fails_the_first_n_calls_then_recovers(rules: httpx.Client) -> None:
    rule = {"match": {"path": "/api/*", "direction": "request"}, "fault": {"type": "connection_reset_by_peer"},
            "first_n": 2}
    assert rules.post("/__rules", json=rule).status_code == 200
    outcomes = []
    for _ in range(5):
        try:
            outcomes.append(rules.post(PROXY_PATH + "?guardrails=true", json={"requestPayload": "x"}).status_code)
        except httpx.ReadError:
            outcomes.append("reset")
    assert outcomes == ["reset", "reset", 200, 200, 200]
    listed = rules.get("/__rules").json()
    assert [(r["matched"], r["applied"]) for r in listed] == [(2, 2)]


def test_a_rule_only_hits_matching_calls(rules: httpx.Client) -> None:
    rule = {"match": {"direction": "response"}, "fault": {"type": "status", "status": 500}}
    assert rules.post("/__rules", json=rule).status_code == 200
    assert rules.post(PROXY_PATH + "?guardrails=true", json={"requestPayload": "x"}).status_code == 200
    assert rules.post(PROXY_PATH + "?response_guardrails=true", json={"requestPayload": "x"}).status_code == 500


def test_delays_never_end_early_even_when_the_timer_fires_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvloop times timers in whole milliseconds from a cached clock, so ``asyncio.sleep(0.3)`` can return
    after 299.9 ms (seen in this suite's CLI test). Simulate a timer that fires at 60% of the wait:
    ``sleep_at_least`` must still not return before the full delay."""
    import time as _time

    from mock_akto import faults

    real_sleep = asyncio.sleep

    async def early_sleep(seconds: float) -> None:
        await real_sleep(seconds * 0.6)

    monkeypatch.setattr(faults.asyncio, "sleep", early_sleep)

    async def measure() -> float:
        started = _time.monotonic()
        await faults.sleep_at_least(0.05)
        return _time.monotonic() - started

    assert asyncio.run(measure()) >= 0.05
