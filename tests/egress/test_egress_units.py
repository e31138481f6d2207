"""The addon's pure parts (no mitmproxy): settings, payloads and the modify mapping, SSE reading, batching."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest

from reference_impl.core import ConfigError, FailMode
from reference_impl.core.masking import MaskingError
from reference_impl.egress.payload import build_envelope, modified_body, request_payload, stream_batch_payload
from reference_impl.egress.settings import DEFAULT_HOSTS, HostMatcher, StreamMode, resolve
from reference_impl.egress.sse import SseSplitter, error_event, event_text, provider_of
from reference_impl.egress.stream import AsyncStreamTap, StreamDecision, StreamDecoder, SyncStreamGate

URL = {"AKTO_URL": "http://127.0.0.1:9"}

# --- settings ----------------------------------------------------------------------------------------


def test_defaults_match_akto_addon_except_the_total_deadline():
    settings = resolve({}, URL)
    assert settings.fail_mode is FailMode.FAIL_OPEN
    assert settings.engine.guardrail_timeout == 5.0
    assert settings.stream_mode is StreamMode.ASYNC
    assert settings.batch_chars == 600
    assert settings.app_name == ""
    assert settings.engine.akto_api_key is None


def test_options_win_over_environment_and_environment_over_defaults():
    env = {**URL, "APP_NAME": "env-app", "AKTO_TIMEOUT_MS": "1500", "AKTO_UNREACHABLE_FALLBACK": "fail_closed",
           "AKTO_GUARDRAILS_MODE": "sync", "AKTO_TEXT_THRESHOLD": "50"}
    from_env = resolve({}, env)
    assert (from_env.app_name, from_env.engine.guardrail_timeout, from_env.fail_mode, from_env.stream_mode, from_env.batch_chars) == (
        "env-app", 1.5, FailMode.FAIL_CLOSED, StreamMode.SYNC, 50)
    from_options = resolve({"akto_app_name": "opt-app", "akto_timeout_ms": 250, "akto_unreachable_fallback": "fail_open",
                            "akto_url": "https://engine.example"}, env)
    assert from_options.app_name == "opt-app" and from_options.engine.guardrail_timeout == 0.25
    assert from_options.fail_mode is FailMode.FAIL_OPEN
    assert from_options.engine.akto_base_url == "https://engine.example"


@pytest.mark.parametrize(
    "options,env,message",
    [
        ({}, {}, "the engine URL is required: --set akto_url=... or AKTO_URL"),
        ({}, {"AKTO_URL": "  "}, "the engine URL is required"),
        ({}, {"AKTO_URL": "ftp://x"}, "environment variable AKTO_URL: must be an http:// or https:// URL"),
        ({"akto_timeout_ms": 0}, URL, "option akto_timeout_ms: must be a positive integer, got 0"),
        ({}, {**URL, "AKTO_TIMEOUT_MS": "5s"}, "environment variable AKTO_TIMEOUT_MS: must be a positive integer, got '5s'"),
        ({"akto_unreachable_fallback": "open"}, URL, "option akto_unreachable_fallback: must be fail_open or fail_closed"),
        ({}, {**URL, "AKTO_GUARDRAILS_MODE": "blocking"}, "AKTO_GUARDRAILS_MODE: must be async or sync"),
        ({"akto_stream_batch_chars": -1}, URL, "akto_stream_batch_chars: must be a positive integer"),
        ({"akto_hosts": "api.example.com:443"}, URL, "akto_hosts: 'api.example.com:443' is not a host name"),
    ],
)
def test_bad_values_name_the_option_or_variable(options, env, message):
    with pytest.raises(ConfigError) as raised:
        resolve(options, env)
    assert message in str(raised.value)


def test_api_key_never_appears_in_errors():
    with pytest.raises(ConfigError) as raised:
        resolve({"akto_api_key": "sk-secret-123", "akto_url": "nope"}, {})
    assert "sk-secret-123" not in str(raised.value)


@pytest.mark.parametrize("host,inspected", [
    ("api.openai.com", True), ("API.OpenAI.com.", True), ("api.anthropic.com", True), ("chatgpt.com", True),
    ("bedrock-runtime.amazonaws.com", True), ("bedrock-runtime.eu-west-3.amazonaws.com", True),
    ("bedrock-runtime.a.b.amazonaws.com", False), ("s3.amazonaws.com", False), ("openai.com", False),
    ("api.openai.com.evil.example", False), ("evilapi.openai.com", False), ("", False), (None, False),
])
def test_default_hosts(host, inspected):
    assert HostMatcher(DEFAULT_HOSTS)(host) is inspected


def test_extra_hosts_extend_the_defaults():
    hosts = resolve({"akto_hosts": "llm.internal, *.openai.azure.com"}, URL).hosts
    assert hosts("llm.internal") and hosts("myres.openai.azure.com") and hosts("api.openai.com")
    assert not hosts("a.b.openai.azure.com")


# --- payloads and the modify mapping -------------------------------------------------------------


def test_request_payload_shapes():
    assert json.loads(request_payload({"model": "m", "messages": [{"role": "user", "content": "hi"}]})) == {
        "messages": [{"role": "user", "content": "hi"}]}
    assert json.loads(request_payload({"model": "c", "system": "be nice", "messages": []})) == {"messages": [], "system": "be nice"}
    assert json.loads(request_payload({"model": "m", "input": "hi"})) == {"raw": {"model": "m", "input": "hi"}}
    assert json.loads(stream_batch_payload("abc")) == {"content": [{"type": "text", "text": "abc"}]}


def test_modify_request_maps_leaf_for_leaf_and_keeps_other_fields():
    body = {"model": "gpt-4o", "temperature": 0.5, "messages": [{"role": "user", "content": "mail a@b.co"}], "stream": True}
    sent = request_payload(body)
    engine_answer = sent.replace("a@b.co", "[EMAIL]")
    assert modified_body(body, sent, engine_answer, phase="request") == {**body, "messages": [{"role": "user", "content": "mail [EMAIL]"}]}
    assert body["messages"][0]["content"] == "mail a@b.co", "the original is not mutated"


def test_modify_raw_payload_maps_back_into_the_body():
    body = {"model": "gpt-4o", "input": "call 555-0100", "instructions": "x"}
    sent = request_payload(body)
    assert modified_body(body, sent, sent.replace("555-0100", "[PHONE]"), phase="request")["input"] == "call [PHONE]"
    assert modified_body(body, sent, sent.replace("555-0100", "[PHONE]"), phase="request")["model"] == "gpt-4o"


def test_modify_response_keeps_ids_and_usage():
    response = {"id": "chatcmpl-1", "choices": [{"message": {"content": "a@b.co"}}], "usage": {"total_tokens": 3}}
    text = json.dumps(response)
    assert modified_body(response, text, text.replace("a@b.co", "[E]"), phase="response") == {
        **response, "choices": [{"message": {"content": "[E]"}}]}


@pytest.mark.parametrize("answer", ['{"messages": []}', "not json", '{"messages": [{"role": "user", "content": 5}]}'])
def test_modify_that_cannot_be_mapped_raises(answer):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(MaskingError):
        modified_body(body, request_payload(body), answer, phase="request")


def test_envelope_strips_credentials_and_names_the_app():
    envelope = build_envelope(path="/v1/chat/completions?x=1", method="POST", app_name="agent-7",
                              request_headers={"Authorization": "Bearer sk-1", "x-api-key": "k", "Content-Type": "application/json", "Host": "api.openai.com"},
                              request_payload_text="{}", response_headers={"set-cookie": "s=1", "x-request-id": "r"})
    assert json.loads(envelope.requestHeaders) == {"content-type": "application/json", "host": "agent-7"}
    assert json.loads(envelope.responseHeaders) == {"x-request-id": "r"}
    assert envelope.path == "/v1/chat/completions?x=1" and envelope.type is None
    assert json.loads(envelope.tag) == {"gen-ai": "Gen AI", "source": "AGENTIC"} and envelope.source == "MIRRORING"


# --- SSE ------------------------------------------------------------------------------------------


def openai_event(content: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": content}}]}).encode() + b"\n\n"


def anthropic_event(kind: str, **data) -> bytes:
    return f"event: {kind}\ndata: ".encode() + json.dumps({"type": kind, **data}).encode() + b"\n\n"


@pytest.mark.parametrize("raw,text", [
    (openai_event("Hel"), "Hel"),
    (b'data: {"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{\\"a\\":"}}]}}]}\n\n', '{"a":'),
    (b"data: [DONE]\n\n", ""),
    (b": keep-alive comment\n\n", ""),
    (b"data: not json\n\n", ""),
    (anthropic_event("content_block_delta", delta={"type": "text_delta", "text": "Hi"}), "Hi"),
    (anthropic_event("content_block_delta", delta={"type": "input_json_delta", "partial_json": "{\"q\""}), "{\"q\""),
    (anthropic_event("content_block_start", content_block={"type": "tool_use", "name": "search"}), "[tool:search]"),
    (anthropic_event("message_delta", delta={"stop_reason": "end_turn"}), ""),
    (b'data: {"type":"response.output_text.delta","delta":"Yo"}\n\n', "Yo"),
])
def test_event_text(raw, text):
    assert event_text(raw) == text


def test_splitter_handles_events_cut_anywhere_and_crlf():
    stream = openai_event("a") + b"data: " + b'{"choices":[{"delta":{"content":"b"}}]}' + b"\r\n\r\n" + openai_event("c")
    for cut in range(1, len(stream)):
        splitter = SseSplitter()
        events = splitter.feed(stream[:cut]) + splitter.feed(stream[cut:]) + splitter.finish()
        assert b"".join(e.raw for e in events) == stream
        assert [e.text for e in events] == ["a", "b", "c"]


def test_error_events_are_provider_shaped():
    assert error_event("anthropic", "no") == (
        b'event: error\ndata: {"type": "error", "error": {"type": "guardrails_blocked", "message": "no"}}\n\n')
    openai_error = error_event("openai", "no")
    assert openai_error.endswith(b"data: [DONE]\n\n")
    assert json.loads(openai_error.split(b"\n\n")[0][6:]) == {"error": {"message": "no", "type": "guardrails_blocked", "code": "guardrails_blocked"}}
    assert provider_of("api.anthropic.com") == "anthropic" and provider_of("api.openai.com") == "openai"


def test_gzip_stream_is_decoded_chunk_by_chunk():
    payload = openai_event("hello") * 20
    packed = gzip.compress(payload)
    decoder = StreamDecoder("gzip")
    assert b"".join(decoder.decode(packed[i:i + 7]) for i in range(0, len(packed), 7)) + decoder.flush() == payload
    with pytest.raises(ValueError, match="unsupported content-encoding 'br'"):
        StreamDecoder("br")


# --- batching -------------------------------------------------------------------------------------


def test_async_tap_forwards_everything_and_checks_each_batch_once():
    batches: list[str] = []
    tap = AsyncStreamTap(batches.append, batch_chars=5)
    events = [openai_event(t) for t in ("abc", "de", "f", "ghijkl", "m")] + [b"data: [DONE]\n\n"]
    assert b"".join(tap.feed(e) for e in events) == b"".join(events)
    tap.finish()
    assert batches == ["abcde", "fghijkl", "m"]


class Engine:
    """Verdicts by text, recording what was asked (the gate's only dependency)."""

    def __init__(self, block: str = "") -> None:
        self.block = block
        self.asked: list[str] = []

    async def check(self, text: str) -> StreamDecision:
        self.asked.append(text)
        return StreamDecision(self.block not in text, "blocked!") if self.block else StreamDecision(True)


def run_gate(chunks: list[bytes], engine: Engine, batch_chars: int = 5) -> tuple[list[bytes], SyncStreamGate]:
    async def go() -> tuple[list[bytes], SyncStreamGate]:
        gate = SyncStreamGate(engine.check, batch_chars, "openai")
        out: list[bytes] = []
        for chunk in chunks:
            if gate.feed(chunk):
                await gate.settle()
            out.append(gate.take())
        if gate.finish():
            await gate.settle()
        out.append(gate.take())
        return out, gate

    return asyncio.run(go())


def test_sync_gate_holds_text_until_its_batch_is_approved():
    head = b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n'
    chunks = [head, openai_event("abc"), openai_event("de"), openai_event("f"), b"data: [DONE]\n\n"]
    engine = Engine()
    out, gate = run_gate(chunks, engine)
    assert out[0] == head, "an event without text before any text passes at once"
    assert out[1] == b"", "'abc' is held: its batch is not complete"
    assert out[2] == openai_event("abc") + openai_event("de"), "released with its verdict"
    assert out[3] == b"" and out[4] == b""
    assert out[5] == openai_event("f") + b"data: [DONE]\n\n", "the rest is checked at the end, order kept"
    assert engine.asked == ["abcde", "f"] and gate.stopped is None


def test_sync_gate_stops_at_the_blocked_batch():
    chunks = [openai_event("hello"), openai_event("bad w"), openai_event("ords"), openai_event("later")]
    engine = Engine(block="bad")
    out, gate = run_gate(chunks, engine)
    released = b"".join(out)
    assert released == openai_event("hello") + error_event("openai", "blocked!")
    assert engine.asked == ["hello", "bad w"], "nothing is checked (or sent) after the block"
    assert gate.stopped == StreamDecision(False, "blocked!")


def test_sync_gate_releases_an_unterminated_tail_after_checking_it():
    out, _ = run_gate([openai_event("ab"), b'data: {"choices":[{"delta":{"content":"c"}}]}'], Engine())
    assert b"".join(out).endswith(b'"c"}}]}')
