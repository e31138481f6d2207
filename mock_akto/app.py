"""The engine's front door: one ASGI app that resolves each call's namespace, then hands it to the Akto
routes (raw ASGI) or the admin API (FastAPI under ``/__admin``).

:class:`EngineApp` is the thin dispatcher uvicorn runs; the state it serves is an
:class:`~mock_akto.engine.Engine`.
"""

from __future__ import annotations

from typing import Any

import orjson

from .admin import ADMIN_PREFIX, NAMESPACE_SCOPE_KEY, build_admin
from .admin.guard import AdminGuard
from .config import EngineConfig
from .contract import IncomingCall
from .engine import Engine
from .errors import NamespaceError
from .namespaces import NS_PREFIX
from .types import Receive, Scope, Send


class EngineApp:
    """The ASGI entry point: namespace resolution, then the Akto routes or ``/__admin``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.registry = engine.registry
        self.contract = engine.contract
        config = engine.config
        self.admin = AdminGuard(build_admin(engine), token=config.admin_secret(),
                                max_body_bytes=config.max_admin_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        prefix = None
        if path.startswith(NS_PREFIX):
            prefix, _, rest = path[len(NS_PREFIX):].partition("/")
            path = "/" + rest
        call = IncomingCall(scope["headers"])
        server = scope.get("server")
        try:
            ns = self.registry.resolve(server[1] if server else None, prefix, call.namespace, call.authorization)
        except NamespaceError as exc:  # each API's own error shape: FastAPI's for /__admin, Akto's elsewhere
            detail = {"detail": str(exc)} if path.startswith(ADMIN_PREFIX) else {"success": False, "message": str(exc)}
            await _json(send, 400, detail)
            return
        if self.contract.handles(path):
            await self.contract(scope, receive, send, ns, path, call)
        elif path.startswith(ADMIN_PREFIX):
            if prefix is not None:
                scope = dict(scope, path=path, raw_path=path.encode())
            scope[NAMESPACE_SCOPE_KEY] = ns
            await self.admin(scope, receive, send)
        else:
            await _json(send, 404, {"success": False, "message": f"No route for {path}"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.engine.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _json(send: Send, status: int, obj: Any) -> None:
    body = orjson.dumps(obj)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def build_app(config: EngineConfig | None = None) -> EngineApp:
    """A ready ASGI app (call :meth:`Engine.attach_server` before using listeners)."""
    return EngineApp(Engine(config))

