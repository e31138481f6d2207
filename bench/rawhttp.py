"""A minimal keep-alive HTTP/1.1 client for measuring servers, not for talking to the world.

Why not aiohttp or httpx: at 500 concurrent requests a full client spends a few hundred microseconds of
Python per request on one core, so a burst of 500 queues for ~100 ms *in the client* and is reported as
server latency. This client sends pre-built request bytes on a pool of open connections and only parses
the status line and ``content-length`` (every server measured here sets it), so its own cost is tens of
microseconds. One request in flight per connection; anything unexpected raises.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable
from urllib.parse import urlsplit


class ResponseError(Exception):
    pass


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ResponseError(f"connection lost: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        length = None
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            self.waiter.set_exception(ResponseError(f"no content-length in {head[0]!r}"))
            return
        if len(self.buffer) >= end + 4 + length:
            del self.buffer[: end + 4 + length]
            self.waiter.set_result(int(head[0].split(" ", 2)[1]))

    async def exchange(self, request: bytes) -> int:
        if self.lost or self.transport is None:
            raise ResponseError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            return await self.waiter
        finally:
            self.waiter = None


class RawHttpPool:
    """``size`` keep-alive connections to one server; :meth:`post` sends one pre-built request."""

    def __init__(self, url: str, size: int) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"RawHttpPool needs http://host:port/..., got {url!r}")
        self.host, self.port = parts.hostname, parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.size = size
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        self._all: list[_Connection] = []

    async def __aenter__(self) -> "RawHttpPool":
        for _ in range(self.size):
            self._idle.put_nowait(await self._connect())
        return self

    async def _connect(self) -> _Connection:
        _, conn = await asyncio.get_running_loop().create_connection(_Connection, self.host, self.port)
        self._all.append(conn)
        return conn

    async def _take(self) -> _Connection:
        """An idle connection; one the server closed meanwhile (uvicorn drops keep-alive connections idle
        for 5 s, e.g. while another variant runs) is replaced by a fresh one, so the pool keeps its size."""
        conn = await self._idle.get()
        if conn.lost or conn.transport is None or conn.transport.is_closing():
            self._all.remove(conn)
            try:
                conn = await self._connect()
            except OSError:
                self._idle.put_nowait(conn)  # keep the slot: the next call tries again
                raise
        return conn

    async def __aexit__(self, *exc: object) -> None:
        for conn in self._all:
            if conn.transport is not None:
                conn.transport.close()

    def request_bytes(self, body: bytes, content_type: str = "application/json", method: str = "POST") -> bytes:
        head = (f"{method} {self.path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-type: {content_type}\r\n"
                f"content-length: {len(body)}\r\n\r\n")
        return head.encode("latin-1") + body

    def caller(self, body: bytes, *, expect_status: int = 200) -> Callable[[], Awaitable[None]]:
        """A zero-argument coroutine function sending ``body`` once (for :mod:`bench.load`)."""
        return self.cycling_caller([body], expect_status=expect_status)

    def cycling_caller(self, bodies: list[bytes], *, expect_status: int = 200) -> Callable[[], Awaitable[None]]:
        """Like :meth:`caller`, sending the ``bodies`` in turn (distinct payloads for memory runs)."""
        if not bodies:
            raise ValueError("no bodies")
        requests = [self.request_bytes(b) for b in bodies]
        counter = iter(range(1 << 62))

        async def call() -> None:
            request = requests[next(counter) % len(requests)]
            conn = await self._take()
            try:
                status = await conn.exchange(request)
            finally:
                self._idle.put_nowait(conn)  # even when lost: the next call replaces it
            if status != expect_status:
                raise ResponseError(f"expected {expect_status}, got {status}")

        return call
