"""The fault catalogue: one small model per fault, named as WireMock / Toxiproxy users know them.

Each fault's fields are exactly its admin-API / YAML / CLI config, and its one method
``async def apply(exchange)`` decides how (or whether) the engine's already computed answer reaches the
client. Faults are real socket behaviour: resets are RSTs, empty replies are FINs, truncations promise a
``content-length`` they do not keep. Delays ``await asyncio.sleep`` so a delayed call never holds a worker,
and count from the moment the engine received the call (see :class:`_Delay`).

Combining a delay with another fault: the three delay types take an optional ``then`` fault, applied
after the wait instead of delivering the answer (``{"type": "fixed_delay", "ms": 800, "then":
{"type": "connection_reset_by_peer"}}`` reads as "after 800 ms, reset"). We chose this over a separate
``delay`` field on rules because a fault stays one self-contained value: it works the same in a rule's
``fault``, in each step of a ``sequence``, and anywhere a fault is passed around on its own.

``down`` is mostly listener state the server handles (the namespace's listeners refuse connections); on a
shared port, where refusing is impossible, its ``apply`` resets the connection.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationInfo, field_validator

import akto_wire as wire

from .exchange import Answer, Exchange

#: Upper bound of every duration field (one hour): faults are bounded, nothing waits forever.
MAX_MS = 3_600_000

#: Sigma of a lognormal from its median and p99: p99 = median * exp(sigma * z99), z99 = 2.326.
Z_99 = 2.326

Ms = Annotated[int, Field(ge=0, le=MAX_MS)]

NON_JSON_TEXT = "upstream error"
HTML_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>The upstream guardrail service did not answer.</p></body></html>"
)

_shared_rng = random.Random()

#: What HTTP allows in a header name (a token) and value (latin-1 text without control characters but tab):
#: a ``status`` fault's headers are checked when the rule is added, not when a call would fail on them.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def _check_header_value(what: str, value: str) -> None:
    if not _HEADER_VALUE.fullmatch(value):
        raise ValueError(f"{what} must be latin-1 text without control characters (no CR, LF or NUL)")


class FaultBase(BaseModel):
    """Common base: unknown keys are refused so a typo in YAML (``msec``) is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")

    async def apply(self, exchange: Exchange) -> None:  # pragma: no cover - every fault overrides it
        raise NotImplementedError


#: Every fault by the name users type (``type`` in YAML / the admin API), filled by :func:`register`
#: where each fault is defined: the only list of faults.
FAULTS: dict[str, type[FaultBase]] = {}

F = TypeVar("F", bound=type[FaultBase])


def register(cls: F) -> F:
    """Class decorator: add a fault to :data:`FAULTS` under its ``type`` literal (which must be unique)."""
    name = cls.model_fields["type"].default
    if not isinstance(name, str) or name in FAULTS:
        raise TypeError(f"{cls.__name__}: a fault needs a unique string default for ``type`` (got {name!r})")
    FAULTS[name] = cls
    return cls


#: Added to the first sleep of :func:`sleep_until`: uvloop's timers woke up to 1.2 ms early, and under a
#: 500-call burst the engine slept 2.2 times per delayed call on average (every wake-up resumes the whole
#: chain of the call's coroutines); with this pad it sleeps once, answering ~0.5 ms later at the median.
TIMER_PAD_S = 0.001


async def sleep_until(deadline: float) -> None:
    """Sleep until ``deadline`` (``time.perf_counter()`` seconds), never returning before it.

    uvloop schedules timers in whole milliseconds against a clock cached at the start of the loop
    iteration, so a plain ``asyncio.sleep(0.3)`` can return after 299.9 ms; a fault that promises a delay
    must keep it, so the first sleep is padded and a wake-up that is still early sleeps again for the rest.
    """
    remaining = deadline - time.perf_counter()
    if remaining > 0:
        await asyncio.sleep(remaining + TIMER_PAD_S)
    while (remaining := deadline - time.perf_counter()) > 0:
        await asyncio.sleep(remaining + TIMER_PAD_S / 2)


async def sleep_at_least(seconds: float) -> None:
    """Sleep no less than ``seconds`` of real time from now."""
    await sleep_until(time.perf_counter() + seconds)


async def _break(exchange: Exchange, *, reset: bool, data: bytes = b"") -> None:
    """Write ``data`` (if any) straight to the socket, then RST or FIN, then let uvicorn see it is gone."""
    raw = exchange.raw
    if data:
        raw.write(data)
    raw.reset() if reset else raw.close()
    await raw.wait_closed()


class _Delay(FaultBase):
    """Shared by the delay types: wait a sampled time, then deliver the answer or apply ``then``
    (each subclass declares ``then`` last, so dumps read ``type``, the timing, then ``then``).

    The wait counts from the moment the engine received the call (``Exchange.started``), not from when the
    fault got the exchange: reading the body, evaluating policies and waiting for the busy event loop are
    inside the delay, so a 200 ms delay answers 200 ms after the call arrived, under load too (it never
    answers earlier; when the engine itself took longer, it answers at once). A delay in ``then`` starts
    when this one ends, so chained delays add up.
    """

    def sample_ms(self, rng: random.Random | None = None) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    async def apply(self, exchange: Exchange) -> None:
        deadline = exchange.started + self.sample_ms() / 1000
        await sleep_until(deadline)
        if self.then is not None:
            exchange.started = deadline  # a delay in ``then`` counts from the end of this one
            await self.then.apply(exchange)
        else:
            await exchange.deliver()


@register
class FixedDelay(_Delay):
    """The answer arrives after ``ms`` milliseconds."""

    type: Literal["fixed_delay"] = "fixed_delay"
    ms: Ms
    then: Fault | None = None

    def sample_ms(self, rng: random.Random | None = None) -> float:
        return float(self.ms)


@register
class UniformDelay(_Delay):
    """The answer arrives after a delay drawn uniformly from [``lower_ms``, ``upper_ms``]."""

    type: Literal["uniform_delay"] = "uniform_delay"
    lower_ms: Ms
    upper_ms: Ms
    then: Fault | None = None

    @field_validator("upper_ms")
    @classmethod
    def _upper_not_below_lower(cls, upper: int, info: ValidationInfo) -> int:
        lower = info.data.get("lower_ms")
        if lower is not None and upper < lower:
            raise ValueError(f"upper_ms ({upper}) must not be below lower_ms ({lower})")
        return upper

    def sample_ms(self, rng: random.Random | None = None) -> float:
        return (rng or _shared_rng).uniform(self.lower_ms, self.upper_ms)


@register
class LognormalDelay(_Delay):
    """A long-tail delay: half the answers come before ``median_ms``, 99% before ``p99_ms``."""

    type: Literal["lognormal_delay"] = "lognormal_delay"
    median_ms: Annotated[int, Field(gt=0, le=MAX_MS)]
    p99_ms: Ms
    then: Fault | None = None

    @field_validator("p99_ms")
    @classmethod
    def _p99_not_below_median(cls, p99: int, info: ValidationInfo) -> int:
        median = info.data.get("median_ms")
        if median is not None and p99 < median:
            raise ValueError(f"p99_ms ({p99}) must not be below median_ms ({median})")
        return p99

    @property
    def sigma(self) -> float:
        return math.log(self.p99_ms / self.median_ms) / Z_99

    def sample_ms(self, rng: random.Random | None = None) -> float:
        sample = self.median_ms * math.exp(self.sigma * (rng or _shared_rng).gauss(0.0, 1.0))
        return min(sample, float(MAX_MS))


@register
class ChunkedDribble(FaultBase):
    """The head arrives at once, then the body trickles in as ``chunks`` pieces over ``total_ms``."""

    type: Literal["chunked_dribble"] = "chunked_dribble"
    chunks: Annotated[int, Field(ge=1, le=10_000)]
    total_ms: Ms

    async def apply(self, exchange: Exchange) -> None:
        await exchange.deliver_in_chunks(self.chunks, self.total_ms / 1000)


@register
class Hang(FaultBase):
    """The call is accepted and never answered; the engine closes it after ``max_ms`` (FIN, no bytes)."""

    type: Literal["hang"] = "hang"
    max_ms: Annotated[int, Field(gt=0, le=MAX_MS)] = 300_000

    async def apply(self, exchange: Exchange) -> None:
        await exchange.wait_disconnect(self.max_ms / 1000)


@register
class Down(FaultBase):
    """Connection refused on the namespace's own listeners (for ``for_ms``, or until removed); a reset
    on a shared port."""

    type: Literal["down"] = "down"
    for_ms: Annotated[int, Field(gt=0, le=MAX_MS)] | None = None

    def in_effect(self, since: float, now: float) -> bool:
        """Whether a ``down`` that started at monotonic ``since`` still holds at ``now``."""
        return self.for_ms is None or (now - since) * 1000 < self.for_ms

    async def apply(self, exchange: Exchange) -> None:
        await _break(exchange, reset=True)


@register
class ConnectionResetByPeer(FaultBase):
    """The connection is reset (RST) before any byte of the answer: "connection reset by peer"."""

    type: Literal["connection_reset_by_peer"] = "connection_reset_by_peer"

    async def apply(self, exchange: Exchange) -> None:
        await _break(exchange, reset=True)


@register
class EmptyResponse(FaultBase):
    """The connection is closed cleanly (FIN) without a single byte: "server disconnected"."""

    type: Literal["empty_response"] = "empty_response"

    async def apply(self, exchange: Exchange) -> None:
        await _break(exchange, reset=False)


@register
class RandomDataThenClose(FaultBase):
    """``bytes`` bytes of garbage instead of an HTTP answer, then FIN (``seed`` makes them repeatable)."""

    type: Literal["random_data_then_close"] = "random_data_then_close"
    bytes: Annotated[int, Field(ge=1, le=1_048_576)] = 64
    seed: int | None = None

    def garbage(self) -> bytes:
        data = random.Random(self.seed).randbytes(self.bytes)
        # Garbage must never read as a status line by accident.
        return b"\x00" + data[1:] if data.startswith(b"H") else data

    async def apply(self, exchange: Exchange) -> None:
        await _break(exchange, reset=False, data=self.garbage())


@register
class TruncatedBody(FaultBase):
    """The head promises the full ``content-length``, only ``fraction`` of the body follows, then FIN."""

    type: Literal["truncated_body"] = "truncated_body"
    fraction: Annotated[float, Field(gt=0, lt=1)] = 0.5

    async def apply(self, exchange: Exchange) -> None:
        body = exchange.answer.body
        promised = max(len(body), 1)
        kept = min(int(len(body) * self.fraction), promised - 1)
        await _break(exchange, reset=False, data=exchange.answer.raw_head(promised) + body[:kept])


@register
class Status(FaultBase):
    """Any HTTP status with the given body, content type and extra headers instead of the verdict."""

    type: Literal["status"] = "status"
    status: Annotated[int, Field(ge=100, le=599)]
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = Field(default_factory=dict)
    _encoded_body: bytes = PrivateAttr(b"")

    #: Framing headers the server computes itself; a second copy would make the answer unreadable.
    FRAMING: ClassVar[frozenset[str]] = frozenset({"content-length", "transfer-encoding", "content-type"})

    @field_validator("headers")
    @classmethod
    def _no_framing_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        clash = sorted(name for name in headers if name.lower() in cls.FRAMING)
        if clash:
            raise ValueError(f"headers must not set {', '.join(clash)} (use content_type; the length is computed)")
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"header name {name!r} is not an HTTP token (letters, digits, !#$%&'*+-.^_`|~)")
            _check_header_value(f"header {name!r}", value)
        return headers

    @field_validator("content_type")
    @classmethod
    def _sendable_content_type(cls, content_type: str) -> str:
        _check_header_value("content_type", content_type)
        return content_type

    def model_post_init(self, context: Any) -> None:
        # Encoded once and shared by every call the rule answers (issue 11: a copy per call, held by 200
        # clients that did not read, came to 3.9 GB).
        self._encoded_body = self.body.encode()

    async def apply(self, exchange: Exchange) -> None:
        exchange.answer = Answer(status=self.status, body=self._encoded_body, content_type=self.content_type,
                                 headers=list(self.headers.items()))
        await exchange.deliver()


@register
class NonJsonBody(FaultBase):
    """200 with ``text/plain`` "upstream error": a JSON client fails to parse it."""

    type: Literal["non_json_body"] = "non_json_body"

    async def apply(self, exchange: Exchange) -> None:
        exchange.answer = Answer(status=200, body=NON_JSON_TEXT.encode(), content_type="text/plain; charset=utf-8")
        await exchange.deliver()


@register
class HtmlBody(FaultBase):
    """200 with an HTML error page (what a misrouted proxy or captive portal serves)."""

    type: Literal["html_body"] = "html_body"

    async def apply(self, exchange: Exchange) -> None:
        exchange.answer = Answer(status=200, body=HTML_ERROR_PAGE.encode(), content_type="text/html; charset=utf-8")
        await exchange.deliver()


@register
class WrongContentType(FaultBase):
    """The normal JSON answer, labelled ``text/html``: only clients that check the content type fail."""

    type: Literal["wrong_content_type"] = "wrong_content_type"

    async def apply(self, exchange: Exchange) -> None:
        relabelled = exchange.answer.copy()  # answers are never changed in place (they may be memoised)
        relabelled.content_type = "text/html; charset=utf-8"
        exchange.answer = relabelled
        await exchange.deliver()


SchemaBreakKind = Literal["missing_allowed", "wrong_types", "null_guardrails_result", "no_guardrails_result"]


@register
class SchemaBreak(FaultBase):
    """A 200 whose ``data.guardrailsResult`` is bent: no ``Allowed``, booleans as strings, null, or absent.

    Answers without a ``data`` object (422s, TrueFoundry's ``{}``) are delivered unchanged.
    """

    type: Literal["schema_break"] = "schema_break"
    kind: SchemaBreakKind

    def bend(self, body: object) -> object:
        """A bent deep copy of an engine JSON body (the original is left alone)."""
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            return body
        bent = {**body, "data": dict(body["data"])}
        data = bent["data"]
        if self.kind == "no_guardrails_result":
            data.pop("guardrailsResult", None)
        elif self.kind == "null_guardrails_result":
            data["guardrailsResult"] = None
        elif isinstance(data.get("guardrailsResult"), dict):
            change = _drop_allowed if self.kind == "missing_allowed" else _bools_as_strings
            data["guardrailsResult"] = change(data["guardrailsResult"])
        return bent

    async def apply(self, exchange: Exchange) -> None:
        if isinstance(exchange.answer.json, dict):
            exchange.answer = exchange.answer.with_json(self.bend(exchange.answer.json))
        await exchange.deliver()


def _drop_allowed(verdict: dict) -> dict:
    """The verdict without ``Allowed``/``allowed``, also inside merged ``requestResult``/``responseResult``."""
    return {key: _drop_allowed(value) if isinstance(value, dict) else value
            for key, value in verdict.items() if key not in ("Allowed", "allowed")}


def _bools_as_strings(verdict: dict) -> dict:
    """Every boolean as the string ``"true"``/``"false"`` (a truthy ``"false"`` fools sloppy clients)."""
    def convert(value: object) -> object:
        if isinstance(value, bool):
            return "true" if value else "false"
        return _bools_as_strings(value) if isinstance(value, dict) else value
    return {key: convert(value) for key, value in verdict.items()}


@register
class FailOpenVerdict(FaultBase):
    """200 with the synthetic verdict Akto's gateway makes up when guardrails-service is down
    (``legacy``: the Jan-Jun 2026 lower-case ``allowed: false`` shape)."""

    type: Literal["fail_open_verdict"] = "fail_open_verdict"
    error: str = "guardrails-service unavailable"
    legacy: bool = False

    async def apply(self, exchange: Exchange) -> None:
        verdict = wire.fail_open_verdict(self.error, legacy=self.legacy)
        exchange.answer = Answer.of_json(wire.success_body(verdict))
        await exchange.deliver()


@register
class SlowGuardrails(FaultBase):
    """guardrails-service, behind Akto's gateway, answers after ``ms``.

    What the caller sees depends on the namespace's Akto profile (:mod:`mock_akto.profiles`): with the
    gateway's fail-open on (profile ``current``), a call slower than ``GUARDRAILS_CLIENT_TIMEOUT_MS`` is
    answered at that timeout with the gateway's fail-open verdict (200, ``Allowed: true``, ``failOpen``);
    ``legacy`` answers the Jan-Jun 2026 lower-case map instead; ``off``, and calls with no gateway in front
    (``/api/validate/*``, no guardrails flag), get the real answer after ``ms``. ``fixed_delay`` is the
    other kind of slowness: the ingestion service's whole answer is late, whatever the profile.
    """

    type: Literal["slow_guardrails"] = "slow_guardrails"
    ms: Ms

    async def apply(self, exchange: Exchange) -> None:
        gateway = exchange.gateway
        give_up = gateway.gateway_timeout_s if gateway is not None else None
        if give_up is None or self.ms / 1000 <= give_up:
            await sleep_until(exchange.started + self.ms / 1000)
            await exchange.deliver()
            return
        await sleep_until(exchange.started + give_up)
        error = f"guardrails-service did not answer within GUARDRAILS_CLIENT_TIMEOUT_MS ({gateway.guardrails_client_timeout_ms} ms)"
        verdict = wire.fail_open_verdict(error, legacy=gateway.gateway_fail_open == "legacy")
        exchange.answer = Answer.of_json(wire.success_body(verdict))
        await exchange.deliver()


if TYPE_CHECKING:
    Fault = FaultBase  # for type checkers: any registered fault
else:
    #: The tagged union of every registered fault, picked by ``type`` (built from :data:`FAULTS`, the one list).
    Fault = Annotated[Union[tuple(FAULTS.values())], Field(discriminator="type")]

for _fault in FAULTS.values():
    if not _fault.__pydantic_complete__:
        _fault.model_rebuild()  # a delay's ``then`` names the union, complete only now

FAULT_ADAPTER: TypeAdapter[Fault] = TypeAdapter(Fault, config=ConfigDict(title="Fault"))


def parse_fault(data: object) -> Fault:
    """A fault from plain data (YAML, admin JSON); raises pydantic's ``ValidationError`` naming the field."""
    return FAULT_ADAPTER.validate_python(data)
