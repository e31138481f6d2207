"""Real socket faults from inside an ASGI app.

ASGI hides the socket, but a faithful fake must reset it, close it silently, send garbage or cut a body
short, exactly as a broken network would. We run uvicorn with a thin subclass of its httptools protocol
that puts the connection's transport into ``scope["extensions"]``; :class:`RawSocket` then offers the
few socket-level moves the faults need. The same subclass stamps when a request's first bytes were parsed
(:func:`arrived_at`), so a delay counts from the moment the call reached the engine, not from when a busy
event loop got round to the app.

It also holds the connection limits uvicorn lacks (issue 11: slowloris, trickled bodies and 20,200 idle
connections once exhausted the engine's file descriptors): a deadline for the headers (from when the
connection opens and when a next request begins, so an idle connection that never sends is closed too), a
deadline for the body, a cap on header bytes (431), and a cap on open connections (503 with a reason, then
closed). Each refusal is a complete HTTP answer, never a silent hang. Idle keep-alive is uvicorn's own.

Why the limits cost next to nothing per call (measured side by side with wrk, CPU per keep-alive request
over plain uvicorn): a timer armed and cancelled per request for each deadline cost +3.7 µs, and counting
header bytes in the parser's per-header callbacks +2.4 µs, of uvicorn's ~25 µs. Now a request stores a
deadline (a float), one timer per server sweeps the connections (:class:`DeadlineWatch`), and the header
bytes are counted per received chunk with one ``bytes.find``.
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

    @property
    def sweep_interval(self) -> float:
        """How often the deadlines are checked: a tenth of the shorter one (a deadline fires at most that
        late), between 20 ms and 1 s."""
        return min(1.0, max(0.02, min(self.header_timeout, self.body_timeout) / 10))


#: The uvicorn ``Config`` attributes the server leaves the limits in, and where the protocols find their
#: server's :class:`DeadlineWatch` (the protocol is built by uvicorn, one per connection).
LIMITS_ATTRIBUTE = "mock_akto_limits"
WATCH_ATTRIBUTE = "mock_akto_deadline_watch"

_NO_DEADLINE = float("inf")
_HEADERS, _BODY = "headers", "body"
_END_OF_HEADERS = b"\r\n\r\n"


class DeadlineWatch:
    """One timer per server: every ``interval`` seconds it ends the connections whose deadline passed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop = loop
        self._interval = interval
        self._watched: set["TransportExposingProtocol"] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, protocol: "TransportExposingProtocol") -> None:
        self._watched.add(protocol)
        if self._timer is None:
            self._timer = self._loop.call_later(self._interval, self._sweep)

    def forget(self, protocol: "TransportExposingProtocol") -> None:
        self._watched.discard(protocol)

    def _sweep(self) -> None:
        now = self._loop.time()
        for protocol in [p for p in self._watched if p.deadline_at <= now]:
            protocol.deadline_passed()
        self._timer = self._loop.call_later(self._interval, self._sweep) if self._watched else None


class TransportExposingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the transport and the arrival time in each request's scope
    extensions, and the connection limits."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: ConnectionLimits = getattr(config, LIMITS_ATTRIBUTE, None) or ConnectionLimits()
        watch = getattr(config, WATCH_ATTRIBUTE, None)
        if watch is None:
            watch = DeadlineWatch(self.loop, self.limits.sweep_interval)
            setattr(config, WATCH_ATTRIBUTE, watch)
        self._watch: DeadlineWatch = watch
        self._awaiting_headers = True
        self._over_cap = False
        self._header_bytes = 0
        #: When the current deadline passes (``loop.time()``), and which one it is.
        self.deadline_at = _NO_DEADLINE
        self._deadline_of: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Over the cap, the refusal waits for the request's first bytes: closing a socket with unread data
        # sends an RST, which would drop the 503 before the client reads it.
        self._over_cap = len(self.connections) > self.limits.max_connections
        self._arm(_HEADERS, self.limits.header_timeout)
        self._watch.watch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._watch.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._over_cap:
            self._refuse(503, f"the engine holds its limit of {self.limits.max_connections} open connections "
                              f"(--max-connections); retry later")
            return
        if not self._awaiting_headers:
            super().data_received(data)
            return
        end = data.find(_END_OF_HEADERS)
        if end < 0:  # headers still arriving: refused below as they grow, instead of being buffered until they end
            self._header_bytes += len(data)
        elif self._header_bytes + end + 4 > self.limits.max_header_bytes:  # complete, and too large:
            self._refuse_large_headers()  # refused before the parser starts the app
            return
        super().data_received(data)
        if self._awaiting_headers and self._header_bytes > self.limits.max_header_bytes:
            self._refuse_large_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {TRANSPORT_KEY: self.transport, ARRIVED_KEY: time.perf_counter()}
        if self._deadline_of is None:
            self._arm(_HEADERS, self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._header_bytes = 0
        self._arm(_BODY, self.limits.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting_headers = True
        self.deadline_at, self._deadline_of = _NO_DEADLINE, None
        super().on_message_complete()

    # -- limits -------------------------------------------------------------------------------------------

    def _arm(self, which: str, seconds: float) -> None:
        self.deadline_at, self._deadline_of = self.loop.time() + seconds, which

    def deadline_passed(self) -> None:
        """Called by the watch: refuse what did not arrive in time."""
        which, self.deadline_at, self._deadline_of = self._deadline_of, _NO_DEADLINE, None
        if which == _HEADERS:
            if self._awaiting_headers:
                self._refuse(408, f"no complete request headers within {self.limits.header_timeout:g} s")
        elif which == _BODY:
            cycle = self.cycle
            if cycle is not None and not cycle.response_started:
                self._refuse(408, f"request body not received within {self.limits.body_timeout:g} s")
            else:
                self.transport.close()

    def _refuse_large_headers(self) -> None:
        self._refuse(431, f"request line and headers larger than the limit of {self.limits.max_header_bytes} bytes")

    def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` with a JSON reason (Akto's failure shape) and close the connection."""
        self.deadline_at, self._deadline_of = _NO_DEADLINE, None
        transport = self.transport
        if transport.is_closing():
            return
        body = orjson.dumps({"success": False, "message": reason})
        head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
        transport.write(head + body)
        transport.close()


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
