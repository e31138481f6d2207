"""Fixtures for the engine's own tests.

Most tests use the harness's ``akto`` fixture (the real engine in a child process, one namespace per
test). Tests that need another engine configuration (a token, a tiny body limit or journal) start their
own engine with ``make_engine``: the same server, in a background thread of the test process, on a real
loopback socket.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import httpx
import pytest
from pydantic import SecretStr

from mock_akto.server import EngineConfig, EngineServer


@pytest.fixture
def make_engine() -> Iterator[Callable[..., EngineServer]]:
    """Start an engine with ``EngineConfig(**fields)``; every engine started is stopped after the test."""
    started: list[EngineServer] = []

    def start(**fields: Any) -> EngineServer:
        if isinstance(fields.get("token"), str):
            fields["token"] = SecretStr(fields["token"])
        server = EngineServer(EngineConfig(**fields)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A plain HTTP client with a bounded timeout and no proxies from the environment."""
    with httpx.Client(timeout=10.0, trust_env=False, verify=False) as client:  # loopback HTTP only
        yield client
