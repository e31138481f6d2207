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

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError

from ..engine import Engine
from .deps import MAX_WAIT_MS, NAMESPACE_SCOPE_KEY, json_response
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
    app.add_exception_handler(RequestValidationError, bounded_validation_error)
    return app


#: A 422 lists at most this many problems, each quoting at most this many characters of the input: the
#: answer stays small whatever was sent (a 50 MB body once produced a 200 MB answer).
MAX_REPORTED_ERRORS = 20
MAX_QUOTED_CHARS = 200


async def bounded_validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 shape (``detail``: a list of ``{type, loc, msg, input}``) with the input quoted short."""
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    detail = [_bounded(problem) for problem in problems[:MAX_REPORTED_ERRORS]]
    if len(problems) > MAX_REPORTED_ERRORS:
        detail.append({"type": "too_many_errors", "loc": ["body"], "input": None,
                       "msg": f"{len(problems) - MAX_REPORTED_ERRORS} more problems not listed"})
    return json_response({"detail": detail}, 422)


def _bounded(problem: dict[str, Any]) -> dict[str, Any]:
    kept = {key: problem[key] for key in ("type", "loc", "msg") if key in problem}
    kept["msg"] = str(kept.get("msg", ""))[:MAX_QUOTED_CHARS]
    kept["loc"] = [part if isinstance(part, int) else str(part)[:MAX_QUOTED_CHARS] for part in kept.get("loc", ())]
    value = problem.get("input")
    if isinstance(value, (dict, list)) or (isinstance(value, str) and len(value) > MAX_QUOTED_CHARS):
        text = value if isinstance(value, str) else _json_text(value)
        value = text[:MAX_QUOTED_CHARS] + ("..." if len(text) > MAX_QUOTED_CHARS else "")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        value = repr(value)[:MAX_QUOTED_CHARS]
    kept["input"] = value
    return kept


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return repr(value)[:MAX_QUOTED_CHARS * 2]
