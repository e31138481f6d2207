"""pytest fixtures: the engine image in Docker for a user's own tests (``akto_container``), opt-in.

Nothing starts unless a test asks for ``akto_container`` (or ``akto_container_engine``), and ``docker`` is
imported only then. One container per session (per xdist worker), one fresh namespace per test, the
container removed at the end of the session whatever happened (``harness.containers``).

Without a reachable Docker daemon the fixture skips the test, saying why; with
``AKTO_HARNESS_REQUIRE_DOCKER=1`` (``make test-docker`` sets it) it fails instead, so a run that is meant
to exercise Docker cannot pass by skipping.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from harness.containers import EngineContainer
    from harness.engine import EngineNamespace

REQUIRE_DOCKER_ENV = "AKTO_HARNESS_REQUIRE_DOCKER"


def skip_without_docker(reason: str | None, what: str) -> None:
    """Skip the test when ``reason`` (why Docker cannot be used) is set; under
    ``AKTO_HARNESS_REQUIRE_DOCKER=1`` fail instead."""
    if reason is None:
        return
    if os.environ.get(REQUIRE_DOCKER_ENV) == "1":
        pytest.fail(f"{REQUIRE_DOCKER_ENV}=1 but {what} cannot run: {reason}", pytrace=False)
    pytest.skip(f"{what} needs Docker: {reason}")


@pytest.fixture(scope="session")
def akto_container_engine() -> "Iterator[EngineContainer]":
    """The engine image running in Docker (built from this checkout when missing), removed at the end."""
    from harness.containers import EngineContainer, docker_unavailable_reason

    skip_without_docker(docker_unavailable_reason(), "the engine container")
    with EngineContainer() as engine:
        yield engine


@pytest.fixture
def akto_container(akto_container_engine: "EngineContainer", request: pytest.FixtureRequest) -> "Iterator[EngineNamespace]":
    """A fresh namespace of the containerised engine: ``.url`` (``/ns/<name>`` on the published port, the
    Akto base URL to give a connector), ``.client``, ``.namespace``; reset and removed after the test."""
    namespace = akto_container_engine.namespace(request.node.name)
    try:
        yield namespace
    finally:
        namespace.close()
