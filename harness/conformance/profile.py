"""Profiles: what a connector is expected to do on each scenario.

A profile starts from a shipped one (the ``expect:`` keys of the catalogue: ``litellm``,
``litellm-builtin``, ``egress``, ``truefoundry``) and a user profile file lays its own marks over it::

    base: litellm                    # the shipped expectations this connector is judged by
    expected_failures:               # strict: the scenario must fail, and a pass is reported as a change
      - {scenario: "hang-*", reason: "our hook has no timeout yet (TICKET-12)"}
    not_applicable:                  # not run at all
      - {scenario: "stream-*", reason: "we never stream"}

Every mark needs a reason (the HTML matrix shows it); a mark that matches no scenario is an error, so a
renamed scenario cannot silently drop an expectation.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Iterable

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.connectors import registry
from harness.scenarios.model import Expectation, Scenario, ScenarioError


class Mark(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A scenario name or a glob on names.
    scenario: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The shipped expectations profile the catalogue's ``expect:`` overrides are taken from.
    base: str
    expected_failures: list[Mark] = Field(default_factory=list)
    not_applicable: list[Mark] = Field(default_factory=list)
    #: Where it came from, for messages ("shipped" for a shipped profile).
    source: str = "shipped"

    def expectation(self, scenario: Scenario) -> Expectation:
        """The catalogue's expectation for ``base``, with this profile's marks laid over it."""
        expected = scenario.expect.for_connector(self.base)
        for mark in self.not_applicable:
            if fnmatchcase(scenario.name, mark.scenario):
                return expected.model_copy(update={"skip": mark.reason})
        for mark in self.expected_failures:
            if fnmatchcase(scenario.name, mark.scenario):
                return expected.model_copy(update={"xfail": mark.reason, "skip": None})
        return expected

    def check_marks(self, scenarios: Iterable[Scenario]) -> None:
        """Every mark must match at least one scenario of the catalogue (ScenarioError otherwise)."""
        names = [s.name for s in scenarios]
        for mark in [*self.expected_failures, *self.not_applicable]:
            if not any(fnmatchcase(name, mark.scenario) for name in names):
                raise ScenarioError(f"{self.source}: {mark.scenario!r} matches no scenario of the catalogue")


def shipped(name: str) -> Profile:
    """A shipped profile: one of the catalogue's ``expect:`` keys, with no marks of its own."""
    known = registry.profiles()
    if name not in known:
        raise ScenarioError(f"unknown profile {name!r} (shipped: {', '.join(known)}; or give a profile file)")
    return Profile(base=name)


def load_profile(spec: str, default_base: str) -> Profile:
    """``spec`` is a shipped profile name or a YAML profile file (whose ``base`` defaults to ``default_base``)."""
    path = Path(spec)
    if not path.is_file():
        if spec.endswith((".yaml", ".yml")):
            raise ScenarioError(f"profile file not found: {path}")
        return shipped(spec)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a profile is a mapping (base, expected_failures, not_applicable)")
    data.setdefault("base", default_base)
    try:
        profile = Profile.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"{path}: {problems}") from None
    shipped(profile.base)  # an unknown base is an error naming the shipped ones
    return profile
