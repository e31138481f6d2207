"""The hook's own guarantees, exercised in-process against the real engine over loopback sockets.

What the scenarios cannot show from outside the proxy: post_call work never delays the response and is
bounded (drops counted), the stream is passed through chunk by chunk and ingested only at its end, the
engine key never reaches a log line, and config errors name the parameter.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from harness.engine import EngineNamespace
from reference_impl.core import FailMode
from reference_impl.litellm.envelope import blocked_envelope, request_envelope
from reference_impl.litellm.guardrail import AktoGuardrail, plain_http_off_host
from reference_impl.litellm.startup import GuardrailStartupError

pytestmark = pytest.mark.litellm

ENGINE_KEY = "engine-key-that-must-never-be-logged"


def run_async(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test body on a fresh event loop (the hook is async; pytest here is not)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


def make_hook(engine_url: str, mode: str = "pre_call", **params: Any) -> AktoGuardrail:
    return AktoGuardrail(
        guardrail_name=f"akto-{mode}", event_hook=mode, default_on=True,
        akto_base_url=engine_url, akto_api_key=ENGINE_KEY, **params,
    )


def request_data(prompt: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "messages": [{"role": "user", "content": prompt}],
        "proxy_server_request": {"headers": {"authorization": "Bearer sk-client", "cookie": "c=1", "x-note": "ok",
                                                    "x-request-id": "r-1", "x-auth-token": "tok-1"}},
        "metadata": {"user_api_key_request_route": "/v1/chat/completions", "user_api_key_user_id": "u-1"},
    }


def test_settings_come_from_params_with_env_fallbacks(akto: EngineNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKTO_ACCOUNT_ID", "777")
    hook = make_hook(akto.url, unreachable_fallback="fail_open", guardrail_timeout=2, akto_vxlan_id="9")
    assert hook.settings.unreachable_fallback is FailMode.FAIL_OPEN
    assert hook.settings.guardrail_timeout == 2
    assert (hook.settings.akto_account_id, hook.settings.akto_vxlan_id) == ("777", "9")
    assert hook.settings.connector == "litellm"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"akto_base_url": None}, "akto_base_url"),
        ({"akto_base_url": "ftp://engine"}, "akto_base_url"),
        ({"akto_api_key": None}, "akto_api_key"),
        ({"unreachable_fallback": "fail_sometimes"}, "unreachable_fallback"),
        ({"guardrail_timeout": 0}, "guardrail_timeout"),
        ({"guardrail_timeout": -3}, "guardrail_timeout"),
    ],
)
def test_bad_config_raises_an_error_litellm_does_not_swallow(params: dict[str, Any], named: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """LiteLLM skips a guardrail whose constructor raises ValueError/TypeError: ours must raise neither."""
    monkeypatch.delenv("AKTO_GUARDRAIL_API_BASE", raising=False)
    monkeypatch.delenv("AKTO_API_KEY", raising=False)
    base = {"akto_base_url": "http://127.0.0.1:9", "akto_api_key": "k"}
    with pytest.raises(GuardrailStartupError, match=named) as caught:
        AktoGuardrail(guardrail_name="akto-validate", event_hook="pre_call", **(base | params))
    assert not isinstance(caught.value, (ValueError, TypeError))


def test_plain_http_is_flagged_only_off_host() -> None:
    assert plain_http_off_host("http://akto.example.com:9090")
    assert not plain_http_off_host("http://127.0.0.1:9090")
    assert not plain_http_off_host("https://akto.example.com")


def test_envelope_strips_credentials_and_double_encodes(akto: EngineNamespace) -> None:
    hook = make_hook(akto.url, akto_account_id="42", akto_vxlan_id="7")
    envelope = request_envelope(request_data("hi"), hook.settings)
    assert "authorization" not in envelope.requestHeaders and "cookie" not in envelope.requestHeaders
    assert '"x-request-id": "r-1"' in envelope.requestHeaders  # allowlisted
    assert "x-note" not in envelope.requestHeaders and "tok-1" not in envelope.requestHeaders  # unknown / credential
    assert envelope.requestPayload == '{"body": "{\\"model\\": \\"gpt-4o-mini\\", \\"messages\\": [{\\"role\\": \\"user\\", \\"content\\": \\"hi\\"}]}"}'
    assert (envelope.akto_account_id, envelope.akto_vxlan_id, envelope.responsePayload) == ("42", "7", "{}")
    assert '"user_id": "u-1"' in envelope.tag
    blocked = blocked_envelope(request_data("hi"), "Nope", hook.settings)
    assert blocked.statusCode == blocked.status == "403"
    assert blocked.responsePayload == '{"body": "{\\"x-blocked-by\\": \\"Akto Proxy\\", \\"reason\\": \\"Nope\\"}"}'


@run_async
async def test_masking_keeps_fields_the_engine_never_saw(akto: EngineNamespace) -> None:
    hook = make_hook(akto.url)
    data = request_data("mail jane.doe@example.com today")
    result = await hook.async_pre_call_hook(None, None, data, "acompletion")
    assert "jane.doe@example.com" not in result["messages"][0]["content"]
    assert result["messages"][0]["content"].endswith("today")
    assert (result["model"], result["temperature"]) == ("gpt-4o-mini", 0.2)
    await hook.aclose()


@run_async
async def test_post_call_never_waits_and_background_work_is_bounded(akto: EngineNamespace) -> None:
    """A hanging engine: each post_call returns at once; beyond the bound, ingests are dropped and counted."""
    akto.client.add_fault({"type": "hang", "max_ms": 10_000})
    hook = make_hook(akto.url, mode="post_call", max_background_tasks=2, guardrail_timeout=5)
    started = time.perf_counter()
    for _ in range(5):
        assert await hook.async_post_call_success_hook(request_data("hi"), None, {"choices": []}) is None
    assert time.perf_counter() - started < 0.5
    assert (hook.engine.background.pending, hook.engine.background.dropped) == (2, 3)
    akto.client.clear_faults()
    await hook.engine.background.drain(timeout=0.1)  # cancel the two hanging calls
    await hook.engine.aclose()


@run_async
async def test_stream_is_passed_through_and_ingested_at_its_end(akto: EngineNamespace) -> None:
    hook = make_hook(akto.url, mode="post_call")
    consumer_saw: list[str] = []
    ingests_seen_while_streaming: list[int] = []

    async def upstream() -> AsyncIterator[dict[str, Any]]:
        for word in ["alpha ", "beta ", "gamma"]:
            # the consumer has the previous chunk before the next one is produced: nothing is held
            ingests_seen_while_streaming.append(len(consumer_saw))
            yield {"id": "c1", "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"content": word}}]}
        yield {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}

    async for chunk in hook.async_post_call_streaming_iterator_hook(None, upstream(), request_data("count")):
        consumer_saw.append(chunk["choices"][0]["delta"].get("content", ""))
        assert akto.client.count() == 0  # not ingested before the stream completes
    assert ingests_seen_while_streaming == [0, 1, 2]
    records = await asyncio.to_thread(lambda: akto.client.wait_for(1, timeout=5.0))
    assert '\\"content\\": \\"alpha beta gamma\\"' in records[0].response_payload
    assert records[0].flags is not None and records[0].flags.ingest_data and records[0].flags.guardrails
    await hook.aclose()


@run_async
async def test_engine_key_is_never_logged(akto: EngineNamespace, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    akto.client.add_fault({"type": "status", "status": 401, "body": "denied", "content_type": "text/html"})
    hook = make_hook(akto.url)
    with pytest.raises(Exception) as caught:
        await hook.async_pre_call_hook(None, None, request_data("hi"), "acompletion")
    assert getattr(caught.value, "status_code", None) == 503
    assert ENGINE_KEY not in repr(hook.settings)
    await hook.aclose()
    assert caplog.records, "the failure should have been logged"
    assert all(ENGINE_KEY not in record.getMessage() for record in caplog.records)


@run_async
async def test_fail_closed_refusal_skips_litellms_traceback_logging(akto: EngineNamespace) -> None:
    # LiteLLM 1.106.2 formats and secret-redacts the traceback of these exception types again for its logging
    # callbacks: half the proxy's CPU for a 503 (docs/connectors.md, "LiteLLM: the price of a 503"). Any
    # other exception with a status_code is answered with that status and its message.
    from litellm.proxy.utils import _PROXY_ONLY_LLM_API_ERRORS

    akto.client.add_fault({"type": "status", "status": 500})
    hook = make_hook(akto.url)
    with pytest.raises(Exception) as caught:
        await hook.async_pre_call_hook(None, None, request_data("hi"), "acompletion")
    await hook.aclose()
    assert getattr(caught.value, "status_code", None) == 503
    assert getattr(caught.value, "message", None) == "Akto guardrail service unreachable"
    assert not isinstance(caught.value, _PROXY_ONLY_LLM_API_ERRORS)
