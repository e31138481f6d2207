"""The admin API under ``/__admin`` (WireMock's prefix): policies, fault rules, journal, ingest records,
listeners and namespaces, with an OpenAPI spec at ``/__admin/openapi.json``.

FastAPI here (not on the hot path) because its value is exactly what an admin API needs: request bodies
are the project's typed models (:class:`~mock_akto.policies.Policy`, :class:`~mock_akto.rules.FaultRule`),
so a typo gets a 422 naming the field, and the spec documents every call. Each call acts on the namespace
the dispatcher resolved (listener port, ``/ns/<name>/`` prefix, ``X-Mock-Akto-Namespace``, API key,
``default``); fault-rule calls take ``?scope=global`` for the rules shared by every namespace.
"""

from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field, ValidationError

from .journal import FlagName, IngestQuery, IngestRecordModel, JournalEntryModel, JournalQuery
from .listeners import Listener, ListenerError
from .namespaces import Namespace, NamespaceError
from .policies import Policy, PolicyLoadError, PolicySet, available_presets, load_preset
from .rules import FaultRule

if TYPE_CHECKING:
    from .app import Engine

#: Longest a journal wait may last (the client's own timeout must exceed it).
MAX_WAIT_MS = 300_000


# --------------------------------------------------------------------------------------------- models


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    namespace: str
    namespaces: int


class ListenerRequest(BaseModel):
    namespace: str | None = Field(None, description="namespace the port belongs to (default: the call's namespace)")
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")


class ListenerInfo(BaseModel):
    port: int
    url: str
    namespace: str
    up: bool

    @classmethod
    def of(cls, listener: Listener) -> "ListenerInfo":
        return cls(port=listener.port, url=listener.url, namespace=listener.namespace, up=listener.up)


class ApiKeyRequest(BaseModel):
    api_key: str = Field(min_length=1, description="the Authorization value a connector sends (never echoed)")
    namespace: str | None = Field(None, description="default: the call's namespace")


class NamespaceInfo(BaseModel):
    name: str
    policies: int
    rules: int
    journal_entries: int
    journal_bytes: int = Field(description="payload characters the journal holds (bounded by its cap)")
    ingest_records: int
    ingest_bytes: int = Field(description="payload characters the ingest records hold (bounded by their cap)")
    ports: list[int]
    api_keys: int
    down: bool


class Count(BaseModel):
    count: int


class ErrorDetail(BaseModel):
    """A refused admin call: ``detail`` says why (422 bodies list each field instead)."""

    detail: str


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the refusals a route documents (the spec lists every status it answers)."""
    return {status: {"model": ErrorDetail, "description": _ERROR_MEANINGS[status]} for status in statuses}


_ERROR_MEANINGS = {
    400: "the body is not JSON, or the namespace named by the call is invalid",
    404: "no such policy, preset, fault rule, listener or namespace",
    409: "a fault rule with this id exists already, or the port cannot be listened on",
}


class WaitResult(BaseModel):
    reached: bool
    count: int
    entries: list[JournalEntryModel]


class ResetResult(BaseModel):
    reset: list[str]


# --------------------------------------------------------------------------------------------- helpers


def _json(obj: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status_code, media_type="application/json")


def _entries_json(entries: list) -> list[dict[str, Any]]:
    return [JournalEntryModel.of(entry).model_dump(mode="json", by_alias=True) for entry in entries]


def _policy_set(policies: list[Policy]) -> PolicySet:
    """A new set, or 422 naming the problem (duplicate names)."""
    try:
        return PolicySet(policies=policies)
    except ValidationError as exc:
        errors = [{key: value for key, value in error.items() if key != "ctx"} for error in exc.errors(include_url=False)]
        raise RequestValidationError([dict(error, loc=("body", *error["loc"])) for error in errors]) from None


def _invalid_field(field: str, value: Any, message: str) -> RequestValidationError:
    """A 422 naming a body field, shaped like every other validation error of the admin API."""
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": message, "input": value}])


def build_admin(engine: "Engine") -> FastAPI:
    """The admin app bound to one engine."""
    registry = engine.registry
    app = FastAPI(
        title="mock-akto admin API",
        description="Script the fake Akto engine: policies, faults, journal, ingest records, listeners, namespaces.",
        version="1",
        openapi_url="/__admin/openapi.json",
        docs_url="/__admin/docs",
        redoc_url=None,
        responses=_errors(400),
    )
    router = APIRouter(prefix="/__admin")

    def current(request: Request) -> Namespace:
        return request.scope["mock_akto.namespace"]

    NS = Annotated[Namespace, Depends(current)]
    RuleScope = Annotated[Literal["namespace", "global"], Query(description="'global' rules apply to every namespace")]

    def book_owner(ns: Namespace, scope: str) -> Namespace | None:
        return None if scope == "global" else ns

    def journal_query(
        path: str | None = None,
        connector: str | None = None,
        app: str | None = None,
        flag: FlagName | None = None,
        status: int | None = Query(None, ge=100, le=599),
        fault: str | None = None,
    ) -> JournalQuery:
        return JournalQuery(path=path, connector=connector, app=app, flag=flag, status=status, fault=fault)

    JQ = Annotated[JournalQuery, Depends(journal_query)]
    Since = Annotated[int, Query(ge=0, description="only entries with a larger seq")]
    Limit = Annotated[int, Query(ge=1, le=100_000, description="at most this many (newest, or first after since)")]

    # -- health and reset ---------------------------------------------------------------------------------

    @router.get("/health", response_model=Health)
    async def health(ns: NS) -> Health:
        return Health(namespace=ns.name, namespaces=len(registry.all()))

    @router.post("/reset", response_model=ResetResult)
    async def reset(ns: NS, scope: Literal["namespace", "all"] = "namespace") -> ResetResult:
        """Fresh policies, no rules, empty journal and ingest records; ``scope=all``: every namespace and
        the global rules."""
        if scope == "all":
            await engine.reset_all()
            return ResetResult(reset=[n.name for n in registry.all()])
        await engine.reset(ns)
        return ResetResult(reset=[ns.name])

    # -- policies ----------------------------------------------------------------------------------------

    @router.get("/policies", response_model=list[Policy])
    async def list_policies(ns: NS) -> list[Policy]:
        return list(ns.policies.policies)

    @router.put("/policies", response_model=list[Policy])
    async def replace_policies(ns: NS, policies: Annotated[list[Policy], Body()]) -> list[Policy]:
        ns.policies = _policy_set(policies)
        return list(ns.policies.policies)

    @router.post("/policies", response_model=Policy, status_code=status.HTTP_201_CREATED)
    async def add_policy(ns: NS, policy: Policy) -> Policy:
        """Add a policy (one with the same name is replaced in place)."""
        current_policies = list(ns.policies.policies)
        for index, existing in enumerate(current_policies):
            if existing.name == policy.name:
                current_policies[index] = policy
                break
        else:
            current_policies.append(policy)
        ns.policies = _policy_set(current_policies)
        return policy

    @router.delete("/policies/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors(404))
    async def delete_policy(ns: NS, name: str) -> None:
        kept = [p for p in ns.policies.policies if p.name != name]
        if len(kept) == len(ns.policies.policies):
            raise HTTPException(404, f"no policy named {name!r} in namespace {ns.name!r}")
        ns.policies = _policy_set(kept)

    @router.get("/policies/presets", response_model=list[str])
    async def list_presets() -> list[str]:
        return available_presets()

    @router.post("/policies/presets/{name}", response_model=list[Policy], responses=_errors(404))
    async def use_preset(ns: NS, name: str) -> list[Policy]:
        """Replace the namespace's policies with a bundled preset (mock_akto/presets/<name>.yaml)."""
        try:
            ns.policies = load_preset(name)
        except PolicyLoadError as exc:
            raise HTTPException(404, str(exc)) from None
        return list(ns.policies.policies)

    # -- fault rules -------------------------------------------------------------------------------------

    @router.get("/faults/rules", response_model=list[FaultRule])
    async def list_rules(ns: NS, scope: RuleScope = "namespace") -> list[FaultRule]:
        return engine.rule_book(book_owner(ns, scope)).list()

    @router.post("/faults/rules", response_model=FaultRule, status_code=status.HTTP_201_CREATED,
                 responses=_errors(409))
    async def add_rule(ns: NS, rule: FaultRule, scope: RuleScope = "namespace") -> FaultRule:
        try:
            return await engine.add_rule(book_owner(ns, scope), rule)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @router.delete("/faults/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors(404))
    async def delete_rule(ns: NS, rule_id: str, scope: RuleScope = "namespace") -> None:
        if not await engine.remove_rule(book_owner(ns, scope), rule_id):
            raise HTTPException(404, f"no fault rule {rule_id!r}")

    @router.delete("/faults/rules", status_code=status.HTTP_204_NO_CONTENT)
    async def clear_rules(ns: NS, scope: RuleScope = "namespace") -> None:
        await engine.clear_rules(book_owner(ns, scope))

    # -- journal ------------------------------------------------------------------------------------------

    @router.get("/journal", response_model=list[JournalEntryModel])
    async def journal(ns: NS, query: JQ, since: Since = 0, limit: Limit = 1000) -> Response:
        return _json(_entries_json(ns.journal.query(query, since=since, limit=limit)))

    @router.get("/journal/count", response_model=Count)
    async def journal_count(ns: NS, query: JQ, since: Since = 0) -> Count:
        return Count(count=ns.journal.count(query, since=since))

    @router.get(
        "/journal/wait",
        response_model=WaitResult,
        responses={408: {"model": WaitResult, "description": "deadline passed: what was there"}},
    )
    async def journal_wait(
        ns: NS,
        query: JQ,
        count: Annotated[int, Query(ge=1, le=100_000)],
        timeout_ms: Annotated[int, Query(ge=0, le=MAX_WAIT_MS)] = 10_000,
        since: Since = 0,
    ) -> Response:
        """Wait until ``count`` matching entries exist; 408 with what there is when the deadline passes."""
        entries, reached = await ns.journal.wait_for(count, query, since=since, timeout=timeout_ms / 1000)
        body = {"reached": reached, "count": len(entries), "entries": _entries_json(entries)}
        return _json(body, 200 if reached else 408)

    @router.delete("/journal", status_code=status.HTTP_204_NO_CONTENT)
    async def clear_journal(ns: NS) -> None:
        ns.journal.clear()

    # -- ingest records -----------------------------------------------------------------------------------

    @router.get("/ingest", response_model=list[IngestRecordModel])
    async def ingest_records(
        ns: NS,
        status_code: str | None = Query(None, description="the envelope's statusCode, e.g. 403"),
        connector: str | None = None,
        app: str | None = None,
        path: str | None = None,
        since: Since = 0,
        limit: Limit = 1000,
    ) -> Response:
        query = IngestQuery(status_code=status_code, connector=connector, app=app, path=path)
        records = ns.ingest.query(query, since=since, limit=limit)
        return _json([IngestRecordModel.of(r).model_dump(mode="json") for r in records])

    @router.delete("/ingest", status_code=status.HTTP_204_NO_CONTENT)
    async def clear_ingest(ns: NS) -> None:
        ns.ingest.clear()

    # -- listeners ----------------------------------------------------------------------------------------

    @router.get("/listeners", response_model=list[ListenerInfo])
    async def list_listeners() -> list[ListenerInfo]:
        return [ListenerInfo.of(listener) for listener in engine.listeners.list()]

    @router.post("/listeners", response_model=ListenerInfo, status_code=status.HTTP_201_CREATED,
                 responses=_errors(409))
    async def open_listener(ns: NS, request: ListenerRequest | None = None) -> ListenerInfo:
        """A loopback port bound to a namespace (connectors pointed at it land there, ``down`` closes it)."""
        request = request or ListenerRequest()
        try:
            listener = await engine.listeners.open(request.namespace or ns.name, request.port)
        except NamespaceError as exc:
            raise _invalid_field("namespace", request.namespace, str(exc)) from None
        except ListenerError as exc:
            raise HTTPException(409, str(exc)) from None
        return ListenerInfo.of(listener)

    @router.delete("/listeners/{port}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors(404))
    async def close_listener(port: int) -> None:
        if not await engine.listeners.close(port):
            raise HTTPException(404, f"no listener on port {port}")

    # -- namespaces ---------------------------------------------------------------------------------------

    @router.get("/namespaces", response_model=list[NamespaceInfo])
    async def list_namespaces() -> list[NamespaceInfo]:
        return [
            NamespaceInfo(
                name=n.name, policies=len(n.policies.policies), rules=len(n.rules), journal_entries=len(n.journal),
                journal_bytes=n.journal.payload_bytes, ingest_records=len(n.ingest),
                ingest_bytes=n.ingest.payload_bytes, ports=registry.ports_of(n.name),
                api_keys=registry.api_key_count(n.name), down=registry.is_down(n),
            )
            for n in registry.all()
        ]

    @router.post("/namespaces/api-keys", status_code=status.HTTP_204_NO_CONTENT)
    async def register_api_key(ns: NS, request: ApiKeyRequest) -> None:
        """Calls whose ``Authorization`` is this key land in the namespace (and pass the token check)."""
        try:
            registry.register_api_key(request.api_key, request.namespace or ns.name)
        except NamespaceError as exc:
            raise _invalid_field("namespace", request.namespace, str(exc)) from None

    @router.delete("/namespaces/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=_errors(404))
    async def delete_namespace(name: str) -> None:
        """Close its listeners and forget it (``default`` is reset instead)."""
        if not await engine.remove_namespace(name):
            raise HTTPException(404, f"no namespace {name!r}")

    app.include_router(router)
    return app
