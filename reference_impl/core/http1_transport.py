"""A lean HTTP/1.1 client for the engine's POSTs, on asyncio protocols, for hosts where client CPU is scarce.

Why: the egress addon runs inside mitmdump's one event loop, where every engine call's client CPU is taken
from the proxied traffic (issue 12.2). aiohttp's request machinery (sessions, connectors, tracing, payload
writers, its stream reader) was about a sixth of that process's CPU at 50 agents; an engine call needs
far less: one write of head and body on a kept-alive connection, and one answer read with a
``content-length`` or ``chunked`` body. Plain HTTP and TLS (verified by default, like every transport here).

Bounds: the engine client's total deadline around the whole call (a cancelled call's connection is
aborted, never reused), at most ``max_connections`` at once, idle connections dropped after
``keepalive_s`` (before a server's own idle timeout closes them under a request), the answer's head and
body capped. Failures are raised as the httpx exception types :class:`~reference_impl.core.EngineClient`
maps by type: connect errors (``ConnectError``, or :class:`TLSVerificationError` for a certificate that
did not verify), a reset or truncated answer (``ReadError``), garbage or a close before the answer
(``RemoteProtocolError``). tests/core/test_http1_transport.py drives each over real loopback sockets.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Sequence
from urllib.parse import urlsplit

import httpx

from akto_wire import IDLE_KEEPALIVE_S

from .direct_transport import DirectTransport, RawAnswer, TLSVerificationError, ssl_context
from .settings import EngineSettings

#: An answer's status line and headers beyond this are garbage, not a verdict.
MAX_HEAD_BYTES = 64 * 1024
#: A verdict is a few hundred bytes; a body past this is refused rather than buffered.
MAX_BODY_BYTES = 16 * 1024 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})
#: The per-URL caches hold a connector's few engine routes; past this they start over (bounded memory).
MAX_CACHED_URLS = 256


class _Origin:
    """Where one URL's requests go, and the head bytes every request to it starts with."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise httpx.UnsupportedProtocol(f"not an http(s) URL: {url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.key = (self.tls, self.host, self.port)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        default_port = self.port == (443 if self.tls else 80)
        host_header = self.host if ":" not in self.host else f"[{self.host}]"
        if not default_port:
            host_header += f":{self.port}"
        self.request_line = f"POST {target} HTTP/1.1\r\nhost: {host_header}\r\n"


class _Connection(asyncio.Protocol):
    """One kept-alive connection: one request at a time, its answer parsed as the bytes arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        #: The last answer allowed the connection to be kept (HTTP/1.1 without ``connection: close``).
        self.keep_alive = False
        self._answer: asyncio.Future[RawAnswer] | None = None
        self._parser: _AnswerParser | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._parser is None or self._answer is None or self._answer.done():
            self._fail(httpx.RemoteProtocolError("engine sent bytes nobody asked for"))
            self.close()
            return
        try:
            answer = self._parser.feed(data)
        except httpx.RemoteProtocolError as exc:
            self._fail(exc)
            self.close()
            return
        if answer is not None:
            self.keep_alive = self._parser.keep_alive
            self._parser = None
            self._answer.set_result(answer)

    def eof_received(self) -> bool | None:
        if self._parser is not None and self._answer is not None and not self._answer.done():
            answer = self._parser.eof()  # an answer delimited by the close, or an error
            self._parser = None
            if isinstance(answer, RawAnswer):
                self._answer.set_result(answer)
            else:
                self._answer.set_exception(answer)
        self.closed = True
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is None:
            self._fail(httpx.RemoteProtocolError("engine closed the connection before answering"))
        else:
            self._fail(httpx.ReadError(f"{type(exc).__name__}: {exc}"))

    # --- one request --------------------------------------------------------------------------------

    async def exchange(self, data: bytes) -> RawAnswer:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._parser = _AnswerParser()
        self.transport.write(data)
        return await self._answer

    def reusable(self) -> bool:
        return (self.keep_alive and not self.closed and self._parser is None
                and self.transport is not None and not self.transport.is_closing())

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self._parser = None


class _AnswerParser:
    """HTTP/1.1 answer framing: status line, headers, then a content-length, chunked or close-delimited body."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = True
        self._length: int | None = None  # body bytes expected; None: chunked or until close
        self._chunked = False
        self._head_done = False
        self._body = bytearray()

    def feed(self, data: bytes) -> RawAnswer | None:
        self._buffer += data
        if not self._head_done and not self._read_head():
            return None
        if self._chunked:
            return self._read_chunks()
        if self._length is not None:
            if len(self._buffer) < self._length:
                return None
            if len(self._buffer) > self._length:
                raise httpx.RemoteProtocolError("engine sent more bytes than its content-length")
            return self._done(bytes(self._buffer))
        if len(self._buffer) > MAX_BODY_BYTES:
            raise httpx.RemoteProtocolError(f"engine answer over {MAX_BODY_BYTES} bytes")
        return None  # delimited by the close

    def eof(self) -> RawAnswer | Exception:
        """The server closed: a close-delimited body ends here; anything else was cut short."""
        if self._head_done and not self._chunked and self._length is None:
            self.keep_alive = False
            return self._done(bytes(self._buffer))
        if not self._head_done and not self._buffer:
            return httpx.RemoteProtocolError("engine closed the connection before answering")
        return httpx.ReadError("engine closed the connection in the middle of its answer")

    def _read_head(self) -> bool:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                start = bytes(self._buffer[:5])
                if len(self._buffer) > MAX_HEAD_BYTES or not b"HTTP/".startswith(start):
                    raise httpx.RemoteProtocolError("engine answer is not HTTP/1.x")
                return False
            if end > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("engine answer head too large")
            lines = bytes(self._buffer[:end]).split(b"\r\n")
            del self._buffer[:end + 4]
            self._parse_head(lines)
            if 100 <= self.status < 200:  # an interim answer (100 Continue): the real one follows
                self.headers = []
                continue
            self._head_done = True
            return True

    def _parse_head(self, lines: list[bytes]) -> None:
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit() or rest[3:4] not in (b"", b" "):
            raise httpx.RemoteProtocolError(f"invalid status line: {lines[0][:80]!r}")
        self.status = int(code)
        self.keep_alive = version == b"HTTP/1.1"
        headers = []
        length: bytes | None = None
        chunked = False
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise httpx.RemoteProtocolError(f"invalid header line: {line[:80]!r}")
            value = value.strip()
            headers.append((name, value))
            lowered = name.lower()
            if lowered == b"content-length":
                if length is not None and length != value:
                    raise httpx.RemoteProtocolError("conflicting content-length headers")
                length = value
            elif lowered == b"transfer-encoding":
                chunked = value.lower().endswith(b"chunked")
                if not chunked:
                    raise httpx.RemoteProtocolError(f"unsupported transfer-encoding {value[:40]!r}")
            elif lowered == b"connection":
                tokens = value.lower()
                if b"close" in tokens:
                    self.keep_alive = False
                elif b"keep-alive" in tokens:
                    self.keep_alive = True
        self.headers = headers
        if 100 <= self.status < 200 or self.status in _NO_BODY_STATUSES:
            self._length = 0
        elif chunked:
            self._chunked = True
        elif length is not None:
            if not length.isdigit():
                raise httpx.RemoteProtocolError(f"invalid content-length {length[:40]!r}")
            self._length = int(length)
            if self._length > MAX_BODY_BYTES:
                raise httpx.RemoteProtocolError(f"engine answer of {self._length} bytes (over {MAX_BODY_BYTES})")
        else:
            self.keep_alive = False  # the body runs to the close

    def _read_chunks(self) -> RawAnswer | None:
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                if len(buffer) > 1024:
                    raise httpx.RemoteProtocolError("invalid chunk size line")
                return None
            size_text = bytes(buffer[:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise httpx.RemoteProtocolError(f"invalid chunk size {size_text[:20]!r}") from None
            if size < 0 or len(self._body) + size > MAX_BODY_BYTES:
                raise httpx.RemoteProtocolError("invalid or oversized chunk")
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return None
                if trailer_end + 4 != len(buffer):
                    raise httpx.RemoteProtocolError("engine sent bytes after its last chunk")
                return self._done(bytes(self._body))
            chunk_end = line_end + 2 + size
            if len(buffer) < chunk_end + 2:
                return None
            if buffer[chunk_end:chunk_end + 2] != b"\r\n":
                raise httpx.RemoteProtocolError("chunk not followed by CRLF")
            self._body += buffer[line_end + 2:chunk_end]
            del buffer[:chunk_end + 2]

    def _done(self, body: bytes) -> RawAnswer:
        self._head_done = False
        return RawAnswer(self.status, self.headers, body)


class _Pool:
    """Connections to one origin: idle ones reused newest first, at most ``limit`` in use.

    A counter with a queue of waiters rather than ``asyncio.Semaphore``, whose ``acquire`` scans its waiters
    on every call (about 1% of mitmdump's CPU at 50 agents)."""

    def __init__(self, limit: int) -> None:
        self.idle: list[_Connection] = []
        self.limit = limit
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def take(self) -> None:
        """A slot for one request: at once while fewer than ``limit`` are in use, else in arrival order."""
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the slot is handed over by give_back: in_use already counts it
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back()  # handed over just as the caller gave up: pass it on
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def give_back(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the waiter
                return
        self.in_use -= 1


class Http1Transport(DirectTransport):
    """HTTP/1.1 POSTs over kept-alive asyncio connections (created in the running loop on first use)."""

    def __init__(self, *, max_connections: int = 100, verify: bool | str = True, keepalive_s: float = IDLE_KEEPALIVE_S) -> None:
        self.max_connections = max_connections
        self.verify = verify
        #: Idle connections older than this are closed, not reused (see IDLE_KEEPALIVE_S).
        self.keepalive_s = keepalive_s
        self._ssl: ssl.SSLContext | None = None
        self._origins: dict[str, _Origin] = {}
        self._pools: dict[tuple[bool, str, int], _Pool] = {}
        self._heads: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}

    @classmethod
    def for_settings(cls, settings: EngineSettings) -> "Http1Transport":
        """The transport a connector's engine client uses: its pool bound and its TLS setting."""
        return cls(max_connections=settings.max_connections, verify=settings.verify)

    async def post(self, url: str, body: bytes, headers: Sequence[tuple[str, str]], *,
                   request: httpx.Request | None = None) -> RawAnswer:
        """POST ``body``; the caller's deadline bounds the whole call (a cancelled call's connection is dropped)."""
        origin = self._origins.get(url)
        if origin is None:
            if len(self._origins) >= MAX_CACHED_URLS:
                self._origins.clear()
                self._heads.clear()
            origin = self._origins[url] = _Origin(url)
        head = self._head(origin, url, headers)
        pool = self._pools.get(origin.key)
        if pool is None:
            pool = self._pools[origin.key] = _Pool(self.max_connections)
        await pool.take()
        try:
            connection = self._idle_connection(pool)
            if connection is None:
                connection = await self._connect(origin, request)
            data = head + str(len(body)).encode() + b"\r\n\r\n" + body
            keep = False
            try:
                answer = await connection.exchange(data)
                keep = connection.reusable()
            except httpx.HTTPError as exc:
                if request is not None:
                    exc.request = request
                raise
            finally:
                if keep:
                    connection.idle_since = time.monotonic()
                    pool.idle.append(connection)
                else:
                    connection.close()
            return answer
        finally:
            pool.give_back()

    async def aclose(self) -> None:
        for pool in self._pools.values():
            for connection in pool.idle:
                connection.close()
            pool.idle.clear()

    def _head(self, origin: _Origin, url: str, headers: Sequence[tuple[str, str]]) -> bytes:
        key = (url, tuple(headers))
        head = self._heads.get(key)
        if head is None:
            lines = [origin.request_line]
            for name, value in headers:
                if any(c in name or c in value for c in "\r\n\0") or ":" in name:
                    raise httpx.LocalProtocolError(f"invalid request header {name!r}")
                if name.lower() not in ("host", "content-length", "transfer-encoding", "connection"):
                    lines.append(f"{name}: {value}\r\n")
            lines.append("content-length: ")
            head = self._heads[key] = "".join(lines).encode("latin-1")
        return head

    def _idle_connection(self, pool: _Pool) -> _Connection | None:
        expired = time.monotonic() - self.keepalive_s
        while pool.idle:
            connection = pool.idle.pop()
            if connection.reusable() and connection.idle_since > expired:
                return connection
            connection.close()
        return None

    async def _connect(self, origin: _Origin, request: httpx.Request | None) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.tls:
            if self._ssl is None:
                self._ssl = ssl_context(self.verify)
            context = self._ssl
        try:
            _, connection = await loop.create_connection(_Connection, origin.host, origin.port, ssl=context,
                                                         server_hostname=origin.host if context else None)
        except ssl.SSLCertVerificationError as exc:
            raise TLSVerificationError(f"engine certificate not verified: {exc.verify_message}", request=request) from None
        except (OSError, ssl.SSLError) as exc:  # refused, unreachable, reset or garbage during the handshake
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from None
        return connection
