"""Extra loopback listeners, each bound to a namespace, served by the same app and uvicorn protocol.

Why: a port is the one thing a connector cannot forget to send (no header, no path prefix needed), and
only a port can refuse connections, which is how the ``down`` fault looks like a dead engine. Listeners
are created on the running uvicorn server's loop with its own protocol factory (config, server state,
lifespan state), so they behave exactly like the main port, socket faults included.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import LimitReached, ListenerError
from .namespaces import NamespaceRegistry

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("mock_akto.listeners")

#: How long reopening a port may wait for the old listening socket to be released.
REBIND_TIMEOUT_S = 3.0


@dataclass
class Listener:
    port: int
    namespace: str
    host: str
    server: asyncio.AbstractServer | None = None

    @property
    def up(self) -> bool:
        return self.server is not None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class ListenerManager:
    """Opens, takes down, brings back and closes the namespace listeners of one engine."""

    def __init__(self, registry: NamespaceRegistry, host: str = "127.0.0.1", max_listeners: int = 1000) -> None:
        self.registry = registry
        self.host = host
        self.max_listeners = max_listeners
        self._uvicorn: "uvicorn.Server | None" = None
        self._listeners: dict[int, Listener] = {}

    def attach(self, server: "uvicorn.Server") -> None:
        """Give the manager the uvicorn server whose protocol factory new listeners use."""
        self._uvicorn = server

    def list(self) -> list[Listener]:
        return list(self._listeners.values())

    def get(self, port: int) -> Listener | None:
        return self._listeners.get(port)

    async def open(self, namespace: str, port: int = 0) -> Listener:
        """A new listener for ``namespace`` (created if needed); down at once if the namespace is down."""
        ns = self.registry.get(namespace)
        if len(self._listeners) >= self.max_listeners:
            raise LimitReached(f"the engine already has {len(self._listeners)} listeners (its limit, max_listeners); "
                               f"close some with DELETE /__admin/listeners/<port>")
        server = await self._serve(port)
        bound = server.sockets[0].getsockname()[1]
        listener = Listener(port=bound, namespace=ns.name, host=self.host, server=server)
        self._listeners[bound] = listener
        self.registry.bind_port(bound, ns.name)
        if self.registry.is_down(ns):
            self._take_down(listener)
        return listener

    async def close(self, port: int) -> bool:
        listener = self._listeners.pop(port, None)
        if listener is None:
            return False
        self._take_down(listener)
        self.registry.unbind_port(port)
        return True

    async def close_namespace(self, namespace: str) -> None:
        for listener in self.list():
            if listener.namespace == namespace:
                await self.close(listener.port)

    async def close_all(self) -> None:
        for port in list(self._listeners):
            await self.close(port)

    async def sync_down_state(self) -> None:
        """Make every listener match its namespace: closed while down, open again once it is not."""
        for listener in self.list():
            ns = self.registry.find(listener.namespace)
            down = ns is None or self.registry.is_down(ns)
            if down and listener.up:
                self._take_down(listener)
            elif not down and not listener.up:
                listener.server = await self._serve(listener.port)

    # -- sockets ----------------------------------------------------------------------------------------

    def _take_down(self, listener: Listener) -> None:
        """Stop accepting and drop the port's open connections, like a process that went away."""
        if listener.server is not None:
            listener.server.close()
            listener.server = None
        if self._uvicorn is None:
            return
        for connection in list(self._uvicorn.server_state.connections):
            local = getattr(connection, "server", None)
            if local is not None and local[1] == listener.port:
                connection.transport.abort()

    async def _serve(self, port: int) -> asyncio.AbstractServer:
        server = self._uvicorn
        if server is None or not server.started:
            raise ListenerError("listeners need the engine's running server (start it with mock_akto.server)")
        config = server.config
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=server.server_state, app_state=server.lifespan.state, _loop=loop
            )

        deadline = loop.time() + REBIND_TIMEOUT_S
        while True:
            try:
                return await loop.create_server(protocol, host=self.host, port=port, backlog=config.backlog)
            except OSError as exc:
                # A port we just closed can take a loop iteration to be released; a new port cannot.
                if port == 0 or exc.errno != errno.EADDRINUSE or loop.time() >= deadline:
                    raise ListenerError(f"cannot listen on {self.host}:{port}: {exc.strerror or exc}") from exc
                await asyncio.sleep(0.05)
