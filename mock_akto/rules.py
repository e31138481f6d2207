"""Fault scripting: which calls get which fault, how often, and for how long.

A :class:`FaultRule` pairs a :class:`Match` with one ``fault`` (or a ``sequence`` of faults, one per
applied call) and the chaos knobs peers lack or spread over several tools: a ``probability`` rolled on a
per-rule RNG (``seed`` makes the applied/not pattern repeatable), ``first_n`` (fail the first N matching
calls, then recover), and ``ramp_ms`` (probability grows linearly from 0 after the rule is added:
"degrade over time"). A :class:`RuleBook` holds one namespace's rules in insertion order; the engine asks
it :meth:`RuleBook.pick` once per call. Everything is synchronous, so within one asyncio loop a pick and
its counter updates happen atomically.

Counting, precisely: ``matched`` counts calls the rule's match accepted while the rule was live;
``applied`` counts the calls it actually faulted. ``first_n`` bounds ``matched``; a ``sequence`` advances
on ``applied`` (so the client sees its steps in order even with a probability below 1).
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from .faults import Down, Fault
from .wire import Direction, Flags

FlagName = Literal["guardrails", "response_guardrails", "ingest_data"]

_GLOB_CHARS = frozenset("*?[")


@dataclass
class CallInfo:
    """What a rule can match on, gathered by the engine once per call.

    ``path`` is the route without the ``/ns/<name>`` prefix and without the query string;
    ``body_text`` is the raw request body decoded as UTF-8 (with replacement).
    """

    path: str = "/api/http-proxy"
    method: str = "POST"
    flags: Flags = field(default_factory=Flags)
    connector: str = ""
    app: str = ""
    body_text: str = ""
    namespace: str = "default"


class Match(BaseModel):
    """Which calls a rule applies to; every field is optional and all given fields must hold."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="exact path, or a glob when it contains * ? or [")
    method: str | None = Field(None, description="HTTP method, any case")
    direction: Direction | None = Field(
        None, description="'request': the guardrails flag is on; 'response': response_guardrails is on"
    )
    flags: list[FlagName] = Field(default_factory=list, description="flags that must all be on")
    connector: str | None = Field(None, description="akto_connector value, any case")
    app: str | None = Field(None, description="the Akto app (the host the connector reports), any case")
    body_contains: str | None = Field(None, description="substring of the raw request body")

    def matches(self, call: CallInfo) -> bool:
        if self.path is not None and not _path_matches(self.path, call.path):
            return False
        if self.method is not None and self.method.upper() != call.method.upper():
            return False
        if self.direction == "request" and not call.flags.guardrails:
            return False
        if self.direction == "response" and not call.flags.response_guardrails:
            return False
        if not all(getattr(call.flags, name) for name in self.flags):
            return False
        if self.connector is not None and self.connector.casefold() != call.connector.casefold():
            return False
        if self.app is not None and self.app.casefold() != call.app.casefold():
            return False
        return self.body_contains is None or self.body_contains in call.body_text


def _path_matches(pattern: str, path: str) -> bool:
    """Exact comparison unless the pattern has glob characters (then ``*`` also spans ``/``)."""
    if _GLOB_CHARS.isdisjoint(pattern):
        return pattern == path
    return fnmatchcase(path, pattern)


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

    _rng: random.Random = PrivateAttr()
    _added_at: float = PrivateAttr(0.0)

    @model_validator(mode="after")
    def _one_fault_source(self) -> "FaultRule":
        if (self.fault is None) == (self.sequence is None):
            raise ValueError("give exactly one of 'fault' or 'sequence'")
        if self.cycle and self.sequence is None:
            raise ValueError("'cycle' only applies to a 'sequence'")
        return self

    def model_post_init(self, __context: object) -> None:
        self._rng = random.Random(self.seed)

    def effective_probability(self, now: float) -> float:
        """``probability``, scaled by how far into ``ramp_ms`` we are since the rule was added."""
        if self.ramp_ms <= 0:
            return self.probability
        progress = (now - self._added_at) * 1000 / self.ramp_ms
        return self.probability * min(1.0, max(0.0, progress))

    def live(self, now: float) -> bool:
        """False once the rule has recovered: first N used up, sequence done, or ``down`` expired."""
        if self.first_n is not None and self.matched >= self.first_n:
            return False
        if self.sequence is not None and not self.cycle and self.applied >= len(self.sequence):
            return False
        return not (isinstance(self.fault, Down) and not self.fault.in_effect(self._added_at, now))

    def consider(self, call: CallInfo, now: float) -> Fault | None:
        """Count a matching call, roll the dice, and return the fault to apply (or ``None``)."""
        if not self.live(now) or not self.match.matches(call):
            return None
        self.matched += 1
        if self._rng.random() >= self.effective_probability(now):
            return None
        fault = self.fault if self.sequence is None else self.sequence[self.applied % len(self.sequence)]
        self.applied += 1
        return fault

    def start(self, now: float) -> None:
        """Reset counters and the RNG and start the clock (``ramp_ms``, ``down.for_ms``) at ``now``."""
        self.matched = 0
        self.applied = 0
        self._rng = random.Random(self.seed)
        self._added_at = now


class RuleBook:
    """One namespace's fault rules, first match in insertion order wins."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule, now: float | None = None) -> FaultRule:
        """Store a copy of ``rule`` and return it (so one preset rule can seed several books without
        sharing counters); its clock starts at ``now``, default the monotonic clock. Ids must be unique."""
        if any(existing.id == rule.id for existing in self._rules):
            raise ValueError(f"a fault rule with id {rule.id!r} already exists")
        stored = rule.model_copy(deep=True)
        stored.start(time.monotonic() if now is None else now)
        self._rules.append(stored)
        return stored

    def remove(self, rule_id: str) -> bool:
        before = len(self._rules)
        self._rules = [rule for rule in self._rules if rule.id != rule_id]
        return len(self._rules) < before

    def clear(self) -> None:
        self._rules.clear()

    def list(self) -> list[FaultRule]:
        return list(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def pick(self, call: CallInfo, now: float | None = None) -> Fault | None:
        """The fault for this call: the first live, matching rule whose dice roll says yes."""
        picked = self.pick_rule(call, now)
        return picked[1] if picked else None

    def pick_rule(self, call: CallInfo, now: float | None = None) -> tuple[FaultRule, Fault] | None:
        """Like :meth:`pick`, also naming the rule (for the journal)."""
        now = time.monotonic() if now is None else now
        for rule in self._rules:
            fault = rule.consider(call, now)
            if fault is not None:
                return rule, fault
        return None

    def has_down(self, now: float | None = None) -> Down | None:
        """The ``down`` fault in effect, if any, for the server to refuse the namespace's listeners.

        Listener state cannot see a request, so only a rule's ``fault`` counts (not its match,
        probability or sequence); a ``down`` with ``for_ms`` lapses that long after it was added.
        """
        now = time.monotonic() if now is None else now
        for rule in self._rules:
            if isinstance(rule.fault, Down) and rule.live(now):
                return rule.fault
        return None
