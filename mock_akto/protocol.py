"""Real socket faults from inside an ASGI app.

ASGI hides the socket, but a faithful fake must reset it, close it silently, send garbage or cut a body
short, exactly as a broken network would. We run uvicorn with a thin subclass of its httptools protocol
that puts the connection's transport into ``scope["extensions"]``; :class:`RawSocket` then offers the
few socket-level moves the faults need. The same subclass stamps when a request's first bytes were parsed
(:func:`arrived_at`), so a delay counts from the moment the call reached the engine, not from when a busy
event loop got round to the app. Nothing else of uvicorn is changed.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .types import Receive, Scope

TRANSPORT_KEY = "mock_akto.transport"
ARRIVED_KEY = "mock_akto.arrived"

class TransportExposingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the transport and the arrival time in each request's scope
    extensions."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {TRANSPORT_KEY: self.transport, ARRIVED_KEY: time.perf_counter()}


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
