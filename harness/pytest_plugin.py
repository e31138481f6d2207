"""The ``akto_harness`` pytest plugin (auto-loaded through the ``pytest11`` entry point): registers fixtures.

Importing it changes nothing outside pytest's fixture registry and one report hook (a failing test that
used ``akto`` shows its namespace's journal): no environment variables, no processes.
The fixtures live in :mod:`harness.fixtures` (one module per part); every one of them can be overridden
in a ``conftest.py``, settings included (``akto_engine_url``, ``fake_llm_url``, ``egress_addon_path``:
session fixtures whose defaults read ``AKTO_HARNESS_ENGINE_URL``, ``AKTO_HARNESS_FAKE_LLM_URL`` and
``AKTO_HARNESS_EGRESS_ADDON``).

* the fake Akto engine: ``akto_engine`` (session) and ``akto`` (a fresh namespace per test);
* the fake LLM providers: ``fake_llm``, ``fake_llm_tls``, ``fake_llm_client``;
* the egress proxy (mitmdump with any addon): ``egress_proxy`` and its parts;
* the TrueFoundry gateway simulator and endpoint: ``tfy_gateway``, ``tfy``, ``tfy_endpoints``, ``tfy_token``;
* the LiteLLM proxy (any config.yaml): ``litellm_proxy_factory``;
* the scenario runner's instance pool: ``scenario_pool``;
* the engine image in Docker (opt-in; nothing about Docker is imported unless a test asks for it):
  ``akto_container_engine`` (session) and ``akto_container`` (a fresh namespace per test), setting
  ``akto_engine_image`` (``AKTO_HARNESS_ENGINE_IMAGE``).
"""

from __future__ import annotations

from harness.fixtures.containers import akto_container, akto_container_engine, akto_engine_image  # noqa: F401
from harness.fixtures.egress import (  # noqa: F401
    egress_addon_path,
    egress_akto,
    egress_llm,
    egress_namespace,
    egress_pool,
    egress_proxy,
    egress_upstream,
    mitm_confdir,
)
from typing import Any, Generator

import pytest

from harness.fixtures.engine import AKTO_NAMESPACE_KEY, akto, akto_engine, akto_engine_url, journal_section  # noqa: F401
from harness.fixtures.litellm import litellm_proxy_factory  # noqa: F401
from harness.fixtures.llm import fake_llm, fake_llm_client, fake_llm_tls, fake_llm_url  # noqa: F401
from harness.fixtures.truefoundry import tfy, tfy_endpoints, tfy_gateway, tfy_token  # noqa: F401
from harness.scenarios.pytest_support import scenario_pool, scenario_pool_session  # noqa: F401


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failing test that used ``akto`` shows its namespace's journal (bounded) in its report, so what the
    engine received is read next to the assertion, before the namespace is removed."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        namespace = item.stash.get(AKTO_NAMESPACE_KEY, None)
        if namespace is not None:
            report.sections.append(journal_section(namespace))
