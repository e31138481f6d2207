"""Verification over the journal: "N calls matching this arrived (within a deadline)", and when not, which
calls came nearest and which part of the matcher each failed (WireMock's near-misses), so a failing CI test
says why in one read.

Journal entries are tested as calls: :func:`journal_call` rebuilds what a matcher reads from an entry (the
envelope's ``requestPayload`` / ``responsePayload`` / ``requestHeaders`` as the journal kept them, cut to
the payload cap; the verdicts, status and fault the engine recorded).
"""

from __future__ import annotations

from typing import Annotated, Any, Callable

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .journal import JournalEntry
from .matching import CallInfo, Matcher

#: Most journal entries ranked for near-misses (the newest), so a verification stays cheap on a full journal.
NEAR_MISS_SCAN = 1000
MAX_VERIFY_WAIT_MS = 300_000


def journal_call(entry: JournalEntry) -> CallInfo:
    """A journal entry as a matcher sees it."""
    envelope = {name: value for name, value in (("requestPayload", entry.request_payload),
                                                ("responsePayload", entry.response_payload),
                                                ("requestHeaders", entry.request_headers)) if value is not None}
    flags = entry.flags
    call = CallInfo(path=entry.path, method=entry.method, connector=entry.connector, app=entry.app,
                    body_text=orjson.dumps(envelope).decode() if envelope else "", namespace=entry.namespace,
                    request_verdict=entry.request_verdict, response_verdict=entry.response_verdict,
                    status=entry.status, fault=entry.fault)
    if flags is not None:
        call.flags = flags
    return call


def entry_predicate(matcher: Matcher) -> Callable[[JournalEntry], bool]:
    accepts = matcher.compile()
    if accepts is None:
        return lambda entry: True
    return lambda entry: accepts(journal_call(entry))


class VerifyRequest(BaseModel):
    """What to verify: calls matching ``match`` (after ``since``), ``count`` exactly, or ``at_least`` /
    ``at_most`` (nothing given: at least one), waiting up to ``timeout_ms`` for enough to arrive."""

    model_config = ConfigDict(extra="forbid")

    match: Matcher = Field(default_factory=Matcher)
    count: Annotated[int, Field(ge=0)] | None = Field(None, description="exactly this many")
    at_least: Annotated[int, Field(ge=0)] | None = None
    at_most: Annotated[int, Field(ge=0)] | None = None
    timeout_ms: Annotated[int, Field(ge=0, le=MAX_VERIFY_WAIT_MS)] = Field(
        0, description="wait this long for enough matching calls (0: check now)")
    since: Annotated[int, Field(ge=0)] = Field(0, description="only entries with a larger seq")
    near_misses: Annotated[int, Field(ge=0, le=50)] = Field(3, description="how many nearest entries to explain")

    @model_validator(mode="after")
    def _coherent(self) -> "VerifyRequest":
        if self.count is not None and (self.at_least is not None or self.at_most is not None):
            raise ValueError("give 'count' (exactly) or 'at_least' / 'at_most', not both")
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError(f"at_least ({self.at_least}) is larger than at_most ({self.at_most})")
        return self

    def bounds(self) -> tuple[int, int | None]:
        """(fewest, most) matching calls that pass."""
        if self.count is not None:
            return self.count, self.count
        if self.at_least is None and self.at_most is None:
            return 1, None
        return self.at_least or 0, self.at_most

    def expectation(self) -> str:
        low, high = self.bounds()
        if low == high:
            return f"exactly {low}"
        if high is None:
            return f"at least {low}"
        return f"at most {high}" if low == 0 else f"between {low} and {high}"


class NearMiss(BaseModel):
    seq: int
    call: str = Field(description="the entry in one line")
    failed: list[str] = Field(description="each part of the matcher this entry failed, with what it had")


class VerifyResult(BaseModel):
    ok: bool
    count: int = Field(description="matching calls found")
    expected: str
    message: str
    near_misses: list[NearMiss] = Field(default_factory=list, description="only when not ok")


def describe_entry(entry: JournalEntry) -> str:
    """``#4 POST /api/http-proxy connector=litellm app=my-app status=200 allowed prompt='...'``."""
    call = journal_call(entry)
    parts = [f"#{entry.seq} {entry.method} {entry.path}"]
    if entry.connector:
        parts.append(f"connector={entry.connector}")
    if entry.app:
        parts.append(f"app={entry.app}")
    parts.append(f"status={entry.status if entry.status is not None else '-'}")
    if call.allowed is not None:
        parts.append("allowed" if call.allowed else "blocked")
    if entry.fault:
        parts.append(f"fault={entry.fault}")
    prompt = call.prompt
    if prompt:
        parts.append(f"prompt={prompt[:60]!r}" + ("..." if len(prompt) > 60 else ""))
    return " ".join(parts)


def near_misses(matcher: Matcher, entries: list[JournalEntry], limit: int) -> list[NearMiss]:
    """The ``limit`` non-matching entries that failed the smallest share of the matcher, newest first on ties."""
    size = max(1, matcher.size())
    ranked: list[tuple[float, int, JournalEntry, list[str]]] = []
    for entry in entries[-NEAR_MISS_SCAN:]:
        failed = matcher.explain(journal_call(entry))
        if failed:
            ranked.append((len(failed) / size, -entry.seq, entry, failed))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [NearMiss(seq=entry.seq, call=describe_entry(entry), failed=failed) for _, _, entry, failed in ranked[:limit]]


def result_of(request: VerifyRequest, found: int, entries: list[JournalEntry], waited_s: float) -> VerifyResult:
    """The verdict of a verification, given how many matched and the entries to rank near-misses from."""
    low, high = request.bounds()
    ok = found >= low and (high is None or found <= high)
    expected = request.expectation()
    within = f" within {waited_s:g}s" if waited_s else ""
    matcher_text = orjson.dumps(request.match.model_dump(mode="json", by_alias=True, exclude_defaults=True)).decode()
    if ok:
        return VerifyResult(ok=True, count=found, expected=expected,
                            message=f"{found} call(s) match {matcher_text} ({expected} expected)")
    misses = near_misses(request.match, entries, request.near_misses) if request.near_misses else []
    lines = [f"expected {expected} call(s) matching {matcher_text}{within}, found {found}"]
    if misses:
        lines.append("nearest misses:")
        lines.extend(f"  {miss.call}\n    " + "\n    ".join(miss.failed) for miss in misses)
    elif not entries:
        lines.append("the journal (after `since`) is empty")
    return VerifyResult(ok=False, count=found, expected=expected, message="\n".join(lines), near_misses=misses)


def as_verify_request(match: Matcher | dict[str, Any] | None, **fields: Any) -> VerifyRequest:
    return VerifyRequest.model_validate({"match": match or {}, **{k: v for k, v in fields.items() if v is not None}})
