import json

import pytest

from akto_wire import Behaviour, Envelope, Flags, Verdict, fail_open_verdict, merge_verdicts, success_body
from reference_impl.core import ConfigError, EngineFailure, EngineSettings, FailMode, FailureKind, on_failure, safe_headers
from reference_impl.core.verdict import parse_json_body, verdict_from_http_proxy, verdict_from_result


def body_with(result):
    return {"success": True, "message": "ok", "data": {"success": True, "message": "ok", "guardrailsResult": result}}


def test_block_verdict_is_read_with_go_style_keys():
    verdict = verdict_from_http_proxy(body_with({"Allowed": False, "Reason": "Prompt injection", "behaviour": "block"}))
    assert verdict.blocks and verdict.reason == "Prompt injection"


@pytest.mark.parametrize("behaviour,blocks", [("block", True), ("", True), ("alert", False), ("warn", False), ("approval", False)])
def test_only_block_or_empty_behaviour_blocks(behaviour, blocks):
    assert verdict_from_result({"Allowed": False, "behaviour": behaviour}).blocks is blocks


def test_lower_case_keys_and_capital_behaviour_are_accepted():
    verdict = verdict_from_result({"allowed": False, "reason": "r", "Behaviour": "warn"})
    assert verdict.behaviour is Behaviour.WARN and not verdict.blocks


def test_null_keys_take_their_defaults_and_object_payload_is_reencoded():
    verdict = verdict_from_result({"Allowed": True, "Reason": None, "Modified": True, "ModifiedPayload": {"messages": []}})
    assert verdict.reason == "" and json.loads(verdict.modified_payload) == {"messages": []}


def test_merged_shape_is_read_per_direction():
    merged = merge_verdicts(Verdict(allowed=True), Verdict(allowed=False, reason="PII in response", behaviour="block"))
    assert verdict_from_result(merged, "request").allowed
    assert verdict_from_result(merged, "response").reason == "PII in response"


@pytest.mark.parametrize("legacy", [False, True])
def test_akto_made_up_verdicts_are_engine_failures_for_the_fail_mode(legacy):
    """Both shapes of Akto's gateway fail-open verdict say no guardrail ran: the connector's fail mode decides."""
    with pytest.raises(EngineFailure) as info:
        verdict_from_result(fail_open_verdict("guardrails-service down", legacy=legacy))
    assert info.value.kind is FailureKind.ENGINE_FAILED_OPEN and "guardrails-service down" in str(info.value)
    assert on_failure(info.value, FailMode.FAIL_OPEN).allow
    assert on_failure(info.value, FailMode.FAIL_CLOSED).status == 503


def test_tls_failure_never_fails_open():
    decision = on_failure(EngineFailure(FailureKind.TLS, "certificate verify failed"), FailMode.FAIL_OPEN)
    assert not decision.allow and decision.status == 503 and "TLS" in decision.message


@pytest.mark.parametrize(
    "result",
    [None, {}, {"Allowed": None}, {"Allowed": "nope"}, {"Reason": "x"}, {"allowed": "no", "reason": "r"}],
)
def test_unreadable_verdicts_raise_unreadable(result):
    with pytest.raises(EngineFailure) as info:
        verdict_from_result(result)
    assert info.value.kind is FailureKind.UNREADABLE


def test_missing_guardrails_result_is_unreadable_not_allow():
    with pytest.raises(EngineFailure):
        verdict_from_http_proxy(success_body(None))


def test_wrong_types_name_the_field():
    with pytest.raises(EngineFailure, match="Modified"):
        verdict_from_result({"Allowed": True, "Modified": "perhaps"})


@pytest.mark.parametrize("content_type,body", [("text/html", b"<html>"), (None, b"{}"), ("application/json", b"{not json")])
def test_non_json_answers_are_unreadable(content_type, body):
    with pytest.raises(EngineFailure) as info:
        parse_json_body(body, content_type)
    assert info.value.kind is FailureKind.UNREADABLE


@pytest.mark.parametrize("kind", [k for k in FailureKind if k not in (FailureKind.AUTH, FailureKind.TLS)])
def test_fail_modes_decide_every_outage_kind(kind):
    failure = EngineFailure(kind, "x")
    assert on_failure(failure, FailMode.FAIL_OPEN).allow
    closed = on_failure(failure, FailMode.FAIL_CLOSED)
    assert not closed.allow and closed.status == 503


def test_auth_failure_never_fails_open():
    decision = on_failure(EngineFailure(FailureKind.AUTH, "401", status=401), FailMode.FAIL_OPEN)
    assert not decision.allow and decision.status == 503 and "credentials" in decision.message


def test_only_allowlisted_headers_are_kept():
    headers = {"Authorization": "Bearer sk-secret", "X-Api-Key": "k", "Cookie": "c", "Content-Type": "application/json",
               "Content-Length": "10", "X-Request-Id": "r1", "X-Auth-Token": "t1", "X-Access-Token": "t2",
               "X-Session-Token": "t3", "X-CSRF-Token": "t4", "X-Vendor-Secret": "t5"}
    assert safe_headers(headers) == {"content-type": "application/json", "x-request-id": "r1"}
    assert safe_headers([("Host", "agent"), ("x-unknown", "u")]) == {"host": "agent"}


def test_settings_fall_back_to_environment_and_validate():
    settings = EngineSettings.from_params({}, env={"AKTO_GUARDRAIL_API_BASE": "http://127.0.0.1:9/", "AKTO_API_KEY": "key-s3cr3t"})
    assert settings.akto_base_url == "http://127.0.0.1:9" and settings.auth_headers == {"authorization": "key-s3cr3t"}
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings.model_dump()), "the key must never appear in a repr or a log line"


@pytest.mark.parametrize(
    "params,name",
    [
        ({}, "akto_base_url"),
        ({"akto_base_url": "ftp://x"}, "akto_base_url"),
        ({"akto_base_url": "http://x", "unreachable_fallback": "fail_sideways"}, "unreachable_fallback"),
        ({"akto_base_url": "http://x", "guardrail_timeout": 0}, "guardrail_timeout"),
    ],
)
def test_bad_settings_name_the_parameter(params, name):
    with pytest.raises(ConfigError, match=name):
        EngineSettings.from_params(params, env={})


def test_flags_query_wins_and_only_true_counts():
    flags = Flags.resolve({"guardrails": "TRUE", "ingest_data": "yes"}, {"guardrails": "false", "response_guardrails": True})
    assert flags.guardrails and flags.response_guardrails and not flags.ingest_data


def test_envelope_build_encodes_json_fields_as_strings():
    envelope = Envelope.build(request_payload="{}", request_headers={"host": "my-app"}, tag={"gen-ai": "Gen AI"}, status_code=403)
    wire = json.loads(envelope.model_dump_json())
    assert wire["requestHeaders"] == '{"host": "my-app"}' and wire["statusCode"] == "403" == wire["status"]
    assert envelope.header("host") == "my-app" and wire["time"].isdigit()
