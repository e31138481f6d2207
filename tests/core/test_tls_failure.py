"""An engine whose TLS certificate does not verify is never failed open (issue 11.9), in each real host.

The "engine" here is the fake LLM's TLS listener: its certificate comes from a test CA the connectors do
not trust, so the handshake fails verification, as it would with someone between connector and engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness.connectors import registry
from harness.connectors.base import ConnectorConfig

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CONNECTORS = [
    pytest.param("litellm", marks=pytest.mark.litellm),
    pytest.param("egress", marks=pytest.mark.mitm),
    pytest.param("truefoundry"),
]


@dataclass
class UntrustedEngine:
    url: str


@pytest.mark.parametrize("name", CONNECTORS)
def test_untrusted_engine_certificate_answers_503_under_fail_open(name: str, fake_llm_tls: Any, fake_llm: Any) -> None:
    engine = UntrustedEngine(fake_llm_tls.url.rstrip("/"))
    assert engine.url.startswith("https://")
    instance = registry.get(name).start(ConnectorConfig(fail_mode="fail_open", timeout_s=2), engine, fake_llm)
    try:
        target = instance.target
        answer = httpx.post(target.url, content=target.body("hello over a tampered link"),
                            headers=dict(target.headers), timeout=30, trust_env=False)
        assert answer.status_code == registry.get(name).answers.unreachable, answer.text
        assert "TLS certificate could not be verified" in answer.text
        assert "failed (tls)" in instance.log_tail(200)
    finally:
        instance.stop()
