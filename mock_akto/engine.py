"""The engine's state: namespaces, listeners, and the rule changes that switch ``down`` on and off.

:class:`Engine` lives on the server's event loop; :class:`~mock_akto.app.EngineApp` (the ASGI dispatcher)
and the admin handlers act on it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .config import EngineConfig
from .contract import ContractRoutes
from .faults import Down
from .journal import MemoryBudget
from .listeners import ListenerManager
from .namespaces import JournalLimits, Namespace, NamespaceRegistry
from .policies import default_policies, load_policies
from .profiles import get_profile
from .record import load_recording, replay_scripts
from .rules import FaultRule, RuleBook
from .startup import StartupState, load_state

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("mock_akto")


class Engine:
    """Everything one running fake engine knows. Lives on the server's event loop."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        cfg = self.config
        base = load_policies(cfg.policies_file) if cfg.policies_file else default_policies()
        state = load_state(cfg.state_path) if cfg.state_path is not None else StartupState()
        if state.policies is not None:
            base = state.policies
        scripts = list(state.scripts)
        if cfg.replay_file is not None:
            scripts.extend(replay_scripts(load_recording(cfg.replay_file), miss=cfg.replay_miss))
        self.registry = NamespaceRegistry(
            base_policies=base, base_rules=state.rules, base_scripts=scripts,
            limits=JournalLimits(max_entries=cfg.journal_size, max_payload_bytes=cfg.journal_max_bytes,
                                 ingest_max_entries=cfg.ingest_size, budget=MemoryBudget(cfg.memory_budget_bytes)),
            max_namespaces=cfg.max_namespaces,
            max_api_keys=cfg.max_api_keys,
            base_profile=get_profile(cfg.akto_profile),
        )
        token = cfg.token.get_secret_value() if cfg.token is not None else None
        self.contract = ContractRoutes(self.registry, token=token, max_body_bytes=cfg.max_body_bytes,
                                       payload_cap=cfg.journal_payload_cap)
        self.listeners = ListenerManager(self.registry, host=cfg.host, max_listeners=cfg.max_listeners)
        self._timers: set[asyncio.TimerHandle] = set()

    def attach_server(self, server: "uvicorn.Server") -> None:
        self.listeners.attach(server)

    # -- fault rules (every change may switch a namespace's listeners down or up) -----------------------

    def rule_book(self, ns: Namespace | None) -> RuleBook:
        """The namespace's rule book, or the global one for ``None``."""
        return self.registry.global_rules if ns is None else ns.rules

    async def add_rule(self, ns: Namespace | None, rule: FaultRule) -> FaultRule:
        added = self.rule_book(ns).add(rule)
        if isinstance(rule.fault, Down):
            if rule.fault.for_ms is not None:
                self._recheck_down_after(rule.fault.for_ms / 1000)
            await self.sync_down()
        return added

    async def remove_rule(self, ns: Namespace | None, rule_id: str) -> bool:
        removed = self.rule_book(ns).remove(rule_id)
        if removed:
            await self.sync_down()
        return removed

    async def clear_rules(self, ns: Namespace | None) -> None:
        self.rule_book(ns).clear()
        await self.sync_down()

    async def reset(self, ns: Namespace) -> None:
        self.registry.reset(ns.name)
        await self.sync_down()

    async def reset_all(self) -> None:
        self.registry.global_rules.clear()
        for ns in self.registry.all():
            self.registry.reset(ns.name)
        await self.sync_down()

    async def remove_namespace(self, name: str) -> bool:
        await self.listeners.close_namespace(name)
        removed = self.registry.remove(name)
        await self.sync_down()
        return removed

    async def sync_down(self) -> None:
        self.registry.refresh_down()
        await self.listeners.sync_down_state()

    def _recheck_down_after(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            task = loop.create_task(self.sync_down())
            task.add_done_callback(_log_failure)

        # A hair after the lapse, so the rule book already counts the rule as expired.
        handle = loop.call_later(seconds + 0.005, fire)
        self._timers.add(handle)

    async def shutdown(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        await self.listeners.close_all()
        self.contract.close()


def _log_failure(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("reopening listeners failed", exc_info=task.exception())
