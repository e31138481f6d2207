"""Every scenario in scenarios/*.yaml against the reference hook in a real LiteLLM proxy.

Set ``AKTO_HARNESS_CONNECTORS=litellm,litellm-builtin`` to add LiteLLM's built-in ``akto`` guardrail (its
known gaps are strict xfails in the scenario files).
"""

import pytest

from harness.connectors import registry
from harness.connectors.litellm import LiteLLMInstance
from harness.scenarios.model import load_scenarios
from harness.scenarios.pytest_support import SCENARIO_DIR, TEST_TIMEOUT_S, check_result, group_name, scenario_params
from harness.scenarios.runner import InstancePool, run_scenario

pytestmark = pytest.mark.litellm


@pytest.mark.parametrize("scenario, connector", scenario_params(["litellm", "litellm-builtin"], default=["litellm"]))
def test_scenario(scenario, connector: str, scenario_pool: InstancePool) -> None:
    check_result(run_scenario(scenario, registry.get(connector), scenario_pool))


AUTH_SCENARIO = load_scenarios(SCENARIO_DIR, "engine-401-fail-closed")[0]


@pytest.mark.xdist_group(group_name("litellm", AUTH_SCENARIO.connector))
@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_engine_key_never_reaches_the_proxy_log(scenario_pool: InstancePool) -> None:
    """After an auth failure (the path most tempted to log credentials) the key is nowhere in the log."""
    connector = registry.get("litellm")
    check_result(run_scenario(AUTH_SCENARIO, connector, scenario_pool))
    instance = scenario_pool.get(connector, AUTH_SCENARIO.connector)
    assert isinstance(instance, LiteLLMInstance) and instance.proxy.process is not None
    log = instance.proxy.process.log_path.read_text(errors="replace")
    assert "engine call failed (auth)" in log  # the failure was logged ...
    assert instance.proxy.extra_env["AKTO_API_KEY"] not in log  # ... without the key
