"""Real socket faults from inside an ASGI app.

ASGI hides the socket, but a faithful fake must reset it, close it silently, send garbage or cut a body
short, exactly as a broken network would. We run uvicorn with a thin subclass of its httptools protocol
that puts the connection's transport into ``scope["extensions"]``; :class:`RawSocket` then offers the
few socket-level moves the faults need. The same subclass stamps when a request's first bytes were parsed
(:func:`arrived_at`), so a delay counts from the moment the call reached the engine, not from when a busy
event loop got round to the app.

It also holds the connection limits uvicorn lacks (issue 11: slowloris, trickled bodies and 20,200 idle
connections once exhausted the engine's file descriptors): a deadline for the headers (armed when the
connection opens and when a next request begins, so an idle connection that never sends is closed too), a
deadline for the body, a cap on header bytes (431), and a cap on open connections (503 with a reason, then
closed). Each refusal is a complete HTTP answer, never a silent hang. Idle keep-alive is uvicorn's own.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .types import Receive, Scope

TRANSPORT_KEY = "mock_akto.transport"
ARRIVED_KEY = "mock_akto.arrived"



@dataclass(frozen=True)
class ConnectionLimits:
    """What one client connection may take (defaults in :mod:`mock_akto.config`)."""

    max_connections: int = 10_000
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024


#: The uvicorn ``Config`` attribute the server leaves the limits in (the protocol is built by uvicorn).
LIMITS_ATTRIBUTE = "mock_akto_limits"


class TransportExposingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the transport and the arrival time in each request's scope
    extensions, and the connection limits."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: ConnectionLimits = getattr(config, LIMITS_ATTRIBUTE, None) or ConnectionLimits()
        self._awaiting_headers = True
        self._over_cap = False
        self._header_bytes = 0
        self._raw_header_bytes = 0
        self._header_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Over the cap, the refusal waits for the request's first bytes: closing a socket with unread data
        # sends an RST, which would drop the 503 before the client reads it.
        self._over_cap = len(self.connections) > self.limits.max_connections
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadlines()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._over_cap:
            self._refuse(503, f"the engine holds its limit of {self.limits.max_connections} open connections "
                              f"(--max-connections); retry later")
            return
        if not self._awaiting_headers:
            super().data_received(data)
            return
        # Headers still arriving: count the raw bytes too, so one endless header is refused as it grows
        # instead of being buffered by the parser until it ends.
        self._raw_header_bytes += len(data)
        super().data_received(data)
        if self._awaiting_headers and self._raw_header_bytes > self.limits.max_header_bytes:
            self._header_bytes = self._raw_header_bytes
            self.send_400_response("headers too large")

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; ours when the error was headers over the limit."""
        if self._header_bytes > self.limits.max_header_bytes:
            self._refuse(431, f"request line and headers larger than the limit of {self.limits.max_header_bytes} bytes")
        else:
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self.scope["extensions"] = {TRANSPORT_KEY: self.transport, ARRIVED_KEY: time.perf_counter()}
        if self._header_deadline is None:
            self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._raw_header_bytes = 0
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        self._body_deadline = self.loop.call_later(self.limits.body_timeout, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting_headers = True
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None
        super().on_message_complete()

    # -- limits -------------------------------------------------------------------------------------------

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.limits.max_header_bytes:
            raise HeadersTooLarge  # stops the parser; uvicorn answers through send_400_response

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(self.limits.header_timeout, self._headers_too_slow)

    def _cancel_deadlines(self) -> None:
        for handle in (self._header_deadline, self._body_deadline):
            if handle is not None:
                handle.cancel()
        self._header_deadline = self._body_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._awaiting_headers:
            self._refuse(408, f"no complete request headers within {self.limits.header_timeout:g} s")

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self._refuse(408, f"request body not received within {self.limits.body_timeout:g} s")
        else:
            self.transport.close()

    def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` with a JSON reason (Akto's failure shape) and close the connection."""
        self._cancel_deadlines()
        transport = self.transport
        if transport.is_closing():
            return
        body = orjson.dumps({"success": False, "message": reason})
        head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
        transport.write(head + body)
        transport.close()


class HeadersTooLarge(Exception):
    """Raised inside the parser's callbacks: the request line and headers passed the limit."""


_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def arrived_at(scope: Scope) -> float:
    """When the server parsed the request's first bytes (``time.perf_counter()`` seconds).

    Under a burst, uvicorn parses every readable socket before any app task runs, so an app may start a
    call tens of milliseconds after it arrived. Without our protocol class (another server), now.
    """
    extensions = scope.get("extensions")
    arrived = extensions.get(ARRIVED_KEY) if extensions else None
    return arrived if arrived is not None else time.perf_counter()


class RawSocket:
    """Socket-level moves on the connection that carried one request.

    After any of them the connection is gone, so the app must not send an ASGI response; call
    :meth:`wait_closed` instead, which returns once uvicorn has seen the disconnect (so it does not try
    to answer 500 on a dead socket).
    """

    def __init__(self, scope: Scope, receive: Receive) -> None:
        transport = scope.get("extensions", {}).get(TRANSPORT_KEY)
        if transport is None:
            raise RuntimeError("socket faults need the engine's protocol class (mock_akto.protocol)")
        self._transport: asyncio.Transport = transport
        self._receive = receive

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def reset(self) -> None:
        """Close with an RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self._transport.abort()

    def close(self) -> None:
        """Close after flushing what was written (FIN): an empty reply, or garbage then close."""
        self._transport.close()

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait until uvicorn has noticed the connection is gone (bounded)."""
        try:
            async with asyncio.timeout(timeout):
                while (await self._receive())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            self._transport.abort()
