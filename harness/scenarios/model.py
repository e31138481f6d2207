"""A contract scenario as data: engine state, connector config, traffic, and the expected outcome.

A YAML file (``scenarios/*.yaml``) holds one :class:`Scenario` or a list of them. Every model forbids unknown fields, and
:func:`load_file` reports a bad one as ``file: field.path: message`` so a typo never silently turns a
check off. Expectations have a ``default`` block and optional per-connector overrides, merged field by
field (:meth:`Expect.for_connector`), because the same scenario runs against every connector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from akto_wire import FlagName
from harness.connectors import registry
from harness.connectors.base import ConnectorConfig, ConnectorMode, FailMode, Strict, Traffic
from mock_akto.policies import Policy
from mock_akto.profiles import ProfileChoice
from mock_akto.rules import FaultRule

__all__ = ["ConnectorConfig", "ConnectorMode", "FailMode", "Scenario", "ScenarioError", "Traffic", "load_file",
           "load_scenarios"]



class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the file and the field."""


# --------------------------------------------------------------------------------------------- given


class EngineState(Strict):
    """What the fake engine's namespace holds before the traffic is sent."""

    #: A bundled preset name (``default-policies``, ``block-all`` ...) or an inline policy list.
    #: None: the namespace's defaults (the ``default-policies`` preset).
    policies: str | list[Policy] | None = None
    #: Fault rules, in the format of ``POST /__admin/faults/rules`` (``{fault: {...}, match: {...}}``).
    faults: list[FaultRule] = Field(default_factory=list)
    #: The Akto contract version the engine plays (``mock_akto.profiles``): a name (``current``,
    #: ``gateway-fail-open-off`` ...) or ``{name, guardrails_client_timeout_ms}``. Default ``current``.
    akto_profile: ProfileChoice = Field(default_factory=ProfileChoice)

    @field_validator("akto_profile", mode="before")
    @classmethod
    def _profile_by_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("akto_profile")
    @classmethod
    def _known_profile(cls, choice: ProfileChoice) -> ProfileChoice:
        choice.resolve()  # UnknownProfile (a ValueError) names the known ones
        return choice

    @field_validator("faults", mode="before")
    @classmethod
    def _bare_faults(cls, value: Any) -> Any:
        """Accept a bare fault (``{type: hang}``) as shorthand for ``{fault: {type: hang}}``."""
        if not isinstance(value, list):
            return value
        return [item if not isinstance(item, dict) or "fault" in item or "sequence" in item else {"fault": item}
                for item in value]


# --------------------------------------------------------------------------------------------- then


class Text(Strict):
    """A check on a text value: any given condition must hold."""

    equals: Any = None
    contains: str | list[str] | None = None
    not_contains: str | list[str] | None = None

    def problems(self, what: str, actual: Any) -> list[str]:
        found: list[str] = []
        if self.equals is not None and actual != self.equals:
            found.append(f"{what}: expected {self.equals!r}, got {actual!r}")
        text = actual if isinstance(actual, str) else ("" if actual is None else str(actual))
        for needle in as_list(self.contains):
            if needle not in text:
                found.append(f"{what}: expected to contain {needle!r}, got {shorten(text)!r}")
        for needle in as_list(self.not_contains):
            if needle in text:
                found.append(f"{what}: must not contain {needle!r}, got {shorten(text)!r}")
        return found


def _text_check(value: Any) -> Any:
    """A plain value means ``equals``; a mapping is a :class:`Text` check."""
    return value if isinstance(value, dict) else {"equals": value}


#: In YAML either a plain value (``status_code: "403"``) or ``{contains: ..., not_contains: ...}``.
TextCheck = Annotated[Text, BeforeValidator(_text_check)]


class LLMReceived(Strict):
    """What the fake LLM upstream got (the last request of this scenario)."""

    contains: str | list[str] | None = None
    not_contains: str | list[str] | None = None
    model: str | None = None


class JournalEntryExpect(Strict):
    """One engine call that must be in the journal: flags must equal; payload checks optional."""

    flags: dict[FlagName, bool] = Field(default_factory=dict)
    request_payload: TextCheck | None = None
    request_headers: TextCheck | None = None


class JournalExpect(Strict):
    """The engine calls the scenario caused (only calls carrying this scenario's reference are counted)."""

    #: Exactly this many calls (waited for with a deadline).
    count: int | None = Field(None, ge=0)
    entries: list[JournalEntryExpect] = Field(default_factory=list)
    #: Checked on every call's ``requestHeaders`` (e.g. ``not_contains: authorization``).
    all_request_headers: TextCheck | None = None


class IngestRecordExpect(Strict):
    status_code: str | None = None
    request_payload: TextCheck | None = None
    response_payload: TextCheck | None = None
    account_id: str | None = None
    vxlan_id: str | None = None


class IngestExpect(Strict):
    """Traffic records (``ingest_data=true``) the scenario caused; each listed record must be found."""

    count: int | None = Field(None, ge=0)
    records: list[IngestRecordExpect] = Field(default_factory=list)


class LatencyExpect(Strict):
    """Wall-clock bound on the client's request (status line and full body)."""

    max_ms: float | None = Field(None, gt=0)
    #: The connector's engine timeout plus this margin (``answered within timeout + 250 ms``).
    within_timeout_plus_ms: float | None = Field(None, ge=0)
    #: Lower bound (e.g. the request really waited for the timeout).
    min_ms: float | None = Field(None, ge=0)


class Expectation(Strict):
    """The outcome for one connector. Every field is optional: None means "not checked"."""

    status: int | None = None
    #: Response JSON by dotted path (``error.message``, ``choices.0.message.content``).
    body: dict[str, TextCheck] | None = None
    headers: dict[str, TextCheck] | None = None
    #: Whether the request reached the fake LLM.
    llm_called: bool | None = None
    llm_received: LLMReceived | None = None
    journal: JournalExpect | None = None
    ingest: IngestExpect | None = None
    latency: LatencyExpect | None = None
    #: Overrides only: do not run this scenario on the connector (the reason is shown in the matrix).
    skip: str | None = None
    #: Overrides only: the connector is known to miss ``default``; the run must fail (strict xfail).
    xfail: str | None = None


class Expect(Strict):
    """``default`` plus per-connector overrides, keyed by a registered connector's expectations profile
    (:func:`harness.connectors.registry.profiles`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    default: Expectation = Field(default_factory=Expectation)

    @model_validator(mode="after")
    def _known_connectors(self) -> "Expect":
        for name, value in (self.model_extra or {}).items():
            known = registry.profiles()
            if name not in known:
                raise ValueError(f"unknown connector {name!r} (known: {', '.join(known)})")
            try:
                self.model_extra[name] = Expectation.model_validate(value)
            except ValidationError as exc:
                raise ValueError(f"{name}: {_describe(exc)}") from None
        return self

    def for_connector(self, name: str) -> Expectation:
        """``default`` with the connector's override fields laid over it."""
        override = (self.model_extra or {}).get(name)
        if override is None:
            return self.default
        merged = self.default.model_dump(exclude_unset=True) | override.model_dump(exclude_unset=True)
        return Expectation.model_validate(merged)


class Scenario(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str
    engine: EngineState = Field(default_factory=EngineState)
    connector: ConnectorConfig = Field(default_factory=ConnectorConfig)
    traffic: Traffic
    expect: Expect
    #: Marks slow scenarios (e.g. a real 5 s timeout) so pytest can select them.
    slow: bool = False
    #: Where it was loaded from (set by :func:`load_file`).
    source: str = ""


# --------------------------------------------------------------------------------------------- loading


def load_file(path: str | Path) -> list[Scenario]:
    """The scenarios in one YAML file: one mapping, or a list of mappings (YAML anchors can then share
    the common parts). A single scenario's ``name`` defaults to the file name."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    items = data if isinstance(data, list) else [data]
    scenarios = []
    for index, item in enumerate(items):
        where = f"{path}" if len(items) == 1 else f"{path}[{index}]"
        if not isinstance(item, dict):
            raise ScenarioError(f"{where}: a scenario is a mapping")
        if len(items) == 1:
            item.setdefault("name", path.stem)
        try:
            scenarios.append(Scenario.model_validate({**item, "source": str(path)}))
        except ValidationError as exc:
            raise ScenarioError(f"{where}: {_describe(exc)}") from None
    return scenarios


def load_scenarios(directory: str | Path, pattern: str = "*") -> list[Scenario]:
    """Every scenario of ``directory/*.yaml`` whose name matches the glob ``pattern``, in file order."""
    from fnmatch import fnmatchcase

    found = [scenario for path in sorted(Path(directory).glob("*.yaml")) for scenario in load_file(path)]
    names = [s.name for s in found]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ScenarioError(f"{directory}: duplicate scenario names: {', '.join(sorted(duplicates))}")
    return [s for s in found if fnmatchcase(s.name, pattern)]


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(scenario)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def as_list(value: str | list[str] | None) -> list[str]:
    """A ``contains``-style field as a list of needles."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def shorten(text: str, limit: int = 300) -> str:
    """``text`` cut for a problem message."""
    return text if len(text) <= limit else text[:limit] + "..."
