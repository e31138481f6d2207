"""The pytest example shown in the README, kept runnable so the README cannot drift."""

import httpx
import pytest


def test_a_hanging_engine_is_a_client_timeout(akto):
    akto.client.add_fault({"type": "hang"})  # this test's namespace only
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{akto.url}/api/http-proxy?guardrails=true", json={"requestPayload": "hi"}, timeout=1)
    [entry] = akto.client.wait_for(1, timeout=5)  # the journal: wait with a deadline, never sleep
    assert entry.fault == "hang"
