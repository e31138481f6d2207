"""What every admin handler is given (the engine, the call's namespace, common query filters) and the
few helpers they share. Handlers are module-level functions: they reach the engine only through these
dependencies, never through a closure."""

from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ..engine import Engine
from ..journal import FlagName, JournalEntry, JournalEntryModel, JournalQuery
from ..namespaces import Namespace
from ..policies import Policy, PolicySet

#: Where the dispatcher leaves the resolved :class:`Namespace` for the admin API.
NAMESPACE_SCOPE_KEY = "mock_akto.namespace"
#: Longest a journal wait may last (the client's own timeout must exceed it).
MAX_WAIT_MS = 300_000


def current_engine(request: Request) -> Engine:
    """The engine this admin app was built for (``build_admin`` leaves it in ``app.state``)."""
    return request.app.state.engine


def current_namespace(request: Request) -> Namespace:
    """The namespace the dispatcher resolved for this call (port, prefix, header, API key, default)."""
    return request.scope[NAMESPACE_SCOPE_KEY]


def journal_query(
    path: str | None = None,
    connector: str | None = None,
    app: str | None = None,
    flag: FlagName | None = None,
    status: int | None = Query(None, ge=100, le=599),
    fault: str | None = None,
) -> JournalQuery:
    return JournalQuery(path=path, connector=connector, app=app, flag=flag, status=status, fault=fault)


EngineDep = Annotated[Engine, Depends(current_engine)]
NS = Annotated[Namespace, Depends(current_namespace)]
JQ = Annotated[JournalQuery, Depends(journal_query)]
RuleScope = Annotated[Literal["namespace", "global"], Query(description="'global' rules apply to every namespace")]
Since = Annotated[int, Query(ge=0, description="only entries with a larger seq")]
Limit = Annotated[int, Query(ge=1, le=100_000, description="at most this many (newest, or first after since)")]


def book_owner(ns: Namespace, scope: str) -> Namespace | None:
    """Whose rule book a call means: the namespace's, or ``None`` for the global one."""
    return None if scope == "global" else ns


def json_response(obj: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status_code, media_type="application/json")


def entries_json(entries: list[JournalEntry]) -> list[dict[str, Any]]:
    return [JournalEntryModel.of(entry).model_dump(mode="json", by_alias=True) for entry in entries]


def policy_set(policies: list[Policy]) -> PolicySet:
    """A new set, or 422 naming the problem (duplicate names)."""
    try:
        return PolicySet(policies=policies)
    except ValidationError as exc:
        errors = [{key: value for key, value in error.items() if key != "ctx"} for error in exc.errors(include_url=False)]
        raise RequestValidationError([dict(error, loc=("body", *error["loc"])) for error in errors]) from None


def invalid_field(field: str, value: Any, message: str) -> RequestValidationError:
    """A 422 naming a body field, shaped like every other validation error of the admin API."""
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": message, "input": value}])
