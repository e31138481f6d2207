"""Allow, block, modify, in both phases: httpx through a real mitmdump to the real provider URLs."""

from __future__ import annotations

import json

import pytest

from egress_helpers import (
    DECISION, INJECTION, OPENAI_CHAT, PII_PROMPT, ANTHROPIC_MESSAGES, block_on_response, chat, headers_sent_to_engine,
    messages,
)

pytestmark = pytest.mark.timeout(60)


def test_allow_forwards_unchanged_and_checks_both_phases(egress_proxy, egress_llm, egress_akto):
    proxy = egress_proxy(app_name="billing-agent")
    body = chat("What is the capital of France?", temperature=0.3, user="u-42")
    with proxy.client() as client:
        answer = client.post(OPENAI_CHAT, json=body, headers={"Authorization": "Bearer sk-test-do-not-leak"})
    assert answer.status_code == 200, proxy.log_tail()
    assert DECISION not in answer.headers
    assert answer.json()["choices"][0]["message"]["content"] == "Hello from fake-openai"

    received = egress_llm.last_request()
    assert received.json_body == body, "an allowed request reaches the provider byte-for-byte in content"
    assert received.headers["host"] == "api.openai.com"
    assert received.headers["authorization"] == "Bearer sk-test-do-not-leak", "the provider still gets its key"

    request_call, response_call = egress_akto.client.wait_for(2, timeout=10)
    assert (request_call.flags.guardrails, request_call.flags.ingest_data, request_call.flags.response_guardrails) == (True, True, False)
    assert (response_call.flags.response_guardrails, response_call.flags.ingest_data, response_call.flags.guardrails) == (True, True, False)
    assert json.loads(request_call.request_payload) == {"messages": body["messages"]}
    assert "Hello from fake-openai" in response_call.response_payload
    for call in (request_call, response_call):
        sent = headers_sent_to_engine(call)
        assert sent["host"] == "billing-agent", "APP_NAME is the Akto collection"
        assert "authorization" not in sent and "sk-test-do-not-leak" not in (call.request_headers or "")


def test_block_request_answers_403_and_never_calls_the_provider(egress_proxy, egress_llm, egress_akto):
    proxy = egress_proxy()
    with proxy.client() as client:
        answer = client.post(OPENAI_CHAT, json=chat(INJECTION))
    assert answer.status_code == 403
    assert answer.headers[DECISION] == "blocked"
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"error": "Prompt injection detected"}
    assert egress_llm.requests() == [], "a blocked prompt must never reach the provider"
    assert egress_akto.client.count() == 1, "no response phase for a blocked request"


def test_modify_request_keeps_model_and_every_other_field(egress_proxy, egress_llm):
    proxy = egress_proxy()
    body = chat(PII_PROMPT, temperature=0.2, max_tokens=77, tools=[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}])
    body["messages"].insert(0, {"role": "system", "content": "You are terse."})
    with proxy.client() as client:
        answer = client.post(OPENAI_CHAT, json=body)
    assert answer.status_code == 200, proxy.log_tail()
    forwarded = egress_llm.last_request().json_body
    content = forwarded["messages"][1]["content"]
    assert "john.doe@example.com" not in content and "123-45-6789" not in content
    assert "[REDACTED_EMAIL]" in content
    assert forwarded["messages"][0] == body["messages"][0]
    assert {k: v for k, v in forwarded.items() if k != "messages"} == {k: v for k, v in body.items() if k != "messages"}


def test_modify_anthropic_request_with_system_field(egress_proxy, egress_llm):
    proxy = egress_proxy()
    body = messages(PII_PROMPT, system="Reply briefly. Escalate to ops@example.com", temperature=0.1)
    with proxy.client() as client:
        answer = client.post(ANTHROPIC_MESSAGES, json=body, headers={"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"})
    assert answer.status_code == 200, proxy.log_tail()
    forwarded = egress_llm.last_request().json_body
    assert "john.doe@example.com" not in forwarded["messages"][0]["content"]
    assert "ops@example.com" not in forwarded["system"], "Anthropic's system prompt is checked too"
    assert (forwarded["model"], forwarded["max_tokens"], forwarded["temperature"]) == ("claude-3-5-sonnet-latest", 64, 0.1)


def test_modify_response_redacts_text_and_keeps_the_rest(egress_proxy, egress_llm):
    proxy = egress_proxy()
    egress_llm.set_script(reply="Sure, write to jane.roe@example.com for access.")
    with proxy.client() as client:
        answer = client.post(OPENAI_CHAT, json=chat("who do I contact?"))
    assert answer.status_code == 200, proxy.log_tail()
    data = answer.json()
    text = data["choices"][0]["message"]["content"]
    assert "jane.roe@example.com" not in text and "[REDACTED_EMAIL]" in text
    assert text.startswith("Sure, write to ")
    assert data["model"] == "gpt-4o-mini" and data["object"] == "chat.completion" and data["usage"]["total_tokens"] > 0
    assert int(answer.headers["content-length"]) == len(answer.content)


def test_block_response_replaces_it_with_403(egress_proxy, egress_llm, egress_akto):
    block_on_response(egress_akto.client, "launch codes", reason="secret output")
    proxy = egress_proxy()
    egress_llm.set_script(reply="Here are the launch codes: 0000")
    with proxy.client() as client:
        answer = client.post(OPENAI_CHAT, json=chat("tell me"))
    assert answer.status_code == 403
    assert answer.headers[DECISION] == "blocked"
    assert answer.json() == {"error": "secret output"}
    assert len(egress_llm.requests()) == 1, "the provider answered; its answer was withheld"


def test_flagged_but_not_blocking_verdict_passes(egress_proxy, egress_llm, egress_akto):
    egress_akto.client.add_policy({"name": "watch", "direction": "request", "matcher": {"keywords": ["quarterly numbers"]},
                            "action": "alert"})
    proxy = egress_proxy()
    with proxy.client() as client:
        answer = client.post(OPENAI_CHAT, json=chat("share the quarterly numbers"))
    assert answer.status_code == 200
    assert egress_akto.client.journal()[0].request_verdict.allowed is False, "the engine did flag it"
    assert len(egress_llm.requests()) == 1


def test_requests_without_a_json_body_are_not_sent_to_the_engine(egress_proxy, egress_llm, egress_akto):
    proxy = egress_proxy()
    with proxy.client() as client:
        models = client.get("https://api.openai.com/v1/models")
    assert models.status_code == 200
    assert egress_akto.client.count() == 0
