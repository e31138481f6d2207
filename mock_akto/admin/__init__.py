"""The admin API under ``/__admin`` (WireMock's prefix): policies, fault rules, journal, ingest records,
listeners and namespaces, with an OpenAPI spec at ``/__admin/openapi.json``.

FastAPI here (not on the hot path) because its value is exactly what an admin API needs: request bodies
are the project's typed models (:class:`~mock_akto.policies.Policy`, :class:`~mock_akto.rules.FaultRule`),
so a typo gets a 422 naming the field, and the spec documents every call. Each call acts on the namespace
the dispatcher resolved (listener port, ``/ns/<name>/`` prefix, ``X-Mock-Akto-Namespace``, API key,
``default``); fault-rule calls take ``?scope=global`` for the rules shared by every namespace.

Layout: :mod:`.routes` is the route table, ``handlers_*.py`` the handlers, :mod:`.deps` what they are
given, :mod:`.models` the admin API's own bodies.
"""

from fastapi import FastAPI

from ..engine import Engine
from .deps import MAX_WAIT_MS, NAMESPACE_SCOPE_KEY
from .models import errors
from .routes import ADMIN_PREFIX, ROUTES, admin_router

__all__ = ["ADMIN_PREFIX", "MAX_WAIT_MS", "NAMESPACE_SCOPE_KEY", "ROUTES", "build_admin"]


def build_admin(engine: Engine) -> FastAPI:
    """The admin app bound to one engine (handlers find it in ``app.state.engine``)."""
    app = FastAPI(
        title="mock-akto admin API",
        description="Script the fake Akto engine: policies, faults, journal, ingest records, listeners, namespaces.",
        version="1",
        openapi_url=f"{ADMIN_PREFIX}/openapi.json",
        docs_url=None,  # /__admin/docs is a route of ours: Swagger UI with local assets (handlers_ui.py)
        redoc_url=None,
        responses=errors(400),
    )
    app.state.engine = engine
    app.include_router(admin_router())
    return app
