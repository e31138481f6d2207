"""A slow engine never stalls unrelated flows, and AI flows waiting on it wait side by side, not in turn."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from egress_helpers import OPENAI_CHAT, chat
from harness.process import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.slow]

ENGINE_DELAY_MS = 2500


def test_other_hosts_are_served_while_an_ai_flow_waits_on_a_slow_engine(egress_proxy, egress_akto, fake_llm, fake_llm_client):
    egress_akto.client.add_fault({"type": "fixed_delay", "ms": ENGINE_DELAY_MS}, match={"direction": "request"})
    proxy = egress_proxy(timeout_ms=10_000)
    with proxy.client() as client, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(client.post, OPENAI_CHAT, json=chat())
        # The AI flow is inside the engine call now (its journal entry is pending).
        wait_until(lambda: egress_akto.client.count() >= 1, timeout=10, what="the AI flow reached the engine")
        started = time.monotonic()
        other = client.get(f"{fake_llm.url}/v1/models")
        other_took = time.monotonic() - started
        assert other.status_code == 200
        assert not slow.done(), "the AI flow is still waiting for its verdict"
        assert other_took < ENGINE_DELAY_MS / 1000 / 2, f"an unrelated flow took {other_took:.2f}s"
        assert slow.result(timeout=20).status_code == 200


def test_ai_flows_wait_on_the_engine_concurrently(egress_proxy, egress_akto, egress_llm):
    flows, delay_s = 6, 1.0
    egress_akto.client.add_fault({"type": "fixed_delay", "ms": int(delay_s * 1000)}, match={"direction": "request"})
    proxy = egress_proxy(timeout_ms=10_000)
    with proxy.client() as client, ThreadPoolExecutor(flows) as pool:
        started = time.monotonic()
        answers = list(pool.map(lambda i: client.post(OPENAI_CHAT, json=chat(f"question {i}")), range(flows)))
        took = time.monotonic() - started
    assert [a.status_code for a in answers] == [200] * flows
    assert took < flows * delay_s * 0.6, f"{flows} flows with a {delay_s}s engine took {took:.2f}s: serialised?"
