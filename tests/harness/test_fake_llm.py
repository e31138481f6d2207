"""The fake LLM provider, driven by the real ``openai`` and ``anthropic`` SDKs over real sockets."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import openai
import pytest

from harness.fakes.llm import FakeLLMClient, FakeLLMError, FakeLLMServer
from harness.fakes.llm.script import RecordedRequest, Recorder, Script

pytestmark = pytest.mark.timeout(60)

PII_REPLY = "Sure: John's SSN is 123-45-6789, email john@example.com"


@pytest.fixture
def oai(fake_llm: FakeLLMServer) -> openai.OpenAI:  # noqa: F811
    return openai.OpenAI(base_url=fake_llm.url + "/v1", api_key="sk-test-openai", max_retries=0, timeout=10)


@pytest.fixture
def claude(fake_llm: FakeLLMServer) -> anthropic.Anthropic:  # noqa: F811
    return anthropic.Anthropic(base_url=fake_llm.url, api_key="sk-ant-test", max_retries=0, timeout=10)


USER = [{"role": "user", "content": "What is the capital of France?"}]


# --- OpenAI --------------------------------------------------------------------------------------


def test_openai_chat_non_streaming(oai: openai.OpenAI, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    completion = oai.chat.completions.create(model="gpt-4o-mini", messages=USER, temperature=0.2)

    assert completion.choices[0].message.content == "Hello from fake-openai"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    seen = fake_llm_client.last_request()
    assert (seen.method, seen.path, seen.provider, seen.stream) == ("POST", "/v1/chat/completions", "openai.chat", False)
    assert seen.json_body["messages"] == USER and seen.json_body["temperature"] == 0.2
    assert seen.headers["authorization"] == "Bearer sk-test-openai"
    assert seen.status == 200


def test_openai_chat_streaming_in_scripted_chunks(oai: openai.OpenAI, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    fake_llm_client.set_script(reply="one two three four five six", stream_chunks=4)

    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}))

    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) == 4 and "".join(content) == "one two three four five six"
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    assert fake_llm_client.last_request().stream is True


def test_openai_stream_wire_format_ends_with_done(fake_llm: FakeLLMServer, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    fake_llm_client.set_script(reply="abcdef", stream_chunk_chars=2)
    response = httpx.post(fake_llm.url + "/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True}, timeout=10)

    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.split("\n\n") if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert sum('"content":"' in e and '"content":""' not in e for e in events) == 3  # ab cd ef


def test_openai_responses_api(oai: openai.OpenAI, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    fake_llm_client.set_script(reply=PII_REPLY)
    response = oai.responses.create(model="gpt-4o-mini", input="say something")

    assert response.output_text == PII_REPLY
    assert fake_llm_client.last_request().provider == "openai.responses"


def test_models_listed_at_v1_and_root(oai: openai.OpenAI, fake_llm: FakeLLMServer, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    assert "gpt-4o-mini" in [m.id for m in oai.models.list()]
    fake_llm_client.update_script(models=["only-one"])
    assert httpx.get(fake_llm.url + "/models", timeout=10).json()["data"][0]["id"] == "only-one"
    assert [r.path for r in fake_llm_client.requests(provider="openai.models")] == ["/v1/models", "/models"]


def test_root_path_without_v1_is_served(fake_llm: FakeLLMServer, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    response = httpx.post(fake_llm.url + "/chat/completions", json={"model": "m", "messages": USER}, timeout=10)
    assert response.json()["choices"][0]["message"]["content"] == "Hello from fake-openai"
    assert fake_llm_client.last_request().path == "/chat/completions"


# --- Anthropic -----------------------------------------------------------------------------------


def test_anthropic_messages_non_streaming(claude: anthropic.Anthropic, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    message = claude.messages.create(model="claude-3-5-sonnet-latest", max_tokens=64, messages=USER, system="be brief")

    assert message.content[0].text == "Hello from fake-anthropic"
    assert message.stop_reason == "end_turn" and message.model == "claude-3-5-sonnet-latest"
    seen = fake_llm_client.last_request()
    assert (seen.path, seen.provider) == ("/v1/messages", "anthropic.messages")
    # this SDK version sends the key as a Bearer token; older ones used x-api-key
    assert "sk-ant-test" in (seen.headers.get("x-api-key", "") + seen.headers.get("authorization", ""))
    assert seen.json_body["system"] == "be brief" and seen.headers["anthropic-version"]


def test_anthropic_messages_streaming(claude: anthropic.Anthropic, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    fake_llm_client.set_script(reply=PII_REPLY, stream_chunk_chars=5)

    with claude.messages.stream(model="claude-3-5-haiku-latest", max_tokens=64, messages=USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert "".join(pieces) == PII_REPLY and len(pieces) == -(-len(PII_REPLY) // 5)
    assert final.content[0].text == PII_REPLY and final.stop_reason == "end_turn"


def test_anthropic_event_sequence_on_the_wire(fake_llm: FakeLLMServer, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    body = {"model": "claude-3-5-sonnet-latest", "max_tokens": 16, "messages": USER, "stream": True}
    text = httpx.post(fake_llm.url + "/v1/messages", json=body, timeout=10).text

    names = [block.split("\n")[0].removeprefix("event: ") for block in text.split("\n\n") if block]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
                     "content_block_delta", "content_block_stop", "message_delta", "message_stop"]


def test_anthropic_required_fields_are_enforced(fake_llm: FakeLLMServer, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    response = httpx.post(fake_llm.url + "/v1/messages", json={"model": "m", "messages": USER}, timeout=10)

    assert response.status_code == 400
    assert response.json() == {"type": "error", "error": {"type": "invalid_request_error", "message": "Missing required parameter: 'max_tokens'."}}
    assert fake_llm_client.last_request().status == 400


# --- scripting -----------------------------------------------------------------------------------


def test_echo_returns_what_the_connector_forwarded(oai: openai.OpenAI, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    fake_llm_client.set_script(echo=True)
    content = [{"type": "text", "text": "my card is 4111 1111 1111 1111"}]
    completion = oai.chat.completions.create(model="m", messages=[{"role": "system", "content": "x"}, {"role": "user", "content": content}])
    assert completion.choices[0].message.content == "my card is 4111 1111 1111 1111"


def test_first_byte_latency_is_observed(oai: openai.OpenAI, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    fake_llm_client.update_script(first_byte_ms=400)
    started = time.monotonic()
    oai.chat.completions.create(model="m", messages=USER)
    assert time.monotonic() - started >= 0.4


def test_chunk_interval_paces_the_stream(oai: openai.OpenAI, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    fake_llm_client.set_script(reply="a b c d", chunk_interval_ms=100)
    arrivals = []
    started = time.monotonic()
    for chunk in oai.chat.completions.create(model="m", messages=USER, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 4
    # Three gaps of at least 100 ms between the four pieces. Measured from the request's start, because a
    # busy client may read two early pieces in one go (that only shortens first-to-last, never this).
    assert arrivals[-1] - started >= 0.3


@pytest.mark.slow
def test_delays_do_not_block_other_requests(fake_llm: FakeLLMServer, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    fake_llm_client.update_script(first_byte_ms=1000)

    def call(_: int) -> int:
        return httpx.post(fake_llm.url + "/v1/chat/completions", json={"model": "m", "messages": USER}, timeout=15).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(call, range(6)))
    assert statuses == [200] * 6
    assert time.monotonic() - started < 4.0  # one after the other would take 6 s


def test_rate_limit_error_reaches_openai_sdk_then_recovers(oai: openai.OpenAI, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    fake_llm_client.fail(429, count=1, message="slow down", retry_after_s=1)

    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="m", messages=USER)
    assert caught.value.status_code == 429
    assert caught.value.body == {"message": "slow down", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    assert caught.value.response.headers["retry-after"] == "1"
    assert oai.chat.completions.create(model="m", messages=USER).choices[0].message.content == "Hello from fake-openai"
    assert [r.status for r in fake_llm_client.requests()] == [429, 200]


def test_server_error_reaches_anthropic_sdk(claude: anthropic.Anthropic, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    fake_llm_client.fail(500)

    for _ in range(2):  # no count: fails until the script changes
        with pytest.raises(anthropic.InternalServerError) as caught:
            claude.messages.create(model="m", max_tokens=8, messages=USER, stream=True)
        assert caught.value.status_code == 500
        assert caught.value.body["error"]["type"] == "api_error"
    fake_llm_client.recover()
    assert claude.messages.create(model="m", max_tokens=8, messages=USER).content[0].text == "Hello from fake-anthropic"


def test_aborted_stream_breaks_the_connection(fake_llm: FakeLLMServer, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    fake_llm_client.set_script(reply="a b c d e", abort_stream_after=2)
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", fake_llm.url + "/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True}, timeout=10) as response:
            for data in response.iter_bytes():
                received += data
    assert b'"content":"a"' in received and b'"content":" b"' in received
    assert b'"content":" c"' not in received and b"[DONE]" not in received


def test_invalid_script_is_refused_naming_the_field(fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    with pytest.raises(FakeLLMError, match="first_byte_ms"):
        fake_llm_client.update_script(first_byte_ms=-5)
    with pytest.raises(FakeLLMError, match="not both"):
        fake_llm_client.update_script(stream_chunks=2, stream_chunk_chars=3)
    with pytest.raises(FakeLLMError, match="Extra inputs"):
        fake_llm_client.update_script(replyy="typo")
    assert fake_llm_client.script() == Script()  # nothing half-applied


def test_unknown_path_is_recorded_and_404(fake_llm: FakeLLMServer, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    response = httpx.post(fake_llm.url + "/v1/embeddings", json={"model": "m", "input": "x"}, timeout=10)
    assert response.status_code == 404 and "no route POST /v1/embeddings" in response.json()["error"]["message"]
    seen = fake_llm_client.last_request()
    assert (seen.provider, seen.status, seen.json_body) == ("unknown", 404, {"model": "m", "input": "x"})


def test_non_json_body_is_recorded_and_refused(fake_llm: FakeLLMServer, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    response = httpx.post(fake_llm.url + "/v1/chat/completions", content=b"not json", timeout=10)
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    assert fake_llm_client.last_request().body_text == "not json"


def test_recording_filters_clear_and_wait(oai: openai.OpenAI, claude: anthropic.Anthropic, fake_llm_client: FakeLLMClient) -> None:  # noqa: F811
    oai.chat.completions.create(model="m", messages=USER)
    claude.messages.create(model="c", max_tokens=8, messages=USER)
    everything = fake_llm_client.wait_for_requests(2, timeout=5)
    assert [r.provider for r in everything] == ["openai.chat", "anthropic.messages"]
    assert [r.model for r in fake_llm_client.requests(since=everything[0].seq)] == ["c"]
    fake_llm_client.clear_requests()
    assert fake_llm_client.requests() == []
    with pytest.raises(TimeoutError):
        fake_llm_client.wait_for_requests(1, timeout=0.3)


def test_recorder_is_a_bounded_ring() -> None:
    recorder = Recorder(max_size=3)
    for _ in range(5):
        recorder.add(RecordedRequest(seq=recorder.next_seq(), at=0.0, method="POST", path="/x", provider="unknown"))
    assert [r.seq for r in recorder.items()] == [3, 4, 5] and recorder.total == 5


# --- TLS and the command line --------------------------------------------------------------------


def test_tls_server_with_generated_ca(fake_llm_tls: FakeLLMServer) -> None:  # noqa: F811
    assert fake_llm_tls.url.startswith("https://127.0.0.1:")
    client = openai.OpenAI(base_url=fake_llm_tls.url + "/v1", api_key="k", max_retries=0, timeout=10,
                           http_client=httpx.Client(verify=str(fake_llm_tls.ca_cert), trust_env=False))
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "Hello from fake-openai"
    with pytest.raises(httpx.ConnectError):  # not trusted without the CA
        httpx.get(fake_llm_tls.url + "/__fake/health", timeout=5, trust_env=False)


def test_command_line_rejects_bad_flags() -> None:
    result = subprocess.run([sys.executable, "-m", "harness.fakes.llm", "--port", "1", "--tls-cert", "/no/such.pem"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "no such file: /no/such.pem" in result.stderr
