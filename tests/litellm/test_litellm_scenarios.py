"""Every scenario in scenarios/*.yaml against the reference hook in a real LiteLLM proxy.

Set ``AKTO_HARNESS_CONNECTORS=litellm,litellm-builtin`` to add LiteLLM's built-in ``akto`` guardrail (its
known gaps are strict xfails in the scenario files).
"""

import pytest

from harness.scenarios.connectors import adapter
from harness.scenarios.pytest_support import check_result, scenario_params
from harness.scenarios.runner import InstancePool, run_scenario

pytestmark = pytest.mark.litellm


@pytest.mark.parametrize("scenario, connector", scenario_params(["litellm", "litellm-builtin"], default=["litellm"]))
def test_scenario(scenario, connector: str, scenario_pool: InstancePool) -> None:
    check_result(run_scenario(scenario, adapter(connector), scenario_pool))
