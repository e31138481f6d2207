"""pytest fixtures for the fake Akto engine (registered as the ``akto_harness`` plugin).

One engine per test session (per xdist worker), one fresh namespace per test, like pytest-httpserver's
session server with a function-scoped fixture that cleans up. Both are overridable fixtures:

* ``akto_engine`` (session): the running engine (``.url``, ``.client()``). Set ``AKTO_HARNESS_ENGINE_URL``
  to use an engine you started yourself, or override the fixture in a ``conftest.py``.
* ``akto`` (function): a :class:`harness.engine.EngineNamespace` with ``.url`` (the namespace's own
  listener: the Akto base URL to give a connector), ``.namespace``, ``.client`` (a MockAktoClient bound
  to it) and ``.engine_url``. The namespace is reset and removed after the test.
* ``akto_container`` (function, opt-in, ``harness/fixtures_docker.py``): the same on the engine image in
  Docker, one container per session; nothing about Docker is imported unless a test asks for it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from harness.engine import EngineNamespace, EngineProcess, ExternalEngine

ENGINE_URL_ENV = "AKTO_HARNESS_ENGINE_URL"

# Tests talk only to loopback: importing litellm in a test process (the in-process hook tests do) would
# otherwise download its model price map from the internet at import time.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def akto_engine() -> "Iterator[EngineProcess | ExternalEngine]":
    """The engine every test of this worker shares (started once, stopped at the end)."""
    from harness.engine import EngineProcess, ExternalEngine

    external = os.environ.get(ENGINE_URL_ENV)
    if external:
        yield ExternalEngine(external.rstrip("/"))
        return
    with EngineProcess() as engine:
        yield engine


@pytest.fixture
def akto(akto_engine: "EngineProcess | ExternalEngine", request: pytest.FixtureRequest) -> "Iterator[EngineNamespace]":
    """A fresh namespace with its own loopback listener, removed after the test."""
    from harness.engine import EngineNamespace

    assert akto_engine.url is not None
    namespace = EngineNamespace.open(akto_engine.url, request.node.name)
    try:
        yield namespace
    finally:
        namespace.close()


# Fixtures defined in their own modules, registered here so every test (and users' suites) get them:
# fake LLM providers, the egress proxy (mitmdump with any addon), the TrueFoundry gateway simulator and
# endpoint, the LiteLLM proxy factory (any config.yaml), and the scenario runner's instance pool.
from harness.fixtures_llm import fake_llm, fake_llm_client, fake_llm_tls  # noqa: E402,F401
from harness.fixtures_mitm import (  # noqa: E402,F401
    egress_addon_path,
    egress_akto,
    egress_llm,
    egress_namespace,
    egress_pool,
    egress_proxy,
    egress_upstream,
    mitm_confdir,
)
from harness.fixtures_tfy import tfy, tfy_endpoints, tfy_gateway, tfy_token  # noqa: E402,F401
from harness.litellm_proxy import litellm_proxy_factory  # noqa: E402,F401
from harness.scenarios.pytest_support import scenario_pool  # noqa: E402,F401
from harness.fixtures_docker import akto_container, akto_container_engine  # noqa: E402,F401
