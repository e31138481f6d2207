"""Every scenario in scenarios/*.yaml against the egress addon in a real mitmdump.

``AKTO_HARNESS_EGRESS_ADDON=/path/to/akto_guardrails.py`` runs them against another addon file (Akto's
published one, or yours); the expectations under ``expect: egress`` are those of our reference addon.
"""

import pytest

from harness.connectors import registry
from harness.scenarios.pytest_support import check_result, scenario_params
from harness.scenarios.runner import InstancePool, run_scenario

pytestmark = pytest.mark.mitm


@pytest.mark.parametrize("scenario, connector", scenario_params(["egress"]))
def test_scenario(scenario, connector: str, scenario_pool: InstancePool) -> None:
    check_result(run_scenario(scenario, registry.get(connector), scenario_pool))
