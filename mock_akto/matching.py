"""One matcher model for every question "which calls?": fault rules, scripted verdicts, journal queries and
verification all take a :class:`Matcher`.

A matcher tests one call (a :class:`CallInfo`, built once per call by the engine, or from a journal entry).
Every given field must hold; ``all`` / ``any`` / ``not`` combine matchers. The fields:

* the call: ``path`` (exact, or a glob with ``* ? [``), ``method``, ``direction``, ``flags`` (all on),
  ``connector``, ``app``, ``namespace``, ``query`` (raw query parameters by name);
* the body: ``body_contains`` (substring of the raw body), ``body`` (a condition on the raw body),
  ``json`` (JSON path -> condition, see :func:`parse_json_path`: a string holding JSON is decoded when the
  path goes on, so ``requestPayload.body.messages[-1].content`` reaches into LiteLLM's double-encoded
  payload), ``headers`` (the envelope's ``requestHeaders``, names in any case), ``prompt`` / ``response_text``
  (the texts the policies judge, from :func:`~mock_akto.extract.extract_texts`, joined by newlines);
* what was decided: ``allowed`` (every verdict of the call allowed), ``status``, ``fault``.

A condition is ``equal`` / ``contains`` / ``regex`` (``regex`` module, 200 ms per search like the policies)
/ ``absent``, with ``ignore_case``; a bare value stands for ``equal``. A matcher that cannot be compiled
(bad regex, bad JSON path, two operators in one condition) is refused by validation, naming the field.

Hot path: the engine asks a matcher only when a rule or script exists; the matcher is compiled once into
closures, and what it reads from the call (parsed envelope, prompt text, headers) is computed lazily, once
per distinct call (the engine memoises :class:`CallInfo` with the reply).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Annotated, Any, Callable, Union
from urllib.parse import parse_qsl

import orjson
import regex
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, SerializerFunctionWrapHandler,
                      field_validator, model_serializer, model_validator)

from akto_wire import GUARDRAILS, RESPONSE_GUARDRAILS, Direction, FlagName, Flags, Verdict

from .errors import RegexTimeout
from .extract import extract_texts

log = logging.getLogger("mock_akto.matching")

#: Same budget as the policies' regexes (mock_akto.policies.REGEX_TIMEOUT_S), so one slow pattern cannot
#: stall the engine however it is used.
MATCH_REGEX_TIMEOUT_S = 0.2
_GLOB_CHARS = frozenset("*?[")
_MISSING = object()
_PATH_TOKEN = re.compile(r"""\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[(-?\d+)\]|\[["']([^"']+)["']\]""")


# --------------------------------------------------------------------------------------------- the call


@dataclass(eq=False)
class CallInfo:
    """What a matcher can test on one call, gathered by the engine once per distinct call.

    ``path`` is the route without the ``/ns/<name>`` prefix and without the query string; ``body_text`` is
    the raw request body decoded as UTF-8 (with replacement). Derived views (parsed envelope, prompt text,
    headers, query) are computed on first use only.
    """

    path: str = "/api/http-proxy"
    method: str = "POST"
    flags: Flags = field(default_factory=Flags)
    connector: str = ""
    app: str = ""
    body_text: str = ""
    namespace: str = "default"
    query_string: bytes = b""
    request_verdict: Verdict | None = None
    response_verdict: Verdict | None = None
    status: int | None = None
    fault: str | None = None
    #: JSON found inside strings (payloads encoded once or twice), decoded once per call whatever asks.
    decoded: dict[str, Any] = field(default_factory=dict, repr=False)

    def decode(self, text: str) -> Any:
        """``text`` parsed as JSON (``_MISSING`` when it is not), remembered for this call."""
        value = self.decoded.get(text, None)
        if value is None:
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                value = _MISSING
            self.decoded[text] = value
        return value

    @cached_property
    def envelope(self) -> Any:
        """The body as JSON (``None`` when it is not JSON)."""
        try:
            return orjson.loads(self.body_text) if self.body_text else None
        except orjson.JSONDecodeError:
            return None

    def _field(self, name: str) -> str:
        envelope = self.envelope
        value = envelope.get(name) if type(envelope) is dict else None
        return value if type(value) is str else ""

    @cached_property
    def prompt(self) -> str:
        """The texts of ``requestPayload`` the policies judge, joined by newlines."""
        return "\n".join(extract_texts(self._field("requestPayload")))

    @cached_property
    def response_text(self) -> str:
        """The texts of ``responsePayload`` the policies judge, joined by newlines."""
        return "\n".join(extract_texts(self._field("responsePayload")))

    @cached_property
    def headers(self) -> dict[str, str]:
        """The envelope's ``requestHeaders`` (JSON-encoded in the envelope), names lower-cased."""
        try:
            data = orjson.loads(self._field("requestHeaders") or "{}")
        except orjson.JSONDecodeError:
            return {}
        if type(data) is not dict:
            return {}
        return {str(k).lower(): v if type(v) is str else orjson.dumps(v).decode() for k, v in data.items()}

    @cached_property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))

    @property
    def allowed(self) -> bool | None:
        verdicts = [v for v in (self.request_verdict, self.response_verdict) if v is not None]
        return all(v.allowed for v in verdicts) if verdicts else None


# --------------------------------------------------------------------------------------------- JSON paths


def parse_json_path(path: str) -> tuple[str | int, ...]:
    """``$.requestPayload.body.messages[-1].content`` -> ``("requestPayload", "body", "messages", -1,
    "content")``; ``["a.b"]`` quotes a key. ``ValueError`` naming the position of anything else."""
    text = path[2:] if path.startswith("$.") else path[1:] if path.startswith("$") else path
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        token = _PATH_TOKEN.match(text, position)
        if token is None or (token.start(1) > 0 and not steps and text[position] == "."):
            raise ValueError(f"invalid JSON path {path!r} at {text[position:]!r}: use name.name[index] (index may be -1)")
        name, index, quoted = token.groups()
        steps.append(int(index) if index is not None else (name if name is not None else quoted))
        position = token.end()
    if not steps:
        raise ValueError("empty JSON path")
    return tuple(steps)


def resolve_json_path(root: Any, steps: tuple[str | int, ...], decode: Callable[[str], Any] | None = None) -> Any:
    """The value at ``steps`` (``_MISSING`` if there is none). A string met before the last step is decoded
    as JSON first (with ``decode``, e.g. :meth:`CallInfo.decode`, which remembers it): connectors encode
    payloads into strings, sometimes twice."""
    value = root
    for step in steps:
        if type(value) is str:
            if decode is not None:
                value = decode(value)
                if value is _MISSING:
                    return _MISSING
            else:
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError:
                    return _MISSING
        if type(step) is int:
            if type(value) is not list or not -len(value) <= step < len(value):
                return _MISSING
            value = value[step]
        else:
            if type(value) is not dict or step not in value:
                return _MISSING
            value = value[step]
    return value


# --------------------------------------------------------------------------------------------- conditions


class Condition(BaseModel):
    """One test on one value: exactly one of ``equal``, ``contains``, ``regex``, ``absent``."""

    model_config = ConfigDict(extra="forbid")

    equal: JsonValue = Field(None, description="the value equals this (JSON types compared as JSON)")
    contains: str | None = Field(None, description="the value (as text) contains this")
    regex: str | None = Field(None, description="the value (as text) has a match of this (200 ms per search)")
    absent: bool | None = Field(None, description="true: the value is missing; false: it is present")
    ignore_case: bool = False

    @field_validator("regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                regex.compile(pattern)
            except regex.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _one_operator(self) -> "Condition":
        given = [name for name in ("equal", "contains", "regex", "absent") if name in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"give exactly one of equal, contains, regex, absent (got {', '.join(given) or 'none'})")
        return self

    @model_serializer(mode="wrap")
    def _only_the_operator(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Written back as given: the one operator (and ``ignore_case`` when on), so it reads back the same."""
        data = handler(self)
        return {key: value for key, value in data.items()
                if (key in self.model_fields_set and key != "ignore_case") or (key == "ignore_case" and value)}

    def describe(self) -> str:
        if "equal" in self.model_fields_set:
            text = f"equal {self.equal!r}"
        elif self.contains is not None:
            text = f"contains {self.contains!r}"
        elif self.regex is not None:
            text = f"regex {self.regex!r}"
        else:
            text = "absent" if self.absent else "present"
        return text + (" (any case)" if self.ignore_case else "")

    def compile(self, label: str) -> Callable[[Any], bool]:
        """A predicate over a value (``_MISSING`` when there is none)."""
        fold = self.ignore_case
        if self.absent is not None:
            want_absent = self.absent
            return lambda value: (value is _MISSING or value is None) == want_absent
        if "equal" in self.model_fields_set:
            expected = self.equal
            if fold and isinstance(expected, str):
                folded = expected.casefold()
                return lambda value: type(value) is str and value.casefold() == folded
            return lambda value: value is not _MISSING and value == expected
        if self.contains is not None:
            needle = self.contains.casefold() if fold else self.contains
            if fold:
                return lambda value: value is not _MISSING and needle in _text(value).casefold()
            return lambda value: value is not _MISSING and needle in _text(value)
        pattern = regex.compile(self.regex or "", regex.IGNORECASE if fold else 0)

        def search(value: Any) -> bool:
            if value is _MISSING:
                return False
            try:
                return pattern.search(_text(value), timeout=MATCH_REGEX_TIMEOUT_S) is not None
            except TimeoutError:
                raise RegexTimeout(f"matcher {label}", pattern.pattern, MATCH_REGEX_TIMEOUT_S) from None

        return search


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    return "" if value is None else orjson.dumps(value).decode()


def _condition(value: Any) -> Any:
    """A bare value stands for ``{"equal": value}``."""
    return value if isinstance(value, (dict, Condition)) else {"equal": value}


CondValue = Annotated[Condition, BeforeValidator(_condition)]


def _legacy_text(value: Any) -> Any:
    """``connector: litellm`` (the fault rules' form) means equal, in any case."""
    return {"equal": value, "ignore_case": True} if isinstance(value, str) else value


CaseFreeCond = Annotated[Condition, BeforeValidator(_legacy_text)]


# --------------------------------------------------------------------------------------------- the matcher


@dataclass(frozen=True)
class _Leaf:
    """One compiled test: ``label`` names the matcher part (for near-misses), ``get`` reads the call."""

    label: str
    expected: str
    get: Callable[[CallInfo], Any]
    test: Callable[[Any], bool]

    def __call__(self, call: CallInfo) -> bool:
        return self.test(self.get(call))


class Matcher(BaseModel):
    """Which calls: every given field must hold (nothing given: every call). See the module docstring."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str | None = Field(None, description="exact path, or a glob when it contains * ? or [")
    method: str | None = Field(None, description="HTTP method, any case")
    direction: Direction | None = Field(
        None, description="'request': the guardrails flag is on; 'response': response_guardrails is on")
    flags: list[FlagName] = Field(default_factory=list, description="flags that must all be on")
    connector: CaseFreeCond | None = Field(None, description="akto_connector value (a string: equal in any case)")
    app: CaseFreeCond | None = Field(None, description="the Akto app (host the connector reports; a string: any case)")
    namespace: CondValue | None = Field(None, description="the namespace the call landed in")
    body_contains: str | None = Field(None, description="substring of the raw request body")
    body: CondValue | None = Field(None, description="a condition on the raw request body")
    json_: dict[str, CondValue] = Field(default_factory=dict, alias="json",
                                        description="JSON path into the body -> condition (encoded strings are decoded)")
    headers: dict[str, CondValue] = Field(default_factory=dict, description="the envelope's requestHeaders, any case")
    query: dict[str, CondValue] = Field(default_factory=dict, description="query parameters of the call")
    prompt: CondValue | None = Field(None, description="the request texts the policies judge (newline-joined)")
    response_text: CondValue | None = Field(None, description="the response texts the policies judge")
    allowed: bool | None = Field(None, description="every verdict of the call allowed (true) / some blocked (false)")
    status: int | None = Field(None, description="HTTP status answered (journal: final; live: before any fault)")
    fault: str | None = Field(None, description="type of the fault applied (journal only)")
    all_: list["Matcher"] = Field(default_factory=list, alias="all", description="every one of these holds")
    any_: list["Matcher"] = Field(default_factory=list, alias="any", description="at least one of these holds")
    not_: "Matcher | None" = Field(None, alias="not", description="this does not hold")

    @field_validator("json_")
    @classmethod
    def _paths_parse(cls, value: dict[str, Condition]) -> dict[str, Condition]:
        for path in value:
            parse_json_path(path)  # ValueError names the path: the 422 names the field
        return value

    def matches(self, call: CallInfo) -> bool:
        accepts = self.compile()
        return accepts is None or accepts(call)

    def is_empty(self) -> bool:
        return not self.model_dump(exclude_defaults=True)

    # -- compiling ------------------------------------------------------------------------------------

    def leaves(self) -> list[_Leaf]:
        """This matcher's own tests (not those of all/any/not), in field order."""
        leaves: list[_Leaf] = []

        def add(label: str, expected: str, get: Callable[[CallInfo], Any], test: Callable[[Any], bool]) -> None:
            leaves.append(_Leaf(label, expected, get, test))

        if self.path is not None:
            path = self.path
            if _GLOB_CHARS.isdisjoint(path):
                add("path", f"equal {path!r}", _get_path, lambda value: value == path)
            else:  # * also spans /
                add("path", f"glob {path!r}", _get_path, lambda value: fnmatchcase(value, path))
        if self.method is not None:
            method = self.method.upper()
            add("method", f"equal {method!r}", _get_method, lambda value: value.upper() == method)
        required = list(self.flags)
        if self.direction is not None:
            required.append(GUARDRAILS if self.direction == "request" else RESPONSE_GUARDRAILS)
        for name in dict.fromkeys(required):
            add(f"flags.{name}", "on", _flag_getter(name), bool)
        for name in ("connector", "app", "namespace", "body", "prompt", "response_text"):
            condition: Condition | None = getattr(self, name)
            if condition is not None:
                add(name, condition.describe(), _GETTERS[name], condition.compile(name))
        if self.body_contains is not None:
            needle = self.body_contains
            add("body_contains", f"contains {needle!r}", _GETTERS["body"], lambda value: needle in value)
        for path, condition in self.json_.items():
            steps = parse_json_path(path)
            add(f"json {path}", condition.describe(), _json_getter(steps), condition.compile(f"json {path}"))
        for name, condition in self.headers.items():
            key = name.lower()
            add(f"headers.{key}", condition.describe(), _mapping_getter("headers", key),
                condition.compile(f"headers.{key}"))
        for name, condition in self.query.items():
            add(f"query.{name}", condition.describe(), _mapping_getter("query", name), condition.compile(f"query.{name}"))
        if self.allowed is not None:
            want = self.allowed
            add("allowed", repr(want), _get_allowed, lambda value: value is want)
        if self.status is not None:
            status = self.status
            add("status", repr(status), _get_status, lambda value: value == status)
        if self.fault is not None:
            fault = self.fault
            add("fault", repr(fault), _get_fault, lambda value: value == fault)
        return leaves

    def compile(self) -> Callable[[CallInfo], bool] | None:
        """One predicate testing only what is given (``None``: every call matches)."""
        checks: list[Callable[[CallInfo], bool]] = list(self.leaves())
        checks.extend(accepts for accepts in (m.compile() for m in self.all_) if accepts is not None)
        if self.any_:
            options = [m.compile() for m in self.any_]
            if all(option is not None for option in options):
                tuple_options = tuple(options)
                checks.append(lambda call: any(option(call) for option in tuple_options))  # type: ignore[misc]
        if self.not_ is not None:
            inner = self.not_.compile()
            if inner is None:
                checks.append(lambda call: False)
            else:
                checks.append(lambda call: not inner(call))
        if not checks:
            return None
        if len(checks) == 1:
            return checks[0]
        every = tuple(checks)
        return lambda call: all(check(call) for check in every)

    # -- explaining (near-misses) ---------------------------------------------------------------------

    def explain(self, call: CallInfo) -> list[str]:
        """What does not hold for ``call``, one line per failed part (empty: it matches)."""
        failures = []
        for leaf in self.leaves():
            try:
                value = leaf.get(call)
                ok = leaf.test(value)
            except RegexTimeout as exc:
                failures.append(f"{leaf.label}: {exc}")
                continue
            if not ok:
                failures.append(f"{leaf.label}: expected {leaf.expected}, got {_shown(value)}")
        for child in self.all_:
            failures.extend(child.explain(call))
        if self.any_:
            explained = [child.explain(call) for child in self.any_]
            if all(explained):
                nearest = min(explained, key=len)
                failures.append("any: none holds; nearest: " + "; ".join(nearest))
        if self.not_ is not None and not self.not_.explain(call):
            failures.append("not: the excluded matcher holds")
        return failures

    def size(self) -> int:
        """How many parts the matcher has (near-misses are ranked by the share that failed)."""
        return (len(self.leaves()) + sum(child.size() for child in self.all_)
                + (1 if self.any_ else 0) + (1 if self.not_ is not None else 0))


def _shown(value: Any, limit: int = 80) -> str:
    if value is _MISSING:
        return "nothing"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def _get_path(call: CallInfo) -> str:
    return call.path


def _get_method(call: CallInfo) -> str:
    return call.method


def _get_allowed(call: CallInfo) -> bool | None:
    return call.allowed


def _get_status(call: CallInfo) -> int | None:
    return call.status


def _get_fault(call: CallInfo) -> str | None:
    return call.fault


def _flag_getter(name: str) -> Callable[[CallInfo], Any]:
    return lambda call: getattr(call.flags, name)


_GETTERS: dict[str, Callable[[CallInfo], Any]] = {
    "connector": lambda call: call.connector,
    "app": lambda call: call.app,
    "namespace": lambda call: call.namespace,
    "body": lambda call: call.body_text,
    "prompt": lambda call: call.prompt,
    "response_text": lambda call: call.response_text,
}


def _json_getter(steps: tuple[str | int, ...]) -> Callable[[CallInfo], Any]:
    return lambda call: resolve_json_path(call.envelope, steps, call.decode)


def _mapping_getter(attribute: str, key: str) -> Callable[[CallInfo], Any]:
    return lambda call: getattr(call, attribute).get(key, _MISSING)


#: The name fault rules have always used for their ``match`` (same model).
Match = Matcher

MatcherLike = Union[Matcher, dict[str, Any]]


def as_matcher(value: MatcherLike | None) -> Matcher:
    """A :class:`Matcher` from a model or its JSON form (``None``: every call)."""
    if value is None:
        return Matcher()
    return value if isinstance(value, Matcher) else Matcher.model_validate(value)
