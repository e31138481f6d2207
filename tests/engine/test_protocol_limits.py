"""The engine protocol's header limit fed chunk by chunk, as a socket may deliver them (deterministic: a real
uvicorn protocol object and app, the bytes handed to ``data_received`` in the exact splits under test).

Over real sockets the kernel decides the splits; these cases need one split in a precise place, which a
loopback socket only produces by chance. The socket-level behaviour is tested in test_hardening.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from mock_akto.protocol import LIMITS_ATTRIBUTE, ConnectionLimits, TransportExposingProtocol

LIMIT = 4096


class RecordingTransport(asyncio.Transport):
    """Collects what the protocol writes; the loopback addresses a real socket would report."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8090), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def feed(chunks: list[bytes]) -> tuple[bytes, list[dict[str, Any]]]:
    """What the engine protocol answers to ``chunks`` (each one ``data_received`` call), and the requests the
    app saw (an app answering 200 with an empty body)."""
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    config = uvicorn.Config(app, http=TransportExposingProtocol, lifespan="off", log_level="warning")
    config.load()
    setattr(config, LIMITS_ATTRIBUTE, ConnectionLimits(max_header_bytes=LIMIT))
    protocol = TransportExposingProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    transport = RecordingTransport()
    protocol.connection_made(transport)
    try:
        for chunk in chunks:
            if transport.closed:
                break
            protocol.data_received(chunk)
            # Until the app has answered the request in flight (the caller's wait_for bounds it).
            while protocol.cycle is not None and not protocol.cycle.response_complete and not transport.closed:
                await asyncio.sleep(0)
    finally:
        protocol.connection_lost(None)
    return bytes(transport.written), seen


def run(chunks: list[bytes]) -> tuple[bytes, list[dict[str, Any]]]:
    return asyncio.run(asyncio.wait_for(feed(chunks), timeout=10))


HEAD = b"POST /api/http-proxy HTTP/1.1\r\nhost: engine\r\ncontent-length: %d\r\n"


def test_a_header_end_split_across_chunks_before_a_big_body_is_not_refused() -> None:
    """The blank line's two CRLFs in two chunks, the second carrying more body than the header limit: the
    headers are small, so the call is served (counting the whole second chunk as headers would be a 431)."""
    body = b"x" * (LIMIT * 4)
    answer, seen = run([HEAD % len(body), b"\r\n" + body])
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
    assert len(seen) == 1


def test_complete_headers_over_the_limit_in_one_chunk_are_refused_before_the_app_runs() -> None:
    answer, seen = run([b"GET /health HTTP/1.1\r\nhost: engine\r\nx-big: " + b"a" * (LIMIT * 2) + b"\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    assert str(LIMIT).encode() in answer
    assert seen == []


@pytest.mark.parametrize("piece", [1, 100, 1000])
def test_headers_dribbled_past_the_limit_are_refused_as_they_grow(piece: int) -> None:
    dribble = [b"GET /health HTTP/1.1\r\nhost: engine\r\n"] + [b"x-drip: " + b"a" * piece + b"\r\n"] * (2 * LIMIT // piece + 2)
    answer, seen = run(dribble)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    assert seen == []


def test_keep_alive_requests_each_count_their_own_headers() -> None:
    """Many small requests on one connection, each header block in two chunks: the count starts again with
    each request (ten requests' headers together are over the limit)."""
    head = b"GET /health HTTP/1.1\r\nhost: engine\r\nx-pad: " + b"a" * (LIMIT // 4) + b"\r\n"
    answer, seen = run([head, b"\r\n"] * 10)
    assert answer.count(b"HTTP/1.1 200 ") == 10 and b"431" not in answer
    assert len(seen) == 10
