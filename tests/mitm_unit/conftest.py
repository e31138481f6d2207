"""Addon unit tests, run in the mitmproxy environment: ``.venv-mitm/bin/python -m pytest tests/mitm_unit``.

Only what .venv-mitm has is used here (mitmproxy, pytest, the project core and the fake engine); no
pytest-asyncio: async hooks run under ``asyncio.run``. The engine is real (a child process on loopback).
"""

from __future__ import annotations

from typing import Iterator

import pytest

from harness.engine import EngineNamespace, EngineProcess


@pytest.fixture(scope="session")
def unit_engine() -> Iterator[EngineProcess]:
    with EngineProcess() as engine:
        yield engine


@pytest.fixture
def engine_ns(unit_engine: EngineProcess, request: pytest.FixtureRequest) -> Iterator[EngineNamespace]:
    assert unit_engine.url is not None
    namespace = EngineNamespace.open(unit_engine.url, request.node.name)
    yield namespace
    namespace.close()
