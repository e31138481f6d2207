"""The catalogue catches real connector bugs: every seeded bug (tests/conformance/seeded/) is caught by a
scenario whose failure message names the bug's symptom, in a real LiteLLM proxy.

Kill rate = caught / seeded; each bug is one test here, so the kill rate is 100% exactly when they all
pass. To fit CI's time, a LiteLLM proxy is not started per bug: one proxy per connector configuration the
catching scenarios need holds every seeded class (and the unseeded ``Seeded``) as its own pair of
non-default guardrail entries (``<Class>-validate`` pre_call, ``<Class>-ingest`` post_call), and each request
names the pair under test in LiteLLM's per-request ``guardrails`` field. LiteLLM then calls that class's
hooks directly, as it would in a proxy holding it alone; the control (the unseeded class passes every catching
scenario on the same proxies) shows that no other class takes part in a request.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from harness.conformance.profile import shipped
from harness.conformance.run import Subject, run_one
from harness.conformance.target import make_target
from harness.connectors.base import ClientResponse, ConnectorConfig, ConnectorInstance, Traffic
from harness.connectors.http import OPENAI_PATHS, send_openai_chat
from harness.connectors.litellm import DEFAULT_MODELS, LiteLLMInstance
from harness.payloads import Target
from harness.resources import scenario_catalogue
from harness.scenarios.model import Scenario, load_scenarios
from harness.scenarios.pytest_support import group_name
from harness.scenarios.runner import InstancePool, ScenarioResult

sys.path.insert(0, str(Path(__file__).parent / "seeded"))
from bugs import BUGS  # noqa: E402

SEEDED = Path(__file__).parent / "seeded"
MODULE = "seeded_guardrails"
CONTROL = "Seeded"
CLASSES = (CONTROL, *(bug.name for bug in BUGS))
SCENARIOS = {s.name: s for s in load_scenarios(scenario_catalogue())}
CATCHING = list(dict.fromkeys(bug.caught_by for bug in BUGS))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def group(scenario: str) -> pytest.MarkDecorator:
    """Bugs caught under one connector configuration share a worker, hence that worker's one proxy for it."""
    return pytest.mark.xdist_group(group_name("seeded", SCENARIOS[scenario].connector))


def shared_config(folder: Path) -> Path:
    """A LiteLLM config holding every seeded class as a non-default pre_call / post_call pair, the module next to it."""
    shutil.copy(SEEDED / f"{MODULE}.py", folder)
    common = {"akto_base_url": "replaced", "akto_api_key": "os.environ/AKTO_API_KEY", "default_on": False}
    entries = [{"guardrail_name": f"{cls}-{role}", "litellm_params": {"guardrail": f"{MODULE}.{cls}", "mode": mode, **common}}
               for cls in CLASSES for role, mode in (("validate", "pre_call"), ("ingest", "post_call"))]
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"model_list": [], "guardrails": entries}))
    return path


class SelectedGuardrails(ConnectorInstance):
    """The shared proxy as seen by one seeded class: every request names that class's two entries."""

    def __init__(self, shared: LiteLLMInstance, cls: str) -> None:
        self.shared = shared
        self.engine = shared.engine
        self.timeout_s = shared.timeout_s
        self.selected = {"guardrails": [f"{cls}-validate", f"{cls}-ingest"]}

    def send(self, traffic: Traffic) -> ClientResponse:
        proxy = self.shared.proxy
        return send_openai_chat(f"{proxy.url}{OPENAI_PATHS[traffic.api]}", traffic, default_model=DEFAULT_MODELS[traffic.provider],
                                headers=proxy.auth_headers, extra_body=self.selected)

    @property
    def target(self) -> Target:
        return self.shared.target

    def stop(self) -> None:
        """The shared proxy outlives one class's view (SharedProxies closes it)."""

    def log_tail(self, lines: int = 30) -> str:
        return self.shared.log_tail(lines)


class SharedProxies:
    """This worker's proxies, one per connector configuration, each holding every seeded class."""

    def __init__(self, config: Path, engine_url: str, llm: Any) -> None:
        self.connector = make_target({"name": "seeded", "litellm_config": config}).connector()
        self.pool = InstancePool(engine_url, llm)
        self.llm = llm

    def run(self, cls: str, scenario: Scenario) -> ScenarioResult:
        """``scenario`` against the seeded class ``cls``, judged by the shipped ``litellm`` profile."""
        return run_one(Subject(self.connector, shipped("litellm")), scenario, _ClassView(self, cls))  # type: ignore[arg-type]


class _ClassView:
    """What the runner needs from a pool (``get``, ``llm``): the shared proxy for the config, seen by one class."""

    def __init__(self, shared: SharedProxies, cls: str) -> None:
        self.shared, self.cls, self.llm = shared, cls, shared.llm

    def get(self, connector: Any, config: ConnectorConfig) -> ConnectorInstance:
        instance = self.shared.pool.get(self.shared.connector, config)
        assert isinstance(instance, LiteLLMInstance)
        return SelectedGuardrails(instance, self.cls)


@pytest.fixture(scope="session")
def shared_proxies(tmp_path_factory: pytest.TempPathFactory, akto_engine: Any, fake_llm: Any) -> Iterator[SharedProxies]:
    proxies = SharedProxies(shared_config(tmp_path_factory.mktemp("seeded")), akto_engine.url, fake_llm)
    yield proxies
    proxies.pool.close()


def test_every_seeded_class_is_in_the_table_and_there_are_at_least_20():
    tree = ast.parse((SEEDED / f"{MODULE}.py").read_text())
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)} - {CONTROL}
    assert classes == {bug.name for bug in BUGS}
    assert len(BUGS) >= 20
    assert set(CATCHING) <= set(SCENARIOS)


@pytest.mark.parametrize("bug", [pytest.param(bug, id=bug.name, marks=group(bug.caught_by)) for bug in BUGS])
def test_seeded_bug_is_caught(bug, shared_proxies: SharedProxies):
    result = shared_proxies.run(bug.name, SCENARIOS[bug.caught_by])
    assert result.outcome == "failed", f"{bug.name} NOT caught by {bug.caught_by}: {result.summary()}"
    assert any(bug.symptom in problem for problem in result.problems), (
        f"{bug.name} caught, but the message does not name its symptom {bug.symptom!r}: {result.problems}")


@pytest.mark.parametrize("scenario", [pytest.param(name, marks=group(name)) for name in CATCHING])
def test_the_unseeded_hook_passes_every_catching_scenario(scenario: str, shared_proxies: SharedProxies):
    """The control: ``Seeded`` with no seam overridden passes each catching scenario on the same proxies, so a
    catch is the bug's, and no other class of the proxy acts on a request that did not name it."""
    result = shared_proxies.run(CONTROL, SCENARIOS[scenario])
    assert result.outcome == "passed", result.summary() + "\n" + result.log_tail
