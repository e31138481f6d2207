"""Only AI provider hosts are inspected: other HTTP passes untouched, other HTTPS is tunnelled, not intercepted."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from egress_helpers import DECISION, INJECTION, OPENAI_CHAT, chat, messages, use_proxy_env

pytestmark = pytest.mark.timeout(60)


def test_plain_http_to_another_host_passes_untouched(egress_proxy, egress_akto, fake_llm, fake_llm_client):
    proxy = egress_proxy()
    with proxy.client() as client:
        answer = client.post(f"{fake_llm.url}/v1/chat/completions", json=chat(INJECTION))
    assert answer.status_code == 200, "not an AI provider host: no guardrail applies"
    assert DECISION not in answer.headers
    assert fake_llm_client.last_request().json_body == chat(INJECTION)
    assert f"{fake_llm.url}/v1/chat/completions" in proxy.log_tail(400), "the request did go through the proxy"
    assert egress_akto.client.count() == 0, "nothing about other hosts is sent to Akto"


def test_https_to_another_host_is_tunnelled_not_intercepted(egress_proxy, egress_akto, egress_upstream, egress_llm):
    proxy = egress_proxy()
    other_host = f"https://localhost:{egress_upstream.port}/v1/chat/completions"
    # The client trusts only the real server's CA: if the proxy terminated TLS, its certificate would fail.
    with proxy.client(verify=str(egress_upstream.ca_cert)) as client:
        answer = client.post(other_host, json=chat(INJECTION))
    assert answer.status_code == 200
    assert egress_llm.last_request().json_body == chat(INJECTION)
    assert f"server connect localhost:{egress_upstream.port}" in proxy.log_tail(400), "it went through the proxy"
    assert egress_akto.client.count() == 0


def test_ai_hosts_are_intercepted_with_the_proxy_certificate(egress_proxy, egress_upstream):
    """The control for the test above: the same client refuses an intercepted provider host."""
    proxy = egress_proxy()
    with proxy.client(verify=str(egress_upstream.ca_cert)) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.post(OPENAI_CHAT, json=chat())


def test_sdks_configured_by_environment_are_guarded(egress_proxy, egress_llm, monkeypatch):
    """The official SDKs with their default base URLs, HTTPS_PROXY and SSL_CERT_FILE, as users run them."""
    use_proxy_env(monkeypatch, egress_proxy())
    oai = openai.OpenAI(api_key="sk-test-openai", max_retries=0, timeout=20)
    ant = anthropic.Anthropic(api_key="sk-ant-test", max_retries=0, timeout=20)

    completion = oai.chat.completions.create(**chat("hello"))
    assert completion.choices[0].message.content == "Hello from fake-openai"
    message = ant.messages.create(**messages("hello"))
    assert message.content[0].text == "Hello from fake-anthropic"

    with pytest.raises(openai.PermissionDeniedError) as oai_blocked:
        oai.chat.completions.create(**chat(INJECTION))
    assert oai_blocked.value.response.headers[DECISION] == "blocked"
    with pytest.raises(anthropic.PermissionDeniedError) as ant_blocked:
        ant.messages.create(**messages(INJECTION))
    assert ant_blocked.value.body == {"error": "Prompt injection detected"}
    assert [r.provider for r in egress_llm.requests()] == ["openai.chat", "anthropic.messages"]
