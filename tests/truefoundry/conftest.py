"""Fallbacks while the harness plugin is being assembled: fixtures the plugin already provides win."""

from __future__ import annotations

from typing import Iterator

import pytest

import harness.pytest_plugin as _plugin

if not hasattr(_plugin, "akto_engine"):

    @pytest.fixture(scope="session")
    def akto_engine() -> Iterator[object]:
        from mock_akto.server import EngineConfig, EngineServer

        with EngineServer(EngineConfig()) as engine:
            yield engine

if not hasattr(_plugin, "fake_llm"):
    from harness.fixtures_llm import fake_llm, fake_llm_client  # noqa: F401

if not hasattr(_plugin, "tfy"):
    from harness.fixtures_tfy import tfy, tfy_endpoints, tfy_gateway, tfy_token  # noqa: F401
