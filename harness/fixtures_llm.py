"""pytest fixtures for the fake LLM provider: one server per session (per xdist worker), clean per test.

REGISTRATION: these are plain fixtures in a plain module. The harness plugin (harness/pytest_plugin.py)
must register them with ``from harness.fixtures_llm import *  # noqa: F401,F403`` (``__all__`` below
lists them); a test module can also import them by name.

Where the fake runs is overridable: set ``AKTO_HARNESS_FAKE_LLM_URL`` to use an already running fake
(e.g. one in a container) instead of starting a child process.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from harness.fake_llm import FakeLLMClient, FakeLLMServer

__all__ = ["fake_llm", "fake_llm_client", "fake_llm_tls", "ExternalFakeLLM"]

FAKE_LLM_URL_ENV = "AKTO_HARNESS_FAKE_LLM_URL"


class ExternalFakeLLM:
    """A fake LLM someone else started: the same ``url`` / ``port`` / ``client`` surface as the server."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        self.client = FakeLLMClient(self.url)

    def stop(self) -> None:
        self.client.close()


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLMServer | ExternalFakeLLM]:
    """The session's fake LLM (plain HTTP). OpenAI clients use ``fake_llm.url + "/v1"``."""
    external = os.environ.get(FAKE_LLM_URL_ENV)
    if external:
        handle = ExternalFakeLLM(external)
        yield handle
        handle.stop()
        return
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(scope="session")
def fake_llm_tls() -> Iterator[FakeLLMServer]:
    """A second session fake, over HTTPS with a throwaway CA (``fake_llm_tls.ca_cert`` to trust)."""
    with FakeLLMServer(tls=True) as server:
        yield server


@pytest.fixture
def fake_llm_client(fake_llm: FakeLLMServer | ExternalFakeLLM) -> Iterator[FakeLLMClient]:
    """The session fake with the default script and an empty recording, reset again after the test."""
    fake_llm.client.reset()
    yield fake_llm.client
    fake_llm.client.reset()
