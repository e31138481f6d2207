"""Guardrail policies as data, and the verdict they give on one payload field.

A policy is what an Akto user sets up in the dashboard: what to look for (keywords, regexes, built-in
detectors), where (request or response side, which apps) and what to do (block, approval, warn, alert,
redact). The same models are the YAML preset format and the admin API body, so their errors name the field.

:meth:`PolicySet.evaluate` runs on every engine call: the set compiles its policies once, when it is built,
into a plan (regexes compiled, keywords lower-cased, policies grouped by action and cached per direction
and app), so an evaluation does no pydantic validation and no regex compilation.

Users' regexes run on the third-party ``regex`` module, which takes a time limit per search: a pattern
that backtracks catastrophically on some payload (``(a|aa)+$``) fails that call with a message naming the
policy and pattern (:class:`RegexTimeout`, answered as an evaluation error), instead of stalling the
engine's event loop for every other caller. The built-in detectors are ours and stay on ``re``.

Decision (contract sections 1.2 and 3.3): a matching ``block`` wins (``Allowed`` false, behaviour
``block``); otherwise ``approval`` / ``warn`` / ``alert`` give ``Allowed`` false with that behaviour (Akto's
connectors let those through); ``redact`` rewrites the matched text in place and reports ``Modified`` true,
behaviour ``alert``, ``Allowed`` true when nothing else matched. With no match the field text is echoed,
as the real service does.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import regex
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from akto_wire import Behaviour, Direction, ThreatMetadata, Verdict
from mock_akto.detectors import DETECTORS, Detector, ScanBatch
from mock_akto.errors import PolicyLoadError, RegexTimeout
from mock_akto.extract import extract_texts
from mock_akto.redact import redact_in_place

__all__ = [
    "Action",
    "DetectorName",
    "Matcher",
    "Policy",
    "PolicyDirection",
    "PolicyLoadError",
    "PolicyMetadata",
    "PolicySet",
    "RegexTimeout",
    "available_presets",
    "default_policies",
    "describe_validation_error",
    "load_policies",
    "load_preset",
    "parse_policies",
]

Action = Literal["block", "approval", "warn", "alert", "redact"]
PolicyDirection = Literal["request", "response", "both"]
#: Pattern detectors live in detectors.py. ``banned_topic`` matches the policy's ``keywords`` (it only names
#: the rule); ``any`` matches every payload, even one with no text (block-all / alert-all presets).
DetectorName = Literal[
    "prompt_injection", "jailbreak", "pii.email", "pii.phone", "pii.card", "pii.ssn", "secrets", "banned_topic", "any"
]

DEFAULT_REDACTION = "[REDACTED]"
_PRESET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
#: Printable ASCII without ``"`` and ``\``: such a token reads the same inside JSON-encoded payloads.
_PLAIN_TOKEN = re.compile(r'[ !#-\[\]-~]*')


#: The work one evaluation may do (issue 11: 528,000 emails in one legal-size payload took 13 s to redact
#: while every other call waited). Past either bound the field is answered as the contract allows for text
#: the engine could not judge: blocked, with a reason saying why, never allowed in silence.
#: Distinct matches one call may collect for redaction.
MAX_REDACTIONS = 1000
#: Seconds one evaluation may take, checked between rules and texts (connectors wait 5 s by default: a verdict
#: later than that is thrown away anyway; a clean 10 MB payload takes about 1 s on an idle core).
SCAN_DEADLINE_S = 5.0
UNSCANNABLE_POLICY = "scan-budget"


class ScanBudgetExceeded(Exception):
    """An evaluation passed :data:`MAX_REDACTIONS` or :data:`SCAN_DEADLINE_S`; the message says which."""


#: How long one search of one user regex over one text may run (seconds). Linear patterns take
#: microseconds on typical payloads and a few ms on megabytes; catastrophic ones would run for minutes.
REGEX_TIMEOUT_S = 0.2


def _valid_regex(pattern: str) -> str:
    try:
        compiled = regex.compile(pattern)
    except regex.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    if compiled.match("") is not None:
        raise ValueError(f"regular expression {pattern!r} matches the empty string, so it would match every text")
    return pattern


def _valid_keyword(keyword: str) -> str:
    if not keyword.strip():
        raise ValueError("a keyword must not be blank (it would match every text)")
    return keyword


def _one_or_many(value: Any) -> Any:
    """Let YAML authors write ``regex: "..."`` for a single pattern (and ``apps: my-agent``)."""
    return [value] if isinstance(value, str) else value


class Matcher(BaseModel):
    """What a policy looks for in the extracted texts. Any element matching is a match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keywords: list[Annotated[str, AfterValidator(_valid_keyword)]] = Field(
        default_factory=list, description="Phrases matched anywhere in a text, case-insensitively."
    )
    regex: list[Annotated[str, AfterValidator(_valid_regex)]] = Field(
        default_factory=list, description="Python regular expressions, case-sensitive unless they say (?i)."
    )
    detectors: list[DetectorName] = Field(default_factory=list, description="Built-in detectors by name.")

    @field_validator("keywords", "regex", "detectors", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        return _one_or_many(value)

    @model_validator(mode="after")
    def _says_something(self) -> "Matcher":
        if not self.model_fields_set:
            raise ValueError("a matcher needs at least one of keywords, regex, detectors")
        return self


class PolicyMetadata(BaseModel):
    """What the verdict's ``Metadata`` reports; empty fields get defaults from the policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy_name: str = Field("", description="Defaults to the policy's name.")
    rule_violated: str = Field("", description="Defaults to what matched: a detector name, 'keyword' or 'regex'.")
    severity: str = Field("", description="Defaults to HIGH for block, MEDIUM otherwise.")


class Policy(BaseModel):
    """One guardrail policy: a matcher, where it applies, and what it does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    enabled: bool = True
    direction: PolicyDirection = "both"
    apps: list[str] = Field(default_factory=list, description="Akto app (host) names; empty means every app.")
    matcher: Matcher
    action: Action
    reason: str = Field("", description="The verdict's Reason; a default naming the policy when empty.")
    replacement: str | None = Field(
        None, description="Redaction token; defaults to the detector's ([REDACTED_EMAIL], ...) or [REDACTED]."
    )
    metadata: PolicyMetadata = Field(default_factory=PolicyMetadata)

    @field_validator("apps", mode="before")
    @classmethod
    def _normalise_apps(cls, value: Any) -> Any:
        return _one_or_many(value)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("a policy name must not be blank")
        return name

    @field_validator("replacement")
    @classmethod
    def _plain_token(cls, token: str | None) -> str | None:
        if token is not None and not _PLAIN_TOKEN.fullmatch(token):
            raise ValueError(
                "replacement must be printable ASCII without quotes or backslashes, so it reads the same "
                "inside JSON-encoded payloads"
            )
        return token


class PolicySet(BaseModel):
    """The policies of one namespace. Build a new set to change them (the compiled plan is fixed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policies: list[Policy] = Field(default_factory=list)

    _plan: "_Plan" = PrivateAttr()

    @field_validator("policies")
    @classmethod
    def _unique_names(cls, policies: list[Policy]) -> list[Policy]:
        seen: dict[str, int] = {}
        for index, policy in enumerate(policies):
            if policy.name in seen:
                raise ValueError(f"duplicate policy name {policy.name!r} (policies {seen[policy.name]} and {index})")
            seen[policy.name] = index
        return policies

    def model_post_init(self, context: Any) -> None:
        self._plan = _Plan(self.policies)

    def evaluate(self, field_text: str, direction: Direction, app: str | None = None) -> Verdict:
        """The verdict of the policies that apply to ``direction`` and ``app`` on one payload field."""
        # Read the plan from the private-attribute dict: ``self._plan`` goes through pydantic's __getattr__,
        # which costs more than a whole clean evaluation's detector checks.
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        plan: _Plan = private["_plan"]
        if plan.source is not self.policies:
            # model_copy(update=...) copies the private plan without running model_post_init.
            plan = private["_plan"] = _Plan(self.policies)
        return plan.evaluate(field_text, direction, app)


# --- the compiled plan -------------------------------------------------------------------------------------

_FLAG_PRIORITY = {"approval": 0, "warn": 1, "alert": 2}


class _CompiledPolicy:
    """A policy ready to run: patterns compiled, verdict fields worked out once."""

    __slots__ = (
        "name", "action", "direction", "apps", "keywords", "keyword_pattern", "regexes", "detectors",
        "matches_any", "keyword_rule", "rule_override", "replacement", "behaviour", "reason", "policy_name",
        "severity",
    )

    def __init__(self, policy: Policy) -> None:
        matcher = policy.matcher
        self.name = policy.name
        self.action = policy.action
        self.direction = policy.direction
        self.apps = frozenset(app.strip().lower() for app in policy.apps)
        self.keywords = tuple(dict.fromkeys(keyword.lower() for keyword in matcher.keywords))
        self.keyword_pattern = (
            re.compile("|".join(re.escape(k) for k in sorted(matcher.keywords, key=len, reverse=True)), re.IGNORECASE)
            if matcher.keywords
            else None
        )
        self.regexes = tuple(regex.compile(pattern) for pattern in matcher.regex)
        self.detectors: tuple[Detector, ...] = tuple(
            DETECTORS[name] for name in dict.fromkeys(matcher.detectors) if name in DETECTORS
        )
        self.matches_any = "any" in matcher.detectors
        self.keyword_rule = "banned_topic" if "banned_topic" in matcher.detectors else "keyword"
        self.rule_override = policy.metadata.rule_violated
        self.replacement = policy.replacement
        self.behaviour = Behaviour.ALERT if policy.action == "redact" else Behaviour(policy.action)
        if policy.reason:
            self.reason = policy.reason
        elif policy.action == "block":
            self.reason = f"Blocked by policy '{policy.name}'"
        elif policy.action == "redact":
            self.reason = f"Sensitive data redacted by policy '{policy.name}'"
        else:
            self.reason = f"Flagged by policy '{policy.name}'"
        self.policy_name = policy.metadata.policy_name or policy.name
        self.severity = policy.metadata.severity or ("HIGH" if policy.action == "block" else "MEDIUM")

    def applies_to(self, direction: str, app: str | None) -> bool:
        if self.direction != "both" and self.direction != direction:
            return False
        return not self.apps or (app is not None and app.strip().lower() in self.apps)

    def first_match(self, batch: ScanBatch) -> str | None:
        """The rule that matched first (a detector name, 'keyword', 'regex', 'any'), or None."""
        if self.matches_any:
            return "any"
        if self.keywords and self._keyword_in(batch.lower):
            for scan in batch.texts:
                if self._keyword_in(scan.lower):
                    return self.keyword_rule
        for pattern in self.regexes:
            for scan in batch.texts:
                try:
                    if pattern.search(scan.text, timeout=REGEX_TIMEOUT_S) is not None:
                        return "regex"
                except TimeoutError:
                    raise RegexTimeout(self.name, pattern.pattern, REGEX_TIMEOUT_S) from None
        for detector in self.detectors:
            if detector.search_batch(batch):
                return detector.name
        return None

    def collect_redactions(self, batch: ScanBatch, found: dict[str, str], deadline: float) -> str | None:
        """Add every matched substring (and its token) to ``found``; the first rule that matched, or None.
        :class:`ScanBudgetExceeded` past :data:`MAX_REDACTIONS` matches or the ``deadline``."""
        first: str | None = "any" if self.matches_any else None
        default_token = self.replacement if self.replacement is not None else DEFAULT_REDACTION
        if self.keyword_pattern is not None and self._keyword_in(batch.lower):
            for scan in batch.texts:
                if self._keyword_in(scan.lower):
                    first = first or self.keyword_rule
                    for match in self.keyword_pattern.finditer(scan.text):
                        found.setdefault(match.group(0), default_token)
                        if len(found) > MAX_REDACTIONS:
                            raise ScanBudgetExceeded(f"more than {MAX_REDACTIONS} distinct sensitive matches to redact")
        for pattern in self.regexes:
            for scan in batch.texts:
                try:
                    for match in pattern.finditer(scan.text, timeout=REGEX_TIMEOUT_S):
                        if match.end() > match.start():
                            first = first or "regex"
                            found.setdefault(match.group(0), default_token)
                            if len(found) > MAX_REDACTIONS:
                                raise ScanBudgetExceeded(
                                    f"more than {MAX_REDACTIONS} distinct sensitive matches to redact")
                except TimeoutError:
                    raise RegexTimeout(self.name, pattern.pattern, REGEX_TIMEOUT_S) from None
        for detector in self.detectors:
            if not detector.may_match(batch):
                continue
            token = self.replacement if self.replacement is not None else detector.token
            for scan in batch.texts:
                for start, end in detector.spans(scan):
                    first = first or detector.name
                    found.setdefault(scan.text[start:end], token)
                    if len(found) > MAX_REDACTIONS:
                        raise ScanBudgetExceeded(f"more than {MAX_REDACTIONS} distinct sensitive matches to redact")
                _check_deadline(deadline)
        return first

    def _keyword_in(self, lower: str) -> bool:
        for keyword in self.keywords:
            if keyword in lower:
                return True
        return False

    def verdict(self, rule: str, *, allowed: bool, modified: bool, payload: str) -> Verdict:
        metadata = ThreatMetadata(
            policy_name=self.policy_name,
            rule_violated=self.rule_override or rule,
            severity=self.severity,
            reason=self.reason,
        )
        return Verdict(
            allowed=allowed,
            reason=self.reason,
            modified=modified,
            modified_payload=payload,
            metadata=metadata,
            behaviour=self.behaviour,
        )


_Scope = tuple[tuple[_CompiledPolicy, ...], tuple[_CompiledPolicy, ...], tuple[_CompiledPolicy, ...]]


class _Plan:
    """The compiled policies, grouped by what they do, with the groups cached per (direction, app)."""

    _MAX_SCOPES = 4096

    def __init__(self, policies: list[Policy]) -> None:
        self.source = policies
        self._policies = tuple(_CompiledPolicy(policy) for policy in policies if policy.enabled)
        self._scopes: dict[tuple[str, str | None], _Scope] = {}

    def _scope(self, direction: str, app: str | None) -> _Scope:
        key = (direction, app)
        scope = self._scopes.get(key)
        if scope is None:
            applicable = [policy for policy in self._policies if policy.applies_to(direction, app)]
            blockers = tuple(policy for policy in applicable if policy.action == "block")
            flaggers = tuple(
                sorted(
                    (policy for policy in applicable if policy.action in _FLAG_PRIORITY),
                    key=lambda policy: _FLAG_PRIORITY[policy.action],
                )
            )
            redactors = tuple(policy for policy in applicable if policy.action == "redact")
            scope = (blockers, flaggers, redactors)
            if len(self._scopes) >= self._MAX_SCOPES:
                self._scopes.clear()  # app names come from clients: keep the cache bounded
            self._scopes[key] = scope
        return scope

    def evaluate(self, field_text: str, direction: str, app: str | None) -> Verdict:
        try:
            return self._evaluate(field_text, direction, app)
        except ScanBudgetExceeded as exceeded:
            return unscannable_verdict(str(exceeded))

    def _evaluate(self, field_text: str, direction: str, app: str | None) -> Verdict:
        blockers, flaggers, redactors = self._scope(direction, app)
        if not (blockers or flaggers or redactors):
            return Verdict(allowed=True, modified_payload=field_text)
        deadline = time.monotonic() + SCAN_DEADLINE_S
        batch = ScanBatch(extract_texts(field_text))
        for policy in blockers:
            rule = policy.first_match(batch)
            if rule is not None:
                return policy.verdict(rule, allowed=False, modified=False, payload="")
            _check_deadline(deadline)
        flagged: tuple[_CompiledPolicy, str] | None = None
        for policy in flaggers:
            rule = policy.first_match(batch)
            if rule is not None:
                flagged = (policy, rule)
                break
            _check_deadline(deadline)
        replacements: dict[str, str] = {}
        redacted_by: tuple[_CompiledPolicy, str] | None = None
        for policy in redactors:
            rule = policy.collect_redactions(batch, replacements, deadline)
            if rule is not None and redacted_by is None:
                redacted_by = (policy, rule)
        payload = redact_in_place(field_text, replacements)
        _check_deadline(deadline)
        modified = payload != field_text
        if flagged is not None:
            policy, rule = flagged
            return policy.verdict(rule, allowed=False, modified=modified, payload=payload)
        if redacted_by is not None:
            policy, rule = redacted_by
            return policy.verdict(rule, allowed=True, modified=modified, payload=payload)
        return Verdict(allowed=True, modified_payload=field_text)


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise ScanBudgetExceeded(f"scanning took longer than the engine's {SCAN_DEADLINE_S:g} s budget per call")


def unscannable_verdict(why: str) -> Verdict:
    """A block for text the engine could not judge within its per-call budget: the reason says so."""
    reason = f"Payload could not be scanned: {why}"
    return Verdict(
        allowed=False, reason=reason, modified=False, modified_payload="", behaviour=Behaviour.BLOCK,
        metadata=ThreatMetadata(policy_name=UNSCANNABLE_POLICY, rule_violated=UNSCANNABLE_POLICY, severity="HIGH",
                                reason=reason),
    )


# --- loading -----------------------------------------------------------------------------------------------


def describe_validation_error(error: ValidationError, data: Any = None) -> str:
    """One line per problem, each naming the field (``policies[2] 'pii'.matcher.regex[0]: ...``)."""
    lines = []
    for problem in error.errors():
        lines.append(f"{_field_path(problem['loc'], data)}: {problem['msg']}")
    return "; ".join(lines)


def _field_path(loc: tuple[Any, ...], data: Any) -> str:
    path = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                path += f" {node['name']!r}"
        else:
            path += f".{part}" if path else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return path or "(top level)"


def parse_policies(text: str, source: str = "<policies>") -> PolicySet:
    """A PolicySet from YAML (or JSON) text: ``policies: [...]`` or a bare list of policies."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyLoadError(f"{source}:{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {"policies": []}
    elif isinstance(data, list):
        data = {"policies": data}
    if not isinstance(data, dict):
        raise PolicyLoadError(f"{source}: expected a mapping with 'policies' or a list of policies, got {type(data).__name__}")
    try:
        return PolicySet.model_validate(data)
    except ValidationError as exc:
        raise PolicyLoadError(f"{source}: {describe_validation_error(exc, data)}") from None


def load_policies(path: str | Path) -> PolicySet:
    """A PolicySet from a YAML file; errors name the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyLoadError(f"{path}: cannot read policies: {exc}") from None
    return parse_policies(text, str(path))


def available_presets() -> list[str]:
    """The names :func:`load_preset` accepts."""
    folder = resources.files("mock_akto") / "presets"
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


@lru_cache(maxsize=None)
def _preset_text(name: str) -> str:
    return (resources.files("mock_akto") / "presets" / f"{name}.yaml").read_text(encoding="utf-8")


def load_preset(name: str) -> PolicySet:
    """A bundled preset (``default-policies``, ``allow-all``, ``block-all``, ...), built fresh each call."""
    if not _PRESET_NAME.fullmatch(name) or name not in available_presets():
        raise PolicyLoadError(f"unknown policy preset {name!r}; available: {', '.join(available_presets())}")
    return parse_policies(_preset_text(name), f"preset {name}")


def default_policies() -> PolicySet:
    """What a fresh namespace enforces: prompt injection and jailbreak blocked, PII and secrets redacted."""
    return load_preset("default-policies")
