"""Admin handlers for fault rules: the namespace's own, or with ``?scope=global`` the shared ones."""

from fastapi import HTTPException

from ..rules import FaultRule
from .deps import NS, EngineDep, RuleScope, book_owner


async def list_rules(engine: EngineDep, ns: NS, scope: RuleScope = "namespace") -> list[FaultRule]:
    return engine.rule_book(book_owner(ns, scope)).list()


async def add_rule(engine: EngineDep, ns: NS, rule: FaultRule, scope: RuleScope = "namespace") -> FaultRule:
    try:
        return await engine.add_rule(book_owner(ns, scope), rule)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None


async def delete_rule(engine: EngineDep, ns: NS, rule_id: str, scope: RuleScope = "namespace") -> None:
    if not await engine.remove_rule(book_owner(ns, scope), rule_id):
        raise HTTPException(404, f"no fault rule {rule_id!r}")


async def clear_rules(engine: EngineDep, ns: NS, scope: RuleScope = "namespace") -> None:
    await engine.clear_rules(book_owner(ns, scope))
