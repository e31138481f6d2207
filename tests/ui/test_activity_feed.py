"""The activity feed over a raw socket: a browser that stops reading never grows the engine's memory (the
journal ring is the only buffer: what it drops meanwhile is reported as skipped), and a reader sees calls
that a fault held until they finish."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from harness.engine import EngineProcess
from harness.process import wait_until

pytestmark = pytest.mark.timeout(180)

TOTAL = 800


def open_stream(engine_url: str, backlog: int = 0) -> socket.socket:
    url = httpx.URL(engine_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # a slow browser: a small window, set before connecting
    sock.settimeout(10)
    sock.connect((url.host, url.port))
    sock.sendall(f"GET /__admin/ui/events?backlog={backlog} HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode())
    return sock


def read_events(sock: socket.socket, until: bytes, deadline_s: float) -> bytes:
    data = b""
    deadline = time.monotonic() + deadline_s
    sock.settimeout(1)
    while until not in data and time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data


def test_a_reader_that_stops_reading_skips_what_the_ring_dropped():
    with EngineProcess(extra_args=["--journal-size", "50"]) as engine:
        sock = open_stream(engine.url)
        try:
            read_events(sock, b"retry:", 10)
            # a 16 KB app name (the envelope's host) makes each event ~16 KB: 800 of them (13 MB) are far more than
            # the socket buffers hold, so the stream stalls
            envelope = {"requestPayload": "hello"}
            with httpx.Client(base_url=engine.url, timeout=10, trust_env=False) as http:
                for index in range(TOTAL):
                    host = f"h{index}-" + "x" * 16_000
                    http.post("/api/http-proxy?guardrails=true", json={**envelope, "requestHeaders": json.dumps({"host": host})})
                # the engine still answers at once while the stream is stalled
                assert http.get("/__admin/health").status_code == 200
            data = read_events(sock, b"event: skipped", 30)
        finally:
            sock.close()
    assert b"event: skipped" in data
    skipped = sum(json.loads(line[6:])["count"] for line in data.split(b"\n") if line.startswith(b"data: {\"count\""))
    calls = data.count(b"event: call")
    assert skipped > 0 and calls + skipped <= TOTAL
    assert calls < TOTAL  # the engine did not keep every event for this reader


def test_a_call_held_by_a_delay_is_sent_once_it_finished():
    with EngineProcess() as engine:
        client = engine.client("held")
        client.add_fault({"type": "fixed_delay", "ms": 500})
        sock = open_stream(engine.url)
        try:
            read_events(sock, b"retry:", 10)
            started = time.monotonic()
            response = httpx.post(f"{engine.url}/ns/held/api/http-proxy?guardrails=true",
                                  json={"requestPayload": "hello"}, timeout=10, trust_env=False)
            assert response.status_code == 200
            data = read_events(sock, b"event: call", 10)
        finally:
            sock.close()
            client.close()
    assert time.monotonic() - started >= 0.5
    event = json.loads(data.split(b"data: ", 1)[1].split(b"\n", 1)[0])
    assert event["namespace"] == "held" and event["fault"] == "fixed_delay" and event["status"] == 200
    assert event["latency_ms"] >= 500


def test_redactions_align_only_when_the_modification_is_a_token_swap():
    from mock_akto.activity import redaction_segments

    assert redaction_segments("mail a@b.co now", "mail [REDACTED_EMAIL] now") == [
        {"text": "mail "}, {"text": "a@b.co", "redacted_as": "[REDACTED_EMAIL]"}, {"text": " now"}]
    assert redaction_segments("a@b.co", "[REDACTED_EMAIL]") == [{"text": "a@b.co", "redacted_as": "[REDACTED_EMAIL]"}]
    assert redaction_segments("x a@b.co y c@d.io", "x [REDACTED_EMAIL] y [REDACTED_EMAIL]")[-1] == {
        "text": "c@d.io", "redacted_as": "[REDACTED_EMAIL]"}
    assert redaction_segments("hello", "goodbye [REDACTED]") is None  # the kept text differs: no false highlight
    assert redaction_segments("hello", "hello") is None  # nothing redacted
