"""Every engine fault under both fail modes: fail_open passes, fail_closed answers 503 JSON, within the deadline."""

from __future__ import annotations

import time

import anthropic
import pytest

from egress_helpers import DECISION, OPENAI_CHAT, chat, long_reply, use_proxy_env

pytestmark = pytest.mark.timeout(60)

TIMEOUT_MS = 1000
UNAVAILABLE = {"error": "Akto guardrail service unreachable"}

#: (id, fault, exceeds the deadline)
FAULTS = [
    ("down", {"type": "down"}, False),
    ("hang", {"type": "hang", "max_ms": 20_000}, True),
    ("slow", {"type": "fixed_delay", "ms": 3000}, True),
    ("dribble", {"type": "chunked_dribble", "chunks": 20, "total_ms": 4000}, True),
    ("500", {"type": "status", "status": 500, "body": '{"error":"boom"}'}, False),
    ("503", {"type": "status", "status": 503, "body": "upstream unavailable", "content_type": "text/plain"}, False),
    ("reset", {"type": "connection_reset_by_peer"}, False),
    ("empty", {"type": "empty_response"}, False),
    ("garbage", {"type": "random_data_then_close", "bytes": 256, "seed": 7}, False),
    ("truncated", {"type": "truncated_body", "fraction": 0.5}, False),
    ("not-json", {"type": "non_json_body"}, False),
    ("html", {"type": "html_body"}, False),
    ("wrong-content-type", {"type": "wrong_content_type"}, False),
    ("schema-missing-allowed", {"type": "schema_break", "kind": "missing_allowed"}, False),
    ("schema-no-result", {"type": "schema_break", "kind": "no_guardrails_result"}, False),
]
BUDGET_S = TIMEOUT_MS / 1000


@pytest.mark.parametrize("fault", [f[1] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_fail_open_passes_the_traffic(egress_proxy, egress_llm, egress_akto, fault):
    proxy = egress_proxy(fail_mode="fail_open", timeout_ms=TIMEOUT_MS)
    egress_akto.client.add_fault(fault)
    started = time.monotonic()
    with proxy.client() as client:
        answer = client.post(OPENAI_CHAT, json=chat())
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, proxy.log_tail()
    assert answer.json()["choices"][0]["message"]["content"] == "Hello from fake-openai"
    assert len(egress_llm.requests()) == 1
    # Two engine calls (request and response phase), each bounded by the total deadline.
    assert elapsed < 2 * BUDGET_S + 2.5, f"took {elapsed:.2f}s: the timeout must be a total deadline"


@pytest.mark.parametrize("fault,slow", [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_fail_closed_answers_503_json_and_never_calls_the_provider(egress_proxy, egress_llm, egress_akto, fault, slow):
    proxy = egress_proxy(fail_mode="fail_closed", timeout_ms=TIMEOUT_MS)
    egress_akto.client.add_fault(fault)
    started = time.monotonic()
    with proxy.client() as client:
        answer = client.post(OPENAI_CHAT, json=chat())
    elapsed = time.monotonic() - started
    assert answer.status_code == 503, proxy.log_tail()
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers[DECISION] == "unavailable"
    assert answer.json() == UNAVAILABLE
    assert egress_llm.requests() == []
    assert elapsed < BUDGET_S + 2.0, f"took {elapsed:.2f}s for one call with a {BUDGET_S}s deadline"
    if slow:
        assert elapsed >= BUDGET_S * 0.9, "a slow engine is waited for up to the deadline"


@pytest.mark.parametrize("fail_mode,status", [("fail_open", 200), ("fail_closed", 503)])
def test_response_phase_failure_follows_the_fail_mode(egress_proxy, egress_llm, egress_akto, fail_mode, status):
    proxy = egress_proxy(fail_mode=fail_mode, timeout_ms=TIMEOUT_MS)
    egress_akto.client.add_fault({"type": "status", "status": 502}, match={"direction": "response"})
    with proxy.client() as client:
        answer = client.post(OPENAI_CHAT, json=chat())
    assert answer.status_code == status
    assert len(egress_llm.requests()) == 1, "the request phase passed: the provider was called"


@pytest.mark.parametrize("fail_mode", ["fail_open", "fail_closed"])
def test_engine_refusing_credentials_is_never_failed_open(egress_proxy, egress_llm, egress_akto, fail_mode):
    proxy = egress_proxy(fail_mode=fail_mode, timeout_ms=TIMEOUT_MS)
    egress_akto.client.add_fault({"type": "status", "status": 401, "body": "<html>401</html>", "content_type": "text/html"})
    with proxy.client() as client:
        answer = client.post(OPENAI_CHAT, json=chat())
    assert answer.status_code == 503
    assert answer.json() == {"error": "Akto guardrail rejected the connector's credentials"}
    assert egress_llm.requests() == []


@pytest.mark.parametrize("fail_mode", ["fail_open", "fail_closed"])
def test_sync_stream_check_failure_follows_the_fail_mode(egress_proxy, egress_llm, egress_akto, monkeypatch, fail_mode):
    reply = long_reply("middle", words=10)
    egress_llm.set_script(reply=reply, stream_chunk_chars=10)
    egress_akto.client.add_fault({"type": "status", "status": 500}, match={"direction": "response"})
    use_proxy_env(monkeypatch, egress_proxy(fail_mode=fail_mode, stream_mode="sync", batch_chars=30, timeout_ms=TIMEOUT_MS))
    client = anthropic.Anthropic(api_key="sk-ant-test", max_retries=0, timeout=20)
    stream = client.messages.create(model="claude-3-5-sonnet-latest", max_tokens=64, stream=True,
                                    messages=[{"role": "user", "content": "hi"}])
    pieces: list[str] = []
    if fail_mode == "fail_open":
        pieces = [e.delta.text for e in stream if e.type == "content_block_delta"]
        assert "".join(pieces) == reply
    else:
        with pytest.raises(anthropic.APIStatusError) as raised:
            pieces = [e.delta.text for e in stream if e.type == "content_block_delta"]
        assert raised.value.body["error"] == {"type": "guardrails_unavailable", "message": UNAVAILABLE["error"]}
