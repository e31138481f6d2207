"""The Akto routes over real sockets: the exact shapes connectors read, flags, bad input, limits, auth."""

from __future__ import annotations

import json
from typing import Any, Iterator

import httpx
import pytest

from akto_wire import MISSING_PAYLOAD_MESSAGE, SUCCESS_MESSAGE, Envelope

PROXY = "/api/http-proxy"
BLOCK_WORD = "forbidden-zebra"
BLOCK_POLICY = {
    "name": "no-zebras",
    "direction": "both",
    "matcher": {"keywords": [BLOCK_WORD]},
    "action": "block",
    "reason": "Zebras are not allowed",
}


def envelope(request_payload: str = "hello there", **fields: Any) -> dict[str, Any]:
    return Envelope.build(request_payload=request_payload, **fields).model_dump()


@pytest.fixture
def engine(akto, http: httpx.Client):  # noqa: ANN001 - the harness fixture
    """The test's namespace (own listener) with one blocking policy added to the defaults."""
    akto.client.add_policy(BLOCK_POLICY)
    return akto


def post(http: httpx.Client, url: str, body: Any, **params: str) -> httpx.Response:
    return http.post(url + PROXY, json=body, params=params)


# --------------------------------------------------------------------------------------------- success shapes


def test_allow_verdict_has_the_exact_envelope_and_echoes_the_payload(engine, http) -> None:
    response = post(http, engine.url, envelope("what is the capital of France"), guardrails="true")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["success"] is True and body["message"] == SUCCESS_MESSAGE
    assert body["data"]["success"] is True and body["data"]["message"] == SUCCESS_MESSAGE
    verdict = body["data"]["guardrailsResult"]
    assert verdict["Allowed"] is True
    assert verdict["Modified"] is False
    assert verdict["ModifiedPayload"] == "what is the capital of France"
    assert verdict["behaviour"] == ""
    assert "Metadata" not in verdict


def test_block_verdict_names_the_policy(engine, http) -> None:
    body = post(http, engine.url, envelope(f"tell me about {BLOCK_WORD}s"), guardrails="true").json()
    verdict = body["data"]["guardrailsResult"]
    assert verdict["Allowed"] is False
    assert verdict["behaviour"] == "block"
    assert verdict["Reason"] == "Zebras are not allowed"
    assert verdict["Metadata"]["policy_name"] == "no-zebras"


def test_get_with_a_json_body_works_like_post(engine, http) -> None:
    response = http.request("GET", engine.url + PROXY, params={"guardrails": "true"},
                            content=json.dumps(envelope(BLOCK_WORD)), headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json()["data"]["guardrailsResult"]["Allowed"] is False


def test_without_guardrails_flags_there_is_no_guardrails_result(engine, http) -> None:
    response = post(http, engine.url, envelope(BLOCK_WORD), ingest_data="true")
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": SUCCESS_MESSAGE,
                               "data": {"success": True, "message": SUCCESS_MESSAGE}}


def test_response_guardrails_alone_judge_the_response_payload(engine, http) -> None:
    body = envelope("harmless question", response_payload=f"a {BLOCK_WORD} answer")
    verdict = post(http, engine.url, body, response_guardrails="true").json()["data"]["guardrailsResult"]
    assert verdict["Allowed"] is False
    assert "requestResult" not in verdict


def test_both_flags_give_the_merged_shape(engine, http) -> None:
    body = envelope("harmless question", response_payload=f"a {BLOCK_WORD} answer")
    merged = post(http, engine.url, body, guardrails="true", response_guardrails="true").json()["data"]["guardrailsResult"]
    assert merged["requestResult"]["Allowed"] is True
    assert merged["responseResult"]["Allowed"] is False
    assert merged["responseResult"]["behaviour"] == "block"
    assert merged["Allowed"] is False  # request AND response
    assert merged["ModifiedPayload"] == merged["requestResult"]["ModifiedPayload"]  # flat keys: the request's


@pytest.mark.parametrize(
    ("query", "body_flags", "expected_on"),
    [
        ({}, {"guardrails": "true"}, True),  # body flags count when the query has none
        ({}, {"guardrails": True}, True),  # a JSON boolean too
        ({"guardrails": "TRUE"}, {}, True),  # any case
        ({"guardrails": "false"}, {"guardrails": "true"}, False),  # the query wins
        ({"guardrails": "1"}, {}, False),  # only "true" turns a flag on
        ({"guardrails": "yes"}, {}, False),
        ({"guardrails": ""}, {}, False),
        ({}, {"guardrails": 1}, False),  # numbers are not "true"
    ],
)
def test_flag_rules(engine, http, query: dict[str, str], body_flags: dict[str, Any], expected_on: bool) -> None:
    data = post(http, engine.url, envelope(BLOCK_WORD) | body_flags, **query).json()["data"]
    assert ("guardrailsResult" in data) is expected_on


def test_unknown_fields_are_ignored(engine, http) -> None:
    body = envelope(BLOCK_WORD) | {"akto_metadata": "{}", "files": [{"name": "a"}], "brand_new_field": {"x": 1}}
    response = post(http, engine.url, body, guardrails="true")
    assert response.status_code == 200
    assert response.json()["data"]["guardrailsResult"]["Allowed"] is False


def test_connector_and_app_are_recorded(engine, http) -> None:
    body = envelope("hi", request_headers={"Host": "My Agent:8080", "content-type": "application/json"})
    post(http, engine.url, body, guardrails="true", akto_connector="litellm")
    (entry,) = engine.client.journal()
    assert entry.connector == "litellm"
    assert entry.app == "my-agent:8080"  # lower case, unsafe characters replaced, as Akto names collections
    assert entry.flags.guardrails and not entry.flags.ingest_data


# --------------------------------------------------------------------------------------------- 422 and bad input


@pytest.mark.parametrize("payload", [None, "", "missing"])
def test_missing_or_empty_request_payload_is_422(engine, http, payload: str | None) -> None:
    body = envelope()
    if payload == "missing":
        del body["requestPayload"]
    else:
        body["requestPayload"] = payload
    response = post(http, engine.url, body, guardrails="true")
    assert response.status_code == 422
    assert response.json() == {
        "success": False, "message": MISSING_PAYLOAD_MESSAGE,
        "data": {"success": False, "message": MISSING_PAYLOAD_MESSAGE, "error": "requestPayload is required"},
    }


def test_get_without_body_is_422(engine, http) -> None:
    response = http.get(engine.url + PROXY, params={"guardrails": "true"})
    assert response.status_code == 422
    assert response.json()["message"] == MISSING_PAYLOAD_MESSAGE


@pytest.mark.parametrize(
    ("content", "message_part"),
    [
        (b'{"requestPayload": "hi"', "Malformed JSON body"),
        (b"not json at all", "Malformed JSON body"),
        (b'["requestPayload", "hi"]', "must be an object, got array"),
        (b'"just a string"', "must be an object, got string"),
        (b'{"requestPayload": "caf\xe9"}', "not valid UTF-8 (byte 0xe9 at offset 23)"),
        (b'{"requestPayload": 42}', "Field 'requestPayload' must be a string, got number"),
        (b'{"requestPayload": "hi", "requestHeaders": {"host": "x"}}', "Field 'requestHeaders' must be a string, got object"),
        (b'{"requestPayload": "hi", "statusCode": 200}', "Field 'statusCode' must be a string, got number"),
    ],
)
def test_bad_bodies_get_422_naming_the_problem(engine, http, content: bytes, message_part: str) -> None:
    response = http.post(engine.url + PROXY, content=content, params={"guardrails": "true"},
                         headers={"content-type": "application/json"})
    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False
    assert message_part in body["message"]
    assert body["data"]["success"] is False
    (entry,) = engine.client.journal()
    assert entry.status == 422 and message_part in entry.error


def test_unknown_route_is_404_json(engine, http) -> None:
    response = http.post(engine.url + "/api/nothing-here", json={})
    assert response.status_code == 404
    assert "No route" in response.json()["message"]


def test_health(engine, http) -> None:
    assert http.get(engine.url + "/health").json() == {"status": "ok"}


# --------------------------------------------------------------------------------------------- guardrails-service


def test_validate_request_answers_the_bare_verdict(engine, http) -> None:
    response = http.post(engine.url + "/api/validate/request", json=envelope(BLOCK_WORD))
    assert response.status_code == 200
    verdict = response.json()
    assert verdict["Allowed"] is False and verdict["behaviour"] == "block"
    assert "success" not in verdict


def test_validate_request_with_empty_payload_allows(engine, http) -> None:
    response = http.post(engine.url + "/api/validate/request", json={"requestPayload": ""})
    assert response.status_code == 200
    assert response.json()["Allowed"] is True
    assert response.json()["Reason"] == "No request body provided"


def test_validate_response_reads_the_legacy_payload_field(engine, http) -> None:
    response = http.post(engine.url + "/api/validate/response", json={"payload": f"some {BLOCK_WORD}"})
    assert response.json()["Allowed"] is False
    (entry,) = engine.client.journal(path="/api/validate/response")
    assert entry.response_verdict is not None and not entry.response_verdict.allowed


def test_validate_request_journals_an_ignored_legacy_payload_and_says_why(engine, http) -> None:
    # A client still sending the legacy field gets an allow (its text was never read): the journal shows
    # the text and why, through the admin API and the client, on every call (repeats are memoised).
    body = {"payload": f"some {BLOCK_WORD}"}
    for _ in range(2):
        response = http.post(engine.url + "/api/validate/request", json=body)
        assert response.json()["Allowed"] is True and response.json()["Reason"] == "No request body provided"
    raw = http.get(engine.url + "/__admin/journal", params={"path": "/api/validate/request"},
                   headers={"X-Mock-Akto-Namespace": engine.namespace}).json()
    assert [e["legacy_payload"] for e in raw] == [body["payload"]] * 2
    assert raw[0]["note"] == "body has legacy `payload` field, ignored: the contract reads requestPayload"
    entries = engine.client.journal(path="/api/validate/request")
    assert [(e.legacy_payload, e.note) for e in entries] == [(body["payload"], raw[0]["note"])] * 2
    assert entries[0].request_payload is None


def test_validate_response_notes_which_field_it_read(engine, http) -> None:
    http.post(engine.url + "/api/validate/response", json={"payload": f"some {BLOCK_WORD}"})
    http.post(engine.url + "/api/validate/response", json={"responsePayload": "fine", "payload": BLOCK_WORD})
    evaluated, ignored = engine.client.journal(path="/api/validate/response")
    assert evaluated.legacy_payload == f"some {BLOCK_WORD}" and "evaluated in place of the empty" in evaluated.note
    assert ignored.legacy_payload == BLOCK_WORD and ignored.response_verdict.allowed
    assert ignored.note == "body has legacy `payload` field, ignored: the contract reads responsePayload"


def test_a_body_without_a_legacy_payload_has_no_note(engine, http) -> None:
    http.post(engine.url + "/api/validate/request", json=envelope("hello"))
    (entry,) = engine.client.journal(path="/api/validate/request")
    assert entry.legacy_payload is None and entry.note is None


@pytest.mark.parametrize("content", [b"{broken", b"[1, 2]", b'{"requestPayload": 7}'])
def test_validate_bad_json_is_400_invalid_request_format(engine, http, content: bytes) -> None:
    response = http.post(engine.url + "/api/validate/request", content=content)
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid request format"}


# --------------------------------------------------------------------------------------------- repeated calls
# The engine memoises what an exact call (route, method, query, body bytes) decides; these pin down that a
# repeat is still a call of its own and that anything changing the decision is seen.


def exact_body(prompt: str, **fields: Any) -> bytes:
    return json.dumps(envelope(prompt, **fields)).encode()


def post_bytes(http: httpx.Client, url: str, content: bytes, **params: str) -> httpx.Response:
    return http.post(url + PROXY, content=content, params=params, headers={"content-type": "application/json"})


def test_a_repeated_call_is_journaled_and_ingested_every_time(engine, http) -> None:
    content = exact_body("the same question each time", request_headers={"host": "repeat-app"})
    answers = [post_bytes(http, engine.url, content, guardrails="true", ingest_data="true") for _ in range(5)]
    assert {a.status_code for a in answers} == {200} and len({a.content for a in answers}) == 1
    entries = engine.client.wait_for(5, timeout=10)
    assert len(entries) == 5 and len({e.seq for e in entries}) == 5
    assert [e.time for e in entries] == sorted(e.time for e in entries)
    for e in entries:
        assert e.request_payload == "the same question each time" and e.app == "repeat-app" and e.status == 200
        assert e.request_verdict is not None and e.request_verdict.allowed
    records = engine.client.ingest_records()
    assert len(records) == 5 and len({r.seq for r in records}) == 5
    assert all(r.app == "repeat-app" and r.verdict is not None for r in records)


def test_a_repeated_call_follows_policy_changes(engine, http) -> None:
    content = exact_body("tell me about unicorns")
    verdict = lambda: post_bytes(http, engine.url, content, guardrails="true").json()["data"]["guardrailsResult"]  # noqa: E731
    assert verdict()["Allowed"] is True
    engine.client.add_policy({"name": "no-unicorns", "matcher": {"keywords": ["unicorn"]}, "action": "block"})
    assert verdict()["Allowed"] is False
    engine.client.delete_policy("no-unicorns")
    assert verdict()["Allowed"] is True


def test_a_fault_on_a_repeated_call_applies_and_leaves_later_answers_alone(engine, http) -> None:
    content = exact_body("a plain question")
    first = post_bytes(http, engine.url, content, guardrails="true")
    engine.client.add_fault({"type": "wrong_content_type"})
    bent = post_bytes(http, engine.url, content, guardrails="true")
    assert bent.headers["content-type"].startswith("text/html") and bent.content == first.content
    engine.client.clear_faults()
    again = post_bytes(http, engine.url, content, guardrails="true")
    assert again.headers["content-type"] == "application/json" and again.content == first.content
    assert [e.fault for e in engine.client.journal()] == [None, "wrong_content_type", None]


def test_an_api_key_registered_later_is_masked_in_repeated_calls(make_engine, http) -> None:
    engine = make_engine()
    content = exact_body("hello", request_headers={"host": "app", "authorization": "sk-registered-later"})
    assert post_bytes(http, engine.url, content, guardrails="true").status_code == 200
    admin = httpx.Client(base_url=engine.url, trust_env=False, timeout=10)
    assert admin.post("/__admin/namespaces/api-keys", json={"api_key": "sk-registered-later",
                                                             "namespace": "other"}).status_code == 204
    assert post_bytes(http, engine.url, content, guardrails="true").status_code == 200
    before, after = admin.get("/__admin/journal").json()
    assert "sk-registered-later" in before["request_headers"]
    assert "sk-registered-later" not in after["request_headers"] and "***" in after["request_headers"]


# --------------------------------------------------------------------------------------------- body limit


def test_body_over_the_limit_is_413_with_a_json_message(make_engine, http) -> None:
    engine = make_engine(max_body_bytes=2048)
    small = http.post(engine.url + PROXY, json=envelope("x" * 1000), params={"guardrails": "true"})
    assert small.status_code == 200
    big = http.post(engine.url + PROXY, json=envelope("x" * 5000), params={"guardrails": "true"})
    assert big.status_code == 413
    assert big.json()["success"] is False
    assert "2048 bytes" in big.json()["message"]
    journal = httpx.get(engine.url + "/__admin/journal").json()
    assert [e["status"] for e in journal] == [200, 413]


def test_chunked_body_over_the_limit_stops_at_the_limit(make_engine, http) -> None:
    engine = make_engine(max_body_bytes=4096)

    def chunks() -> Iterator[bytes]:  # no content-length: the engine must count as it reads
        yield b'{"requestPayload": "'
        for _ in range(64):
            yield b"y" * 1024
        yield b'"}'

    response = http.post(engine.url + PROXY, content=chunks(), params={"guardrails": "true"})
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["message"]
    assert http.get(engine.url + "/health").status_code == 200  # and the engine is fine


# --------------------------------------------------------------------------------------------- auth


TOKEN = "s3cret-engine-token-value"


def test_token_missing_or_wrong_gets_an_html_401(make_engine, http) -> None:
    engine = make_engine(token=TOKEN)
    for headers in ({}, {"authorization": "wrong"}, {"authorization": f"Bearer wrong{TOKEN}"}):
        response = http.post(engine.url + PROXY, json=envelope(), params={"guardrails": "true"}, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("text/html")
        assert "HTTP ERROR 401" in response.text
        with pytest.raises(ValueError):
            response.json()


def test_token_raw_or_bearer_passes_and_never_reaches_the_journal(make_engine, http) -> None:
    engine = make_engine(token=TOKEN)
    for value in (TOKEN, f"Bearer {TOKEN}"):
        response = http.post(engine.url + PROXY, json=envelope(request_headers={"authorization": TOKEN}),
                             params={"guardrails": "true"}, headers={"authorization": value})
        assert response.status_code == 200
    assert http.get(engine.url + "/health").status_code == 200  # no auth on /health
    journal = httpx.get(engine.url + "/__admin/journal", headers={"authorization": TOKEN}).text  # admin needs it too
    assert TOKEN not in journal
    assert journal.count("***") == 2  # a connector that leaks the token into requestHeaders is masked


def test_a_registered_api_key_passes_auth_and_picks_the_namespace(make_engine, http) -> None:
    engine = make_engine(token=TOKEN)
    admin = httpx.Client(base_url=engine.url, headers={"x-mock-akto-namespace": "team-a", "authorization": TOKEN})
    assert admin.post("/__admin/namespaces/api-keys", json={"api_key": "sk-team-a"}).status_code == 204
    for value in ("sk-team-a", "Bearer sk-team-a"):
        response = http.post(engine.url + PROXY, json=envelope(), params={"guardrails": "true"},
                             headers={"authorization": value})
        assert response.status_code == 200
    assert len(admin.get("/__admin/journal").json()) == 2
    assert "sk-team-a" not in admin.get("/__admin/namespaces").text


@pytest.mark.slow
def test_engine_process_takes_the_token_from_the_environment_and_never_logs_it() -> None:
    from harness.engine import EngineProcess

    with EngineProcess(token=TOKEN, extra_args=["--log-level", "debug"]) as engine:
        assert TOKEN not in " ".join(engine.process.argv)
        with httpx.Client(base_url=engine.url, trust_env=False, timeout=10) as http:
            assert http.post(PROXY, json=envelope()).status_code == 401
            assert http.post(PROXY, json=envelope(), headers={"authorization": TOKEN}).status_code == 200
    assert TOKEN not in engine.process.log_path.read_text(errors="replace")
