"""Contract scenarios on the ``truefoundry`` connector (client -> gateway simulator -> reference endpoint ->
engine, plus the fake LLM), run by the shared scenario runner: every scenario in scenarios/*.yaml (with
its ``truefoundry`` expectations), and the TrueFoundry matrix (scenarios/truefoundry/matrix.yaml). The
matrix and the tables in docs/truefoundry.md are rendered from harness/fakes/truefoundry_gateway/matrix.py; the first tests
keep them in step.
"""

from __future__ import annotations

import pytest

from harness.connectors import registry
from harness.fakes.truefoundry_gateway import matrix
from harness.scenarios.model import load_file
from harness.scenarios.pytest_support import check_result, scenario_params
from harness.scenarios.runner import InstancePool, run_scenario

SCENARIOS = load_file(matrix.SCENARIO_FILE)


def test_scenario_file_is_rendered_from_the_table() -> None:
    assert matrix.SCENARIO_FILE.read_text() == matrix.render_yaml(), "run: python -m harness.fakes.truefoundry_gateway.matrix"


def test_doc_tables_are_rendered_from_the_table() -> None:
    text = matrix.DOC_FILE.read_text()
    assert text == matrix.render_doc(text), "run: python -m harness.fakes.truefoundry_gateway.matrix"
    assert "only blocks under **Enforce**" in text


def test_the_matrix_is_complete() -> None:
    cells = {(r.case, r.hook, r.sync) for r in matrix.ROWS}
    assert len(cells) == len(matrix.ROWS) == 5 * 2 * 2
    assert len(SCENARIOS) == len(matrix.ROWS) * 3 * 2 + len(matrix.VARIANTS) * 3
    # What users are rarely told: Akto's block (HTTP 400) is enforced only by the Enforce strategy.
    (blocked,) = [r for r in matrix.ROWS if (r.case, r.hook, r.sync) == ("blocked", "input", True)]
    assert (blocked.enforce, blocked.ebioe, blocked.audit) == ("BLOCK", "allow", "allow")


@pytest.mark.parametrize("scenario, connector", scenario_params(["truefoundry"], directory=matrix.SCENARIO_FILE.parent))
def test_truefoundry_scenario(scenario, connector: str, scenario_pool: InstancePool) -> None:
    check_result(run_scenario(scenario, registry.get(connector), scenario_pool))


@pytest.mark.parametrize("scenario, connector", scenario_params(["truefoundry"]))
def test_contract_scenario(scenario, connector: str, scenario_pool: InstancePool) -> None:
    check_result(run_scenario(scenario, registry.get(connector), scenario_pool))
