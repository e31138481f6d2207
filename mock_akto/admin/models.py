"""The admin API's own request and answer bodies (policies, rules and journal entries are the engine's
models, so a typo gets the same 422 as in YAML or the CLI)."""

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..journal import JournalEntryModel
from ..listeners import Listener


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    namespace: str
    namespaces: int
    memory_budget_bytes: int = Field(0, description="payload characters all journals and ingest records may hold")
    memory_used_bytes: int = Field(0, description="payload characters they hold now")
    evicted_by_budget: int = Field(0, description="entries and records evicted (oldest first) to stay in the budget")


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


class WaitResult(BaseModel):
    reached: bool
    count: int
    entries: list[JournalEntryModel]


class ResetResult(BaseModel):
    reset: list[str]


_ERROR_MEANINGS = {
    400: "the body is not JSON, or the namespace named by the call is invalid",
    404: "no such policy, preset, fault rule, scripted verdict, listener or namespace",
    409: "a fault rule or scripted verdict with this id exists already, or the port cannot be listened on",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the refusals a route documents (the spec lists every status it answers)."""
    return {status: {"model": ErrorDetail, "description": _ERROR_MEANINGS[status]} for status in statuses}
