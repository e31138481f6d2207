"""One conformance run: every selected scenario on every target, judged by the target's profile.

A host that cannot start (a config LiteLLM refuses, an addon mitmdump cannot load, an unreachable
endpoint) ends the run with one :class:`TargetFailed` naming the target and the host's last log lines:
running the rest of the catalogue against nothing would only repeat the same error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import httpx

from harness.conformance.profile import Profile
from harness.connectors.base import Connector, LLMUpstream
from harness.process import StartupError
from harness.scenarios.model import Scenario
from harness.scenarios.runner import InstancePool, ScenarioResult, run_scenario
from mock_akto.client import AdminError


class TargetFailed(RuntimeError):
    """The target's host did not start or its endpoint is unreachable; the message says which and why."""


@dataclass
class Subject:
    """One connector under test and the profile it is judged by."""

    connector: Connector
    profile: Profile


Progress = Callable[[ScenarioResult], None]


def run_subject(subject: Subject, scenarios: Sequence[Scenario], engine_url: str, llm: LLMUpstream, *,
                stop_on_difference: bool = False, progress: Progress | None = None) -> list[ScenarioResult]:
    """Run ``scenarios`` on one subject (its own instance pool, closed at the end)."""
    results: list[ScenarioResult] = []
    pool = InstancePool(engine_url, llm)
    try:
        for scenario in scenarios:
            result = run_one(subject, scenario, pool)
            results.append(result)
            if progress is not None:
                progress(result)
            if stop_on_difference and not result.ok:
                break
    finally:
        pool.close()
    return results


def run_one(subject: Subject, scenario: Scenario, pool: InstancePool) -> ScenarioResult:
    connector = subject.connector
    expected = subject.profile.expectation(scenario)
    unsupported = getattr(connector, "unsupported", None)
    reason = unsupported(scenario.connector) if callable(unsupported) else None
    if reason and not expected.skip:
        expected = expected.model_copy(update={"skip": reason})
    try:
        return run_scenario(scenario, connector, pool, expected)
    except StartupError as exc:
        raise TargetFailed(f"target {connector.name!r} did not start ({scenario.name}): {exc}") from None
    except (AdminError, httpx.HTTPError, OSError) as exc:
        return ScenarioResult(scenario.name, connector.name, "error", reason=f"{type(exc).__name__}: {exc}")
