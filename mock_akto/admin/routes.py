"""The whole admin API on one screen: (method, path) -> handler, under ``/__admin``.

Handlers are module-level functions in ``handlers_*.py`` that reach the engine through dependencies
(:mod:`.deps`); this table is the only place a route is declared.
"""

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from fastapi import APIRouter

from ..journal import IngestRecordModel, JournalEntryModel
from ..policies import Policy
from ..profiles import AktoProfile
from ..rules import FaultRule
from ..scripted import ScriptedVerdict
from ..verify import VerifyResult
from . import handlers_faults as faults
from . import handlers_journal as journal
from . import handlers_namespaces as namespaces
from . import handlers_policies as policies
from . import handlers_profiles as profiles
from . import handlers_scripted as scripted
from . import handlers_verify as verify
from . import handlers_ui as ui
from .models import Count, Health, ListenerInfo, NamespaceInfo, ResetResult, WaitResult, errors

ADMIN_PREFIX = "/__admin"


@dataclass(frozen=True)
class AdminRoute:
    method: str
    path: str
    handler: Callable[..., Awaitable[Any]]
    model: Any = None  # the documented answer body (None: none, 204)
    status: int = 200
    responses: dict[int | str, dict[str, Any]] = field(default_factory=dict)  # documented refusals
    in_schema: bool = True  # False: pages, their files and the event stream (not API calls to fuzz)


_WAIT_TIMED_OUT = {408: {"model": WaitResult, "description": "deadline passed: what was there"}}

ROUTES: tuple[AdminRoute, ...] = (
    AdminRoute("GET",    "/health",                  namespaces.health,           Health),
    AdminRoute("POST",   "/reset",                   namespaces.reset,            ResetResult),
    # policies
    AdminRoute("GET",    "/policies",                policies.list_policies,      list[Policy]),
    AdminRoute("PUT",    "/policies",                policies.replace_policies,   list[Policy]),
    AdminRoute("POST",   "/policies",                policies.add_policy,         Policy, 201),
    AdminRoute("DELETE", "/policies/{name:path}",    policies.delete_policy,      None, 204, errors(404)),
    AdminRoute("GET",    "/policies/presets",        policies.list_presets,       list[str]),
    AdminRoute("POST",   "/policies/presets/{name}", policies.use_preset,         list[Policy], 200, errors(404)),
    # fault rules (?scope=global: the rules every namespace shares)
    AdminRoute("GET",    "/faults/rules",            faults.list_rules,           list[FaultRule]),
    AdminRoute("POST",   "/faults/rules",            faults.add_rule,             FaultRule, 201, errors(409)),
    AdminRoute("DELETE", "/faults/rules/{rule_id}",  faults.delete_rule,          None, 204, errors(404)),
    AdminRoute("DELETE", "/faults/rules",            faults.clear_rules,          None, 204),
    # scripted verdicts (answers instead of the policies)
    AdminRoute("GET",    "/verdicts",                scripted.list_verdicts,      list[ScriptedVerdict]),
    AdminRoute("POST",   "/verdicts",                scripted.add_verdict,        ScriptedVerdict, 201, errors(409)),
    AdminRoute("DELETE", "/verdicts/{script_id}",    scripted.delete_verdict,     None, 204, errors(404)),
    AdminRoute("DELETE", "/verdicts",                scripted.clear_verdicts,     None, 204),
    # matcher queries: journal search, verification with near-misses
    AdminRoute("POST",   "/journal/find",            verify.find,                 list[JournalEntryModel]),
    AdminRoute("POST",   "/verify",                  verify.verify,               VerifyResult),
    # journal and ingest records
    AdminRoute("GET",    "/journal",                 journal.journal,             list[JournalEntryModel]),
    AdminRoute("GET",    "/journal/count",           journal.journal_count,       Count),
    AdminRoute("GET",    "/journal/wait",            journal.journal_wait,        WaitResult, 200, _WAIT_TIMED_OUT),
    AdminRoute("DELETE", "/journal",                 journal.clear_journal,       None, 204),
    AdminRoute("GET",    "/ingest",                  journal.ingest_records,      list[IngestRecordModel]),
    AdminRoute("DELETE", "/ingest",                  journal.clear_ingest,        None, 204),
    # Akto contract profiles (the namespace's; reset goes back to the engine's --akto-profile)
    AdminRoute("GET",    "/akto-profiles",           profiles.list_profiles,      list[AktoProfile]),
    AdminRoute("GET",    "/akto-profile",            profiles.get_profile,        AktoProfile),
    AdminRoute("PUT",    "/akto-profile",            profiles.set_profile,        AktoProfile),
    # listeners and namespaces
    AdminRoute("GET",    "/listeners",               namespaces.list_listeners,   list[ListenerInfo]),
    AdminRoute("POST",   "/listeners",               namespaces.open_listener,    ListenerInfo, 201, errors(409)),
    AdminRoute("DELETE", "/listeners/{port}",        namespaces.close_listener,   None, 204, errors(404)),
    AdminRoute("GET",    "/namespaces",              namespaces.list_namespaces,  list[NamespaceInfo]),
    AdminRoute("POST",   "/namespaces/api-keys",     namespaces.register_api_key, None, 204),
    AdminRoute("DELETE", "/namespaces/{name}",       namespaces.delete_namespace, None, 204, errors(404)),
    # apply files (policies and fault rules together, as `mock-akto apply --preset`)
    AdminRoute("GET",    "/presets",                 ui.list_apply_presets,       list[str]),
    AdminRoute("POST",   "/presets/{name}",          ui.apply_preset,             dict[str, Any], 200, errors(404)),
    # for people: the live activity page and the API docs, every file served from here (works offline)
    AdminRoute("GET",    "/ui",                      ui.activity_page,            in_schema=False),
    AdminRoute("GET",    "/ui/assets/{name}",        ui.activity_asset,           in_schema=False),
    AdminRoute("GET",    "/ui/events",               ui.activity_events,          in_schema=False),
    AdminRoute("GET",    "/ui/calls/{namespace}/{seq}", ui.call_detail,           dict[str, Any], 200, errors(404)),
    AdminRoute("GET",    "/docs",                    ui.docs_page,                in_schema=False),
    AdminRoute("GET",    "/docs/assets/{name}",      ui.docs_asset,               in_schema=False),
)


def admin_router() -> APIRouter:
    """An ``APIRouter`` holding every route of :data:`ROUTES`."""
    router = APIRouter(prefix=ADMIN_PREFIX)
    for route in ROUTES:
        options: dict[str, Any] = {"status_code": route.status, "responses": route.responses or None,
                                   "include_in_schema": route.in_schema}
        if route.model is not None:
            options["response_model"] = route.model
        router.add_api_route(route.path, route.handler, methods=[route.method], **options)
    return router
