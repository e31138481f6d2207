"""Running the scenarios as pytest tests, for any connector (a ``tests/<area>/test_scenarios.py`` is short).

    from harness.scenarios.pytest_support import scenario_params, check_result, scenario_pool  # noqa: F401

    @pytest.mark.parametrize("scenario, connector", scenario_params(["litellm", "litellm-builtin"], ["litellm"]))
    def test_scenario(scenario, connector, scenario_pool):
        check_result(run_scenario(scenario, registry.get(connector), scenario_pool))

Every test of one connector instance (same connector, same config) carries one ``xdist_group`` mark, so
with ``--dist loadgroup`` they run on one worker, one after the other, against the instance that worker
started once. ``AKTO_HARNESS_CONNECTORS`` (comma-separated) widens or narrows the connectors collected.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

from harness.connectors import registry
from harness.resources import scenario_catalogue
from harness.scenarios.model import ConnectorConfig, Scenario, load_scenarios
from harness.scenarios.runner import InstancePool, ScenarioResult

SCENARIO_DIR = scenario_catalogue()
CONNECTORS_ENV = "AKTO_HARNESS_CONNECTORS"
#: The first test of a group also starts the connector's host (a LiteLLM proxy: up to ~90 s when busy).
TEST_TIMEOUT_S = 180


def selected_connectors(available: Sequence[str], default: Sequence[str] | None = None) -> list[str]:
    """``default`` (or all of ``available``), or those of ``available`` named in ``AKTO_HARNESS_CONNECTORS``."""
    configured = os.environ.get(CONNECTORS_ENV)
    if not configured:
        return list(default if default is not None else available)
    wanted = [name.strip() for name in configured.split(",") if name.strip()]
    return [name for name in wanted if name in available]


def group_name(connector: str, config: ConnectorConfig) -> str:
    digest = hashlib.sha1(config.model_dump_json().encode()).hexdigest()[:8]
    return f"{connector}-{config.mode}-{config.fail_mode}-{config.timeout_s or 'dflt'}-{digest}"


def scenario_params(
    available: Sequence[str], default: Sequence[str] | None = None, directory: Path = SCENARIO_DIR
) -> list[Any]:
    """One ``pytest.param(scenario, connector)`` per pair, with ids, xdist groups and slow marks."""
    params = []
    for connector in selected_connectors(available, default):
        for scenario in load_scenarios(directory):
            marks = [pytest.mark.xdist_group(group_name(connector, scenario.connector)),
                     pytest.mark.timeout(TEST_TIMEOUT_S)]
            if scenario.slow:
                marks.append(pytest.mark.slow)
            params.append(pytest.param(scenario, connector, id=f"{connector}:{scenario.name}", marks=marks))
    return params


def check_result(result: ScenarioResult) -> None:
    """Turn a result into the pytest outcome: skip, strict xfail, or a failure listing every problem."""
    if result.outcome == "skipped":
        pytest.skip(result.reason)
    if result.outcome == "xfailed":
        pytest.xfail(f"{result.reason}: " + "; ".join(result.problems))
    if result.outcome == "xpassed":
        pytest.fail(f"{result.scenario} on {result.connector} was expected to fail ({result.reason}) but passed")
    if result.outcome != "passed":
        pytest.fail(result.summary() + ("\n--- host log ---\n" + result.log_tail if result.log_tail else ""))


@pytest.fixture(scope="session")
def scenario_pool_session(akto_engine: Any, fake_llm: Any) -> Iterator[InstancePool]:
    """This worker's running connector instances (started on first use, stopped at the end)."""
    pool = InstancePool(akto_engine.url, fake_llm)
    yield pool
    pool.close()


@pytest.fixture
def scenario_pool(request: pytest.FixtureRequest, scenario_pool_session: InstancePool) -> Iterator[InstancePool]:
    """The worker's pool; after each test, the hosts of the scenario tests queued next on this worker start in
    the background (:func:`prestart_queued`), while this group's remaining scenarios run."""
    yield scenario_pool_session
    prestart_queued(request.session, scenario_pool_session)


def queued_items(session: pytest.Session) -> list[pytest.Item]:
    """The tests xdist has sent this worker and it has not run yet (with ``--dist loadgroup``, the next group
    or two); empty outside xdist. Reads pytest-xdist's worker state (``WorkerInteractor.nextitem_index`` and
    ``.torun``, 3.x): if that changes, this returns nothing and hosts simply start when first needed."""
    for plugin in session.config.pluginmanager.get_plugins():
        queue = getattr(plugin, "torun", None) if type(plugin).__name__ == "WorkerInteractor" else None
        if queue is None or not hasattr(queue, "lock"):
            continue
        with queue.lock() as pending:
            indices = [getattr(plugin, "nextitem_index", None), *pending]
        return [session.items[index] for index in indices if isinstance(index, int) and index < len(session.items)]
    return []


def prestart_queued(session: pytest.Session, pool: InstancePool) -> None:
    """Start in the background the instances the queued scenario tests will need (skipped ones excepted)."""
    for item in queued_items(session):
        params = getattr(getattr(item, "callspec", None), "params", {})
        scenario, name = params.get("scenario"), params.get("connector")
        if not isinstance(scenario, Scenario) or not isinstance(name, str):
            continue
        connector = registry.get(name)
        if scenario.expect.for_connector(connector.profile).skip or connector.available():
            continue
        pool.prestart(connector, scenario.connector)
