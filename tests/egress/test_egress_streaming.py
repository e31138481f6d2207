"""SSE streams through the addon with the official SDKs: async mode never blocks, sync mode holds batches."""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import openai
import pytest

from egress_helpers import block_on_response, long_reply, use_proxy_env
from harness.process import wait_until

pytestmark = pytest.mark.timeout(60)

STOP = "forbidden-word"


def openai_stream(text: str = "hi"):
    client = openai.OpenAI(api_key="sk-test-openai", max_retries=0, timeout=20)
    return client.chat.completions.create(model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": text}])


def anthropic_stream(text: str = "hi"):
    client = anthropic.Anthropic(api_key="sk-ant-test", max_retries=0, timeout=20)
    return client.messages.create(model="claude-3-5-sonnet-latest", max_tokens=256, stream=True,
                                  messages=[{"role": "user", "content": text}])


def batch_calls(akto):
    return [e for e in akto.client.journal() if e.flags and e.flags.response_guardrails]


def test_async_mode_streams_everything_at_once_and_checks_batches(egress_proxy, egress_llm, egress_akto, monkeypatch):
    block_on_response(egress_akto.client, STOP, reason="stop word seen")
    reply = long_reply(STOP)
    egress_llm.set_script(reply=reply, stream_chunk_chars=10, chunk_interval_ms=25)
    use_proxy_env(monkeypatch, egress_proxy(stream_mode="async", batch_chars=60))

    arrivals, pieces = [], []
    for chunk in openai_stream():
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
            pieces.append(chunk.choices[0].delta.content)
    assert "".join(pieces) == reply, "async mode never changes nor cuts the stream"
    assert arrivals[-1] - arrivals[0] >= 0.5, "chunks must flow as they arrive, not after the whole stream"

    wanted = -(-len(reply) // 60)  # ceil: every batch of 60 chars, and the rest at the end
    calls = egress_akto.client.wait_for(1 + wanted, timeout=10)  # request phase + batches
    batches = [e for e in calls if e.flags.response_guardrails]
    texts = [json.loads(e.response_payload)["content"][0]["text"] for e in batches]
    assert "".join(texts) == reply, "every character is checked, once"
    assert all(e.flags.ingest_data for e in batches)
    assert any(e.response_verdict and e.response_verdict.behaviour.value == "block" for e in batches)


def test_sync_mode_ends_openai_stream_with_error_event_before_blocked_text(egress_proxy, egress_llm, egress_akto, monkeypatch):
    block_on_response(egress_akto.client, STOP, reason="stop word seen")
    egress_llm.set_script(reply=long_reply(STOP), stream_chunk_chars=10)
    use_proxy_env(monkeypatch, egress_proxy(stream_mode="sync", batch_chars=40))

    pieces = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in openai_stream():
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    assert "stop word seen" in str(raised.value)
    assert raised.value.body == {"message": "stop word seen", "type": "guardrails_blocked", "code": "guardrails_blocked"}
    seen = "".join(pieces)
    assert seen.startswith("word0 word1"), "approved batches before the block were delivered"
    assert STOP not in seen and "tail" not in seen, "nothing of the blocked batch or after it reached the client"


def test_sync_mode_ends_anthropic_stream_with_error_event(egress_proxy, egress_llm, egress_akto, monkeypatch):
    block_on_response(egress_akto.client, STOP, reason="stop word seen")
    egress_llm.set_script(reply=long_reply(STOP), stream_chunk_chars=10)
    use_proxy_env(monkeypatch, egress_proxy(stream_mode="sync", batch_chars=40))

    pieces = []
    with pytest.raises(anthropic.APIStatusError) as raised:
        for event in anthropic_stream():
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                pieces.append(event.delta.text)
    assert raised.value.body == {"type": "error", "error": {"type": "guardrails_blocked", "message": "stop word seen"}}
    seen = "".join(pieces)
    assert seen.startswith("word0") and STOP not in seen


def test_sync_mode_delivers_a_clean_stream_whole(egress_proxy, egress_llm, egress_akto, monkeypatch):
    reply = long_reply("and-then")
    egress_llm.set_script(reply=reply, stream_chunk_chars=7)
    use_proxy_env(monkeypatch, egress_proxy(stream_mode="sync", batch_chars=40))

    events = list(anthropic_stream())
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == reply
    assert [e.type for e in events][-1] == "message_stop", "trailing events are released at the end"
    checked = [json.loads(e.response_payload)["content"][0]["text"] for e in batch_calls(egress_akto)]
    assert "".join(checked) == reply, "every character was checked once, in order, before release"
    assert all(len(text) >= 40 for text in checked[:-1]), "batches of at least batch_chars, the rest at the end"


@pytest.mark.slow
def test_sync_mode_holds_text_until_the_verdict(egress_proxy, egress_llm, egress_akto, monkeypatch):
    egress_akto.client.add_fault({"type": "fixed_delay", "ms": 700}, match={"direction": "response"})
    egress_llm.set_script(reply=long_reply("x", words=5), stream_chunk_chars=10)
    use_proxy_env(monkeypatch, egress_proxy(stream_mode="sync", batch_chars=20))

    started = time.monotonic()
    first_text = None
    with openai_stream() as stream:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first_text = time.monotonic()
                break
    assert first_text is not None
    assert first_text - started >= 0.6, "no text may reach the client before its batch's verdict"


def test_async_mode_checks_the_last_batch_of_a_stream_the_provider_cuts_short(egress_proxy, egress_llm, egress_akto,
                                                                               monkeypatch):
    """Without the end-of-stream marker (the provider dropped the connection), the text seen so far must
    still be checked: the error / response hooks flush the last, partial batch."""
    egress_llm.set_script(reply="one two three four five six seven eight", stream_chunk_chars=4, abort_stream_after=3)
    use_proxy_env(monkeypatch, egress_proxy(stream_mode="async", batch_chars=10_000))  # one batch: the partial one

    with pytest.raises((openai.APIError, httpx.HTTPError)):  # the SDK surfaces the cut as httpx's error
        for _ in openai_stream():
            pass
    # Wait for this stream's own batch by its text: the module's namespace may also receive a late
    # background batch from the previous test, which must neither satisfy nor break this check.
    wait_until(lambda: any("one two" in (e.response_payload or "") for e in batch_calls(egress_akto)),
               timeout=10, what="a batch check of the text streamed before the cut")
