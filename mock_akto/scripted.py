"""Scripted verdicts: answer matching calls with a given verdict, or a sequence of them, instead of the policies.

A :class:`ScriptedVerdict` pairs a :class:`~mock_akto.matching.Matcher` with one ``answer`` or a
``sequence`` of :class:`VerdictStep` (one per matching call: "let the policies decide the 1st, block the
2nd, redact the 3rd"); after the last step the rule recovers (the policies decide again) unless ``cycle``.
A step is a verdict for every direction the call asks for (``verdict``), or one per direction
(``request`` / ``response``: the merged shape when a call asks for both), ``policies: true`` (this call
the policies decide), or ``fail`` (answer 500 naming why: how a replay miss fails loudly). Verdicts are
the wire model (:class:`akto_wire.Verdict`), so ``Allowed``, ``Reason``, ``Modified``, ``ModifiedPayload``,
``Metadata`` and ``behaviour`` mean what they mean on the wire; an unknown key is refused, not ignored.

Only calls the engine would answer 200 are scripted (a 422 for a missing payload stays a 422). One model
for the admin API (``/__admin/verdicts``), the client, the CLI and the YAML apply / start-up files.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from akto_wire import Verdict

from .errors import RegexTimeout
from .matching import CallInfo, Matcher

log = logging.getLogger("mock_akto.scripted")

_VERDICT_KEYS = frozenset(
    {"Allowed", "allowed", "Reason", "reason", "Modified", "modified", "ModifiedPayload", "modifiedPayload",
     "modified_payload", "Metadata", "metadata", "behaviour", "Behaviour"}
)


def _known_verdict_keys(value: Any) -> Any:
    """The wire model ignores unknown keys (real clients send extras); a script must not: a typo such as
    ``Alowed`` would silently allow."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - _VERDICT_KEYS)
        if unknown:
            raise ValueError(f"unknown verdict field(s) {', '.join(unknown)}; known: Allowed, Reason, Modified, "
                             "ModifiedPayload, Metadata, behaviour")
    return value


StrictVerdict = Annotated[Verdict, BeforeValidator(_known_verdict_keys)]


class VerdictStep(BaseModel):
    """What one matching call gets: a verdict (both directions, or per direction), the policies, or a failure."""

    model_config = ConfigDict(extra="forbid")

    verdict: StrictVerdict | None = Field(None, description="the verdict for every direction the call asks for")
    request: StrictVerdict | None = Field(None, description="the request-direction verdict (guardrails=true)")
    response: StrictVerdict | None = Field(None, description="the response-direction verdict (response_guardrails)")
    policies: bool = Field(False, description="this call: let the policies decide")
    fail: str | None = Field(None, description="answer 500 with this message (a replay miss that must be loud)")

    @model_validator(mode="after")
    def _one_kind(self) -> "VerdictStep":
        kinds = [self.verdict is not None or self.request is not None or self.response is not None,
                 self.policies, self.fail is not None]
        if sum(kinds) != 1:
            raise ValueError("give a verdict (verdict, or request/response), or policies: true, or fail: MESSAGE")
        return self

    def for_request(self) -> Verdict | None:
        return self.request or self.verdict

    def for_response(self) -> Verdict | None:
        return self.response or self.verdict


def _new_id() -> str:
    return uuid.uuid4().hex[:8]


class ScriptedVerdict(BaseModel):
    """One scripted answer: ``match`` + (``answer`` | ``sequence``), optionally cycling or for the first N only.

    ``matched`` counts the calls the matcher accepted while the rule was live; ``applied`` the calls it
    answered (a ``policies`` step counts as applied: the sequence moved on).
    """

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")] = Field(default_factory=_new_id)
    match: Matcher = Field(default_factory=Matcher)
    answer: VerdictStep | None = None
    sequence: Annotated[list[VerdictStep], Field(min_length=1, max_length=10_000)] | None = None
    cycle: bool = Field(False, description="after the last step of `sequence`, start again (else the policies decide)")
    first_n: Annotated[int, Field(ge=1)] | None = Field(None, description="only the first N matching calls")
    matched: Annotated[int, Field(ge=0)] = 0
    applied: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _one_source(self) -> "ScriptedVerdict":
        if (self.answer is None) == (self.sequence is None):
            raise ValueError("give exactly one of 'answer' or 'sequence'")
        if self.cycle and self.sequence is None:
            raise ValueError("'cycle' only applies to a 'sequence'")
        return self


class _ArmedScript:
    __slots__ = ("spec", "accepts", "steps", "cycle", "first_n", "matched", "applied")

    def __init__(self, spec: ScriptedVerdict) -> None:
        self.spec = spec
        self.accepts = spec.match.compile()
        self.steps = tuple(spec.sequence) if spec.sequence is not None else (spec.answer,)
        self.cycle = spec.cycle or spec.answer is not None
        self.first_n = spec.first_n
        self.matched = 0
        self.applied = 0

    def live(self) -> bool:
        if self.first_n is not None and self.matched >= self.first_n:
            return False
        return self.cycle or self.applied < len(self.steps)

    def snapshot(self) -> ScriptedVerdict:
        return self.spec.model_copy(update={"matched": self.matched, "applied": self.applied})


class ScriptBook:
    """One namespace's scripted verdicts; the first live, matching one answers (insertion order)."""

    def __init__(self) -> None:
        self._scripts: list[_ArmedScript] = []

    def __len__(self) -> int:
        return len(self._scripts)

    def add(self, script: ScriptedVerdict) -> ScriptedVerdict:
        """Arm a copy (counters at 0) and return it as listed; ids must be unique."""
        if any(armed.spec.id == script.id for armed in self._scripts):
            raise ValueError(f"a scripted verdict with id {script.id!r} already exists")
        armed = _ArmedScript(script.model_copy(deep=True, update={"matched": 0, "applied": 0}))
        self._scripts.append(armed)
        return armed.snapshot()

    def remove(self, script_id: str) -> bool:
        before = len(self._scripts)
        self._scripts = [armed for armed in self._scripts if armed.spec.id != script_id]
        return len(self._scripts) < before

    def clear(self) -> None:
        self._scripts.clear()

    def list(self) -> list[ScriptedVerdict]:
        return [armed.snapshot() for armed in self._scripts]

    def pick(self, call: CallInfo) -> tuple[str, int, VerdictStep] | None:
        """(script id, 0-based step, step) for this call, counting it; ``None``: the policies decide.
        A matcher regex that runs out of time counts as no match (and is logged)."""
        for armed in self._scripts:
            if not armed.live():
                continue
            if armed.accepts is not None:
                try:
                    if not armed.accepts(call):
                        continue
                except RegexTimeout as exc:
                    log.warning("scripted verdict %s skipped for this call: %s", armed.spec.id, exc)
                    continue
            armed.matched += 1
            index = armed.applied % len(armed.steps)
            armed.applied += 1
            return armed.spec.id, index, armed.steps[index]
        return None
