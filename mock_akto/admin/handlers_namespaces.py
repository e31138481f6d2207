"""Admin handlers for the engine as a whole: health, reset, extra listeners, namespaces and API keys."""

from typing import Literal

from fastapi import HTTPException

from ..errors import LimitReached, ListenerError, NamespaceError
from .deps import NS, EngineDep, invalid_field
from .models import ApiKeyRequest, Health, ListenerInfo, ListenerRequest, NamespaceInfo, ResetResult


async def health(engine: EngineDep, ns: NS) -> Health:
    budget = engine.registry.limits.budget
    if budget is None:
        return Health(namespace=ns.name, namespaces=len(engine.registry.all()))
    return Health(namespace=ns.name, namespaces=len(engine.registry.all()), memory_budget_bytes=budget.max_bytes,
                  memory_used_bytes=budget.used, evicted_by_budget=budget.evicted)


async def reset(engine: EngineDep, ns: NS, scope: Literal["namespace", "all"] = "namespace") -> ResetResult:
    """Fresh policies, no rules, empty journal and ingest records; ``scope=all``: every namespace and
    the global rules."""
    if scope == "all":
        await engine.reset_all()
        return ResetResult(reset=[n.name for n in engine.registry.all()])
    await engine.reset(ns)
    return ResetResult(reset=[ns.name])


async def list_listeners(engine: EngineDep) -> list[ListenerInfo]:
    return [ListenerInfo.of(listener) for listener in engine.listeners.list()]


async def open_listener(engine: EngineDep, ns: NS, request: ListenerRequest | None = None) -> ListenerInfo:
    """A loopback port bound to a namespace (connectors pointed at it land there, ``down`` closes it)."""
    request = request or ListenerRequest()
    try:
        listener = await engine.listeners.open(request.namespace or ns.name, request.port)
    except LimitReached as exc:
        raise HTTPException(400, str(exc)) from None
    except NamespaceError as exc:
        raise invalid_field("namespace", request.namespace, str(exc)) from None
    except ListenerError as exc:
        raise HTTPException(409, str(exc)) from None
    return ListenerInfo.of(listener)


async def close_listener(engine: EngineDep, port: int) -> None:
    if not await engine.listeners.close(port):
        raise HTTPException(404, f"no listener on port {port}")


async def list_namespaces(engine: EngineDep) -> list[NamespaceInfo]:
    registry = engine.registry
    return [
        NamespaceInfo(
            name=n.name, policies=len(n.policies.policies), rules=len(n.rules), journal_entries=len(n.journal),
            journal_bytes=n.journal.payload_bytes, ingest_records=len(n.ingest),
            ingest_bytes=n.ingest.payload_bytes, ports=registry.ports_of(n.name),
            api_keys=registry.api_key_count(n.name), down=registry.is_down(n),
        )
        for n in registry.all()
    ]


async def register_api_key(engine: EngineDep, ns: NS, request: ApiKeyRequest) -> None:
    """Calls whose ``Authorization`` is this key land in the namespace (and pass the token check)."""
    try:
        engine.registry.register_api_key(request.api_key, request.namespace or ns.name)
    except LimitReached as exc:
        raise HTTPException(400, str(exc)) from None
    except NamespaceError as exc:
        raise invalid_field("namespace", request.namespace, str(exc)) from None


async def delete_namespace(engine: EngineDep, name: str) -> None:
    """Close its listeners and forget it (``default`` is reset instead)."""
    if not await engine.remove_namespace(name):
        raise HTTPException(404, f"no namespace {name!r}")
