"""One compose stack per test session, shared by the stack test and the scenario smoke (starting it costs
tens of seconds; building the images, minutes when cold)."""

from __future__ import annotations

import time
from typing import Iterator

import httpx
import pytest
from compose_stack import (
    BUILD_TIMEOUT_S,
    DOWN_TIMEOUT_S,
    HEALTH_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    UP_TIMEOUT_S,
    ComposeStack,
    docker_unavailable_reason,
    timings_line,
)

from harness.fixtures.containers import skip_without_docker
from mock_akto.client import MockAktoClient

@pytest.fixture(scope="session")
def stack() -> Iterator[ComposeStack]:
    skip_without_docker(docker_unavailable_reason(), "the compose stack")
    stack = ComposeStack.for_test()
    try:
        timings = {"build_s": stack.build(timeout=BUILD_TIMEOUT_S)}
        started = time.monotonic()
        stack.up(timeout=UP_TIMEOUT_S)
        stack.wait_healthy(timeout=HEALTH_TIMEOUT_S)
        timings["up_to_healthy_s"] = time.monotonic() - started
        print(timings_line(timings))
        yield stack
    finally:
        stack.down(timeout=DOWN_TIMEOUT_S)


@pytest.fixture(scope="session")
def engine(stack: ComposeStack) -> Iterator[MockAktoClient]:
    """The containerised engine's default namespace, where every connector of the stack lands."""
    # The engine's token also guards its admin API (no separate admin token in the stack).
    with MockAktoClient(stack.url("mock-akto"), timeout=REQUEST_TIMEOUT_S, admin_token=stack.akto_api_key) as client:
        yield client


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
        yield client
