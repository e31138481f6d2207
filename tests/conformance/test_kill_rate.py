"""The catalogue catches real connector bugs: every seeded bug (tests/conformance/seeded/) is caught by a
scenario whose failure message names the bug's symptom, in a real LiteLLM proxy.

Kill rate = caught / seeded; each bug is one test here, so the kill rate is 100% exactly when they all
pass. A seeded connector stops at its first catching scenario (run first), which keeps this within CI time.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from harness.conformance.profile import shipped
from harness.conformance.run import Subject, run_subject
from harness.conformance.target import make_target
from harness.resources import scenario_catalogue
from harness.scenarios.model import load_scenarios

sys.path.insert(0, str(Path(__file__).parent / "seeded"))
from bugs import BUGS  # noqa: E402

SEEDED = Path(__file__).parent / "seeded"
MODULE = "seeded_guardrails"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def seeded_target(tmp_path: Path, cls: str):
    """A conformance target: a LiteLLM config naming ``seeded_guardrails.<cls>``, the module next to it."""
    shutil.copy(SEEDED / f"{MODULE}.py", tmp_path)
    config = {"model_list": [], "guardrails": [
        {"guardrail_name": "akto-validate", "litellm_params": {"guardrail": f"{MODULE}.{cls}", "mode": "pre_call",
                                                               "akto_base_url": "replaced", "akto_api_key": "os.environ/AKTO_API_KEY", "default_on": True}},
        {"guardrail_name": "akto-ingest", "litellm_params": {"guardrail": f"{MODULE}.{cls}", "mode": "post_call",
                                                             "akto_base_url": "replaced", "akto_api_key": "os.environ/AKTO_API_KEY", "default_on": True}},
    ]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return make_target({"name": f"seeded-{cls}", "litellm_config": path})


def test_every_seeded_class_is_in_the_table_and_there_are_at_least_20():
    tree = ast.parse((SEEDED / f"{MODULE}.py").read_text())
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)} - {"Seeded"}
    assert classes == {bug.name for bug in BUGS}
    assert len(BUGS) >= 20
    names = {s.name for s in load_scenarios(scenario_catalogue())}
    assert {bug.caught_by for bug in BUGS} <= names


@pytest.mark.parametrize("bug", BUGS, ids=[bug.name for bug in BUGS])
def test_seeded_bug_is_caught(bug, tmp_path, akto_engine, fake_llm):
    scenarios = {s.name: s for s in load_scenarios(scenario_catalogue())}
    subject = Subject(seeded_target(tmp_path, bug.name).connector(), shipped("litellm"))
    results = run_subject(subject, [scenarios[bug.caught_by]], akto_engine.url, fake_llm, stop_on_difference=True)
    [result] = results
    assert result.outcome == "failed", f"{bug.name} NOT caught by {bug.caught_by}: {result.summary()}"
    assert any(bug.symptom in problem for problem in result.problems), (
        f"{bug.name} caught, but the message does not name its symptom {bug.symptom!r}: {result.problems}")


def test_the_unseeded_hook_passes_every_catching_scenario(tmp_path, akto_engine, fake_llm):
    """The control: ``Seeded`` with no seam overridden passes the catching scenarios, so a catch is the bug's."""
    scenarios = {s.name: s for s in load_scenarios(scenario_catalogue())}
    catching = [scenarios[name] for name in dict.fromkeys(bug.caught_by for bug in BUGS)]
    subject = Subject(seeded_target(tmp_path, "Seeded").connector(), shipped("litellm"))
    results = run_subject(subject, catching, akto_engine.url, fake_llm)
    assert [r.summary() for r in results if r.outcome != "passed"] == []
