"""Fault scripting: which calls get which fault, how often, and for how long.

A :class:`FaultRule` pairs a :class:`~mock_akto.matching.Matcher` (``match``) with one ``fault`` (or a ``sequence`` of faults, one per
applied call) and the chaos knobs peers lack or spread over several tools: a ``probability`` rolled on a
per-rule RNG (``seed`` makes the applied/not pattern repeatable), ``first_n`` (fail the first N matching
calls, then recover), and ``ramp_ms`` (probability grows linearly from 0 after the rule is added:
"degrade over time"). A :class:`RuleBook` holds one namespace's rules in insertion order; the engine asks
it :meth:`RuleBook.pick` once per call. Everything is synchronous, so within one asyncio loop a pick and
its counter updates happen atomically.

:class:`FaultRule` is the rule as users write it (YAML, admin API, client). A book arms each rule it
stores: the match compiled to one predicate, counters, RNG and clock as plain attributes, because every
call consults every rule and pydantic attribute access cost a third of a delayed call's engine time
(docs/benchmarks.md). Listing a book gives back ``FaultRule`` snapshots carrying the counters.

Counting, precisely: ``matched`` counts calls the rule's match accepted while the rule was live;
``applied`` counts the calls it actually faulted. ``first_n`` bounds ``matched``; a ``sequence`` advances
on ``applied`` (so the client sees its steps in order even with a probability below 1).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import RegexTimeout
from .faults import Down, Fault
from .matching import CallInfo, Match

__all__ = ["CallInfo", "FaultRule", "Match", "RuleBook"]

log = logging.getLogger("mock_akto.rules")

def _new_rule_id() -> str:
    return uuid.uuid4().hex[:8]


class FaultRule(BaseModel):
    """One scripted fault: ``match`` + (``fault`` | ``sequence``) + probability/seed, first N, ramp.

    ``matched`` and ``applied`` are counters the book keeps (reset to 0 when the rule is added), shown
    when rules are listed so a test can check how often a fault actually fired.
    """

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")] = Field(
        default_factory=_new_rule_id
    )
    match: Match = Field(default_factory=Match)
    fault: Fault | None = None
    sequence: Annotated[list[Fault], Field(min_length=1)] | None = None
    cycle: bool = Field(False, description="after the last step of `sequence`, start again (else recover)")
    probability: Annotated[float, Field(ge=0, le=1)] = 1.0
    seed: int | None = Field(None, description="seed of this rule's RNG: same seed, same applied/not pattern")
    first_n: Annotated[int, Field(ge=1)] | None = Field(None, description="only the first N matching calls")
    ramp_ms: Annotated[int, Field(ge=0)] = Field(0, description="probability grows from 0 over this long")
    matched: Annotated[int, Field(ge=0)] = 0
    applied: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _one_fault_source(self) -> "FaultRule":
        if (self.fault is None) == (self.sequence is None):
            raise ValueError("give exactly one of 'fault' or 'sequence'")
        if self.cycle and self.sequence is None:
            raise ValueError("'cycle' only applies to a 'sequence'")
        return self


class _ArmedRule:
    """A rule inside a book: its spec, plus what the hot path reads and updates as plain attributes."""

    __slots__ = ("spec", "accepts", "fault", "steps", "cycle", "probability", "ramp_ms", "first_n", "down",
                 "matched", "applied", "rng", "added_at")

    def __init__(self, spec: FaultRule, now: float) -> None:
        self.spec = spec
        self.accepts = spec.match.compile()
        self.fault = spec.fault
        self.steps = tuple(spec.sequence) if spec.sequence is not None else None
        self.cycle = spec.cycle
        self.probability = spec.probability
        self.ramp_ms = spec.ramp_ms
        self.first_n = spec.first_n
        self.down = spec.fault if isinstance(spec.fault, Down) else None
        self.matched = 0
        self.applied = 0
        self.rng = random.Random(spec.seed)
        self.added_at = now

    def effective_probability(self, now: float) -> float:
        """``probability``, scaled by how far into ``ramp_ms`` we are since the rule was added."""
        if self.ramp_ms <= 0:
            return self.probability
        progress = (now - self.added_at) * 1000 / self.ramp_ms
        return self.probability * min(1.0, max(0.0, progress))

    def live(self, now: float) -> bool:
        """False once the rule has recovered: first N used up, sequence done, or ``down`` expired."""
        if self.first_n is not None and self.matched >= self.first_n:
            return False
        if self.steps is not None and not self.cycle and self.applied >= len(self.steps):
            return False
        return self.down is None or self.down.in_effect(self.added_at, now)

    def consider(self, call: CallInfo, now: float) -> Fault | None:
        """Count a matching call, roll the dice, and return the fault to apply (or ``None``)."""
        if not self.live(now):
            return None
        if self.accepts is not None:
            try:
                if not self.accepts(call):
                    return None
            except RegexTimeout as exc:  # a slow pattern skips this rule for this call, loudly
                log.warning("fault rule %s: %s", self.spec.id, exc)
                return None
        self.matched += 1
        if self.rng.random() >= self.effective_probability(now):
            return None
        steps = self.steps
        fault = self.fault if steps is None else steps[self.applied % len(steps)]
        self.applied += 1
        return fault

    def snapshot(self) -> FaultRule:
        """The spec as listed: a copy carrying the counters."""
        return self.spec.model_copy(update={"matched": self.matched, "applied": self.applied})


class RuleBook:
    """One namespace's fault rules, first match in insertion order wins."""

    def __init__(self) -> None:
        self._rules: list[_ArmedRule] = []

    def add(self, rule: FaultRule, now: float | None = None) -> FaultRule:
        """Arm a copy of ``rule`` (so one preset rule can seed several books without sharing counters)
        and return it as listed; its clock starts at ``now``, default the monotonic clock. Ids must be
        unique."""
        if any(armed.spec.id == rule.id for armed in self._rules):
            raise ValueError(f"a fault rule with id {rule.id!r} already exists")
        spec = rule.model_copy(deep=True, update={"matched": 0, "applied": 0})
        armed = _ArmedRule(spec, time.monotonic() if now is None else now)
        self._rules.append(armed)
        return armed.snapshot()

    def remove(self, rule_id: str) -> bool:
        before = len(self._rules)
        self._rules = [armed for armed in self._rules if armed.spec.id != rule_id]
        return len(self._rules) < before

    def clear(self) -> None:
        self._rules.clear()

    def list(self) -> list[FaultRule]:
        """The rules in order, each a snapshot with its ``matched`` and ``applied`` counters."""
        return [armed.snapshot() for armed in self._rules]

    def effective_probability(self, rule_id: str, now: float | None = None) -> float:
        """Rule ``rule_id``'s probability at ``now`` (its ``ramp_ms`` applied); ``KeyError`` if absent."""
        for armed in self._rules:
            if armed.spec.id == rule_id:
                return armed.effective_probability(time.monotonic() if now is None else now)
        raise KeyError(rule_id)

    def __len__(self) -> int:
        return len(self._rules)

    def pick(self, call: CallInfo, now: float | None = None) -> Fault | None:
        """The fault for this call: the first live, matching rule whose dice roll says yes."""
        picked = self._pick(call, now)
        return picked[1] if picked is not None else None

    def pick_rule(self, call: CallInfo, now: float | None = None) -> tuple[FaultRule, Fault] | None:
        """Like :meth:`pick`, also naming the rule (as listed, counters included)."""
        picked = self._pick(call, now)
        return (picked[0].snapshot(), picked[1]) if picked is not None else None

    def _pick(self, call: CallInfo, now: float | None) -> tuple[_ArmedRule, Fault] | None:
        now = time.monotonic() if now is None else now
        for armed in self._rules:
            fault = armed.consider(call, now)
            if fault is not None:
                return armed, fault
        return None

    def has_down(self, now: float | None = None) -> Down | None:
        """The ``down`` fault in effect, if any, for the server to refuse the namespace's listeners.

        Listener state cannot see a request, so only a rule's ``fault`` counts (not its match,
        probability or sequence); a ``down`` with ``for_ms`` lapses that long after it was added.
        """
        now = time.monotonic() if now is None else now
        for armed in self._rules:
            if armed.down is not None and armed.live(now):
                return armed.down
        return None
