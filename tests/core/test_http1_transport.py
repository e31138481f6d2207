"""The engine client's transports over real loopback sockets.

Every transport (httpx's own, aiohttp, the lean HTTP/1.1 one) classifies each socket-level fault of the
fake engine as the same EngineFailure kind. The HTTP/1.1 transport reads every framing an engine may use,
keeps connections alive within its bounds, and each broken answer (stall, reset, garbage, early close,
certificate that does not verify) ends as the kind the table in docs/connectors.md names."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import pytest
import trustme
import uvicorn

from akto_wire import IDLE_KEEPALIVE_S, Envelope
from reference_impl.core import EngineClient, EngineFailure, EngineSettings, FailureKind
from mock_akto.config import DEFAULT_KEEP_ALIVE_S
from reference_impl.core.aiohttp_transport import AiohttpTransport
from reference_impl.core.http1_transport import Http1Transport

pytestmark = pytest.mark.timeout(60)

ENVELOPE = Envelope.build(request_payload='{"messages": [{"role": "user", "content": "hello"}]}',
                          request_headers={"host": "app.example.com"})
VERDICT = b'{"data": {"guardrailsResult": {"Allowed": true, "Reason": ""}}}'
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _answer(body: bytes = VERDICT, *, extra: bytes = b"", status: bytes = b"200 OK") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request off the connection (head plus its content-length body), or None at its end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    return head + await reader.readexactly(length)


class LoopbackEngine:
    """A real loopback server running ``handler`` per connection; counts connections, open ones, requests."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.connections = self.open = self.most_open = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> "LoopbackEngine":
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self.open += 1
            self.most_open = max(self.most_open, self.open)
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                self.open -= 1
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.tls)
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()

    async def wait_closed_connections(self, deadline_s: float = 5.0) -> None:
        """Wait (bounded) until the server has seen every connection end."""
        end = time.monotonic() + deadline_s
        while self.open and time.monotonic() < end:
            await asyncio.sleep(0.01)


def keep_alive_answers(answer: bytes = _answer()) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await _read_request(reader)
            if request is None:
                return
            writer.write(answer)
            await writer.drain()
    return handle


def once(answer: bytes, *, reset: bool = False, close: bool = True) -> Handler:
    """Read one request, write ``answer``, then close (with an RST when ``reset``) or hold the socket."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        if answer:
            writer.write(answer)
            await writer.drain()
        if reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif not close:
            await reader.read()  # hold until the client goes
    return handle


async def _check(engine_url: str, transport: Any, timeout: float = 1.0) -> Any:
    settings = EngineSettings(akto_base_url=engine_url, guardrail_timeout=timeout, connector="test", breaker_failures=1000)
    client = EngineClient(settings, transport=transport)
    try:
        return await client.check(ENVELOPE)
    except EngineFailure as failure:
        return failure.kind
    finally:
        await client.aclose()


# --- every transport, the same failure kind on the fake engine's socket faults ------------------------

TRANSPORTS = {"httpx": lambda: None, "aiohttp": AiohttpTransport, "http1": Http1Transport}


@pytest.mark.parametrize("fault, kind", [
    (None, None),
    ({"type": "connection_reset_by_peer"}, FailureKind.UNREACHABLE),
    ({"type": "empty_response"}, FailureKind.UNREACHABLE),
    ({"type": "random_data_then_close", "bytes": 64, "seed": 1}, FailureKind.UNREACHABLE),
    ({"type": "truncated_body", "fraction": 0.5}, FailureKind.UNREACHABLE),
    ({"type": "down"}, FailureKind.UNREACHABLE),
    ({"type": "hang", "max_ms": 5000}, FailureKind.TIMEOUT),
    ({"type": "chunked_dribble", "chunks": 20, "total_ms": 3000}, FailureKind.TIMEOUT),
    ({"type": "status", "status": 502}, FailureKind.SERVER_ERROR),
    ({"type": "status", "status": 401}, FailureKind.AUTH),
    ({"type": "html_body"}, FailureKind.UNREADABLE),
    ({"type": "non_json_body"}, FailureKind.UNREADABLE),
])
def test_every_transport_classifies_engine_faults_alike(akto: Any, fault: dict[str, Any] | None,
                                                        kind: FailureKind | None) -> None:
    if fault is not None:
        akto.client.add_fault(fault)
    # 0.5 s where the engine is meant to time out (hang, dribble); elsewhere room for a busy machine (CI once
    # took longer than 0.5 s for a plain allow while other tests ran beside it).
    timeout = 0.5 if kind is FailureKind.TIMEOUT else 3.0
    results = {name: asyncio.run(_check(akto.url, make(), timeout=timeout)) for name, make in TRANSPORTS.items()}
    if kind is None:
        assert all(getattr(result, "allowed", False) for result in results.values()), results
    else:
        assert results == {name: kind for name in TRANSPORTS}


# --- framings and keep-alive ------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [
    pytest.param(_answer(), id="content-length"),
    pytest.param(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                 + b"".join(b"%x\r\n%s\r\n" % (len(VERDICT[i:i + 7]), VERDICT[i:i + 7]) for i in range(0, len(VERDICT), 7))
                 + b"0\r\n\r\n", id="chunked"),
    pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n" + _answer(), id="interim-100"),
])
def test_framings_read_and_connection_kept(answer: bytes) -> None:
    async def run() -> None:
        async with LoopbackEngine(keep_alive_answers(answer)) as engine:
            transport = Http1Transport()
            for _ in range(3):
                reply = await transport.post(engine.url + "/api/http-proxy?guardrails=true", b'{"a": 1}',
                                             [("content-type", "application/json")])
                assert (reply.status, reply.content, reply.content_type) == (200, VERDICT, "application/json")
            assert engine.connections == 1  # kept alive
            await transport.aclose()
    asyncio.run(run())


def test_request_bytes_on_the_wire() -> None:
    async def run() -> None:
        async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            engine.requests.append(await _read_request(reader) or b"")
            writer.write(_answer())
        async with LoopbackEngine(record) as engine:
            await Http1Transport().post(engine.url + "/api/http-proxy?x=1", b"{}", [("content-type", "application/json"),
                                                                                ("x-api-key", "k")])
        head, _, body = engine.requests[0].partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"POST /api/http-proxy?x=1 HTTP/1.1"
        assert set(lines[1:]) == {b"host: " + engine.url.split("//")[1].encode(), b"content-type: application/json",
                                  b"x-api-key: k", b"content-length: 2"}
        assert body == b"{}"
    asyncio.run(run())


def test_close_delimited_and_connection_close_answers_are_not_reused() -> None:
    async def run() -> None:
        http10 = b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n" + VERDICT
        for answer in (http10, _answer(extra=b"connection: close\r\n")):
            async with LoopbackEngine(once(answer)) as engine:
                transport = Http1Transport()
                for _ in range(2):
                    reply = await transport.post(engine.url + "/", b"{}", [])
                    assert reply.content == VERDICT
                assert engine.connections == 2
    asyncio.run(run())


def test_idle_connections_expire_and_the_pool_is_bounded() -> None:
    async def run() -> None:
        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await _read_request(reader) is not None:
                await asyncio.sleep(0.05)
                writer.write(_answer())
        async with LoopbackEngine(slow) as engine:
            transport = Http1Transport(max_connections=2)
            await asyncio.gather(*(transport.post(engine.url + "/", b"{}", []) for _ in range(8)))
            assert engine.most_open == 2 and engine.connections == 2
            # callers that give up while waiting for a slot do not leak it: the pool still serves two at once
            waiting = [asyncio.create_task(transport.post(engine.url + "/", b"{}", [])) for _ in range(6)]
            await asyncio.sleep(0.01)
            for task in waiting[2:]:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
            await asyncio.gather(*(transport.post(engine.url + "/", b"{}", []) for _ in range(4)))
            assert engine.most_open == 2 and engine.connections == 2
            expiring = Http1Transport(keepalive_s=0)
            await expiring.post(engine.url + "/", b"{}", [])
            await expiring.post(engine.url + "/", b"{}", [])
            assert engine.connections == 4  # the idle one was older than keepalive_s: a new connection
    asyncio.run(run())


@pytest.mark.parametrize("name", ["aiohttp", "http1"])
def test_a_connection_idle_past_keepalive_s_is_not_reused(name: str) -> None:
    """What keeps a POST from being written into a connection the engine is closing for being idle."""
    async def run() -> None:
        async with LoopbackEngine(keep_alive_answers()) as engine:
            transport = TRANSPORTS[name](keepalive_s=0.2)
            try:
                for _ in range(2):  # back to back: one connection
                    await transport.post(engine.url + "/", b"{}", [])
                assert engine.connections == 1
                await asyncio.sleep(0.5)  # the idle time under test, not a wait for anything
                await transport.post(engine.url + "/", b"{}", [])
                assert engine.connections == 2
            finally:
                await transport.aclose()
    asyncio.run(run())


def test_connectors_drop_idle_connections_before_the_engine_does() -> None:
    assert IDLE_KEEPALIVE_S < uvicorn.Config(app=None).timeout_keep_alive < DEFAULT_KEEP_ALIVE_S
    assert AiohttpTransport().keepalive_s == Http1Transport().keepalive_s == IDLE_KEEPALIVE_S


def test_header_injection_refused() -> None:
    with pytest.raises(httpx.LocalProtocolError):
        asyncio.run(Http1Transport().post("http://127.0.0.1:9/", b"{}", [("x-key", "a\r\nx-evil: 1")]))


# --- broken engines over real sockets, through the engine client ------------------------------------

@pytest.mark.parametrize("handler, kind", [
    pytest.param(once(b"", close=False), FailureKind.TIMEOUT, id="stalls"),
    pytest.param(once(b"", reset=True), FailureKind.UNREACHABLE, id="resets"),
    pytest.param(once(b"\x16\x03garbage that is no HTTP at all\r\n\r\n"), FailureKind.UNREACHABLE, id="garbage"),
    pytest.param(once(b"HTTP/1.1 2OO OK\r\n\r\n"), FailureKind.UNREACHABLE, id="bad-status-line"),
    pytest.param(once(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), FailureKind.UNREACHABLE, id="bad-header"),
    pytest.param(once(b""), FailureKind.UNREACHABLE, id="closes-before-answering"),
    pytest.param(once(_answer()[:-10]), FailureKind.UNREACHABLE, id="closes-mid-body"),
    pytest.param(once(_answer()[:30]), FailureKind.UNREACHABLE, id="closes-mid-head"),
    pytest.param(once(_answer(VERDICT + b"trailing")[:-8] + b"trailing!!"), FailureKind.UNREACHABLE, id="bytes-past-length"),
    pytest.param(once(_answer(b"", status=b"503 Busy")), FailureKind.SERVER_ERROR, id="server-error"),
    pytest.param(once(_answer(b"x", status=b"403 Forbidden")), FailureKind.AUTH, id="auth"),
])
def test_broken_engine_kinds(handler: Handler, kind: FailureKind) -> None:
    async def run() -> None:
        async with LoopbackEngine(handler) as engine:
            started = time.monotonic()
            assert await _check(engine.url, Http1Transport(), timeout=0.5) == kind
            assert time.monotonic() - started < 1.5  # the deadline bounds every case
            await engine.wait_closed_connections()
            assert engine.open == 0  # a failed call's connection is closed, not kept
    asyncio.run(run())


def test_refused_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        assert asyncio.run(_check(f"http://127.0.0.1:{port}", Http1Transport())) == FailureKind.UNREACHABLE


# --- TLS: verified by default --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_engine_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ca, ca_file


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_tls_engine_with_an_untrusted_certificate_is_refused_by_default(tls_engine_files: tuple[trustme.CA, Path]) -> None:
    ca, _ = tls_engine_files

    async def run() -> None:
        async with LoopbackEngine(keep_alive_answers(), tls=_server_context(ca)) as engine:
            assert await _check(engine.url, Http1Transport()) == FailureKind.TLS
            with pytest.raises(httpx.ConnectError, match="certificate not verified"):
                await Http1Transport().post(engine.url + "/", b"{}", [])
    asyncio.run(run())


def test_tls_engine_trusted_through_its_ca_file(tls_engine_files: tuple[trustme.CA, Path]) -> None:
    ca, ca_file = tls_engine_files

    async def run() -> None:
        async with LoopbackEngine(keep_alive_answers(), tls=_server_context(ca)) as engine:
            transport = Http1Transport(verify=str(ca_file))
            for _ in range(2):
                verdict = await _check(engine.url, transport)
                assert not isinstance(verdict, FailureKind) and verdict.allowed
            assert engine.connections == 2  # _check closes its client each time
    asyncio.run(run())
