"""The TrueFoundry gateway simulator itself: does it call guardrails and judge their answers the way the
contract says (../shared/contracts/truefoundry.md sections 1-4 and 9)? A scripted guardrail server answers
each shape; the fake LLM sits behind the gateway. Pure classification rules are checked as a table too.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterator

import pytest

from harness.process import LOOPBACK, free_port
from harness.fakes.truefoundry_gateway.client import TfyGatewayError
from harness.fakes.truefoundry_gateway.guardrails import (
    Contract, Effect, EnforcingStrategy, GuardrailConfig, Hook, Operation, Outcome, classify, effect_of,
)
from tfy_doubles import ScriptedServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def double() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def guardrail(double: ScriptedServer, tfy: Any, fake_llm_client: Any) -> Iterator[ScriptedServer]:
    double.reset()
    yield double
    double.reset()


def config(double: ScriptedServer, name: str = "grp/rail", *, path: str = "/guard", hook: str = "llm_input",
           **fields: Any) -> GuardrailConfig:
    return GuardrailConfig(name=name, url=f"{double.url}{path}", hook=hook, **fields)


def send(tfy: Any, hook: str = "llm_input", names: tuple[str, ...] = ("grp/rail",), **kwargs: Any) -> Any:
    selection = {"input_guardrails": list(names)} if hook == "llm_input" else {"output_guardrails": list(names)}
    return tfy.chat(kwargs.pop("prompt", "hello"), **selection, **kwargs)


# ---------------------------------------------------------------------------------- the rules as a table


@pytest.mark.parametrize("contract, operation, status, body, outcome", [
    ("current", "validate", 200, {"verdict": True}, "pass"),
    ("current", "validate", 200, {"verdict": False, "message": "no"}, "violation"),
    ("current", "validate", 200, {"result": False}, "violation"),
    ("current", "validate", 200, {"result": True}, "pass"),
    ("current", "validate", 200, {}, "pass"),
    ("current", "validate", 200, None, "pass"),
    ("current", "validate", 200, b"not json", "error"),
    ("current", "validate", 204, b"", "error"),
    ("current", "validate", 400, {}, "error"),
    ("current", "validate", 401, b"<html>401</html>", "error"),
    ("current", "validate", 422, {"actionErrors": []}, "error"),
    ("current", "validate", 500, {"error": "x"}, "error"),
    ("current", "mutate", 200, {"verdict": False}, "violation"),
    ("current", "mutate", 200, {"verdict": True, "transformed": True, "result": {"messages": []}}, "pass"),
    ("current", "mutate", 200, {"result": False}, "pass"),  # result:false only denies on Validate
    ("legacy", "validate", 200, {"verdict": False}, "pass"),
    ("legacy", "validate", 200, b"not json", "pass"),
    ("legacy", "validate", 400, {}, "error"),
    ("legacy", "mutate", 200, None, "pass"),
])
def test_classification(contract: str, operation: str, status: int, body: Any, outcome: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    got, _ = classify(Operation(operation), Hook.LLM_INPUT, Contract(contract), status, content)
    assert got.value == outcome


def test_mutate_replacement_rules() -> None:
    def replacement(contract: str, body: Any, hook: Hook = Hook.LLM_INPUT) -> Any:
        return classify(Operation.MUTATE, hook, Contract(contract), 200, json.dumps(body).encode())[1].get("replacement")

    new = {"model": "m", "messages": [{"role": "user", "content": "rewritten"}]}
    assert replacement("current", {"verdict": True, "transformed": True, "result": new}) == new
    assert replacement("current", {"verdict": True, "result": new}) is None  # transformed missing: no change
    assert replacement("current", {"verdict": True, "transformed": "true", "result": new}) is None
    assert replacement("legacy", new) == new  # legacy: the bare modified body
    assert replacement("legacy", {}) is None  # an empty object is not a request body
    assert replacement("legacy", {"choices": []}, Hook.LLM_OUTPUT) == {"choices": []}


@pytest.mark.parametrize("strategy, violation, error", [
    ("enforce", Effect.BLOCK, Effect.BLOCK),
    ("enforce_but_ignore_on_error", Effect.BLOCK, Effect.LET_THROUGH),
    ("audit", Effect.LET_THROUGH, Effect.LET_THROUGH),
])
def test_enforcing_strategy_table(strategy: str, violation: Effect, error: Effect) -> None:
    s = EnforcingStrategy(strategy)
    assert (effect_of(s, Outcome.PASS), effect_of(s, Outcome.VIOLATION), effect_of(s, Outcome.ERROR)) == (
        Effect.ALLOW, violation, error)


def test_defaults_match_the_dashboard() -> None:
    rail = GuardrailConfig(name="g/c", url="http://127.0.0.1:1/x", hook="llm_input")
    assert rail.timeout_s == 10.0
    assert rail.operation is Operation.VALIDATE and rail.enforcing_strategy is EnforcingStrategy.ENFORCE


# ----------------------------------------------------------------------------------- verdicts end to end


@pytest.mark.parametrize("strategy, blocked", [("enforce", True), ("enforce_but_ignore_on_error", True), ("audit", False)])
def test_current_contract_verdict_false_is_a_violation(guardrail: ScriptedServer, tfy: Any, fake_llm_client: Any,
                                                       strategy: str, blocked: bool) -> None:
    tfy.set_guardrails([config(guardrail, enforcing_strategy=strategy)])
    guardrail.answer(body={"verdict": False, "message": "nope, not that"})
    response = send(tfy)
    if blocked:
        assert response.status_code == 400
        body = response.json()
        assert body["status"] == "failure"
        assert body["error"] == {"type": "guardrail_checks_failed", "code": "400"}
        assert body["message"] == "Input Guardrail checks failed for integrations: [grp/rail]"
        (check,) = body["guardrail_checks"]["input_guardrails"]
        assert check == {"guardrail_integration": "grp/rail", "result": "failed",
                         "data": {"verdict": False, "explanation": "nope, not that", "guardrailUrl": f"{guardrail.url}/guard"}}
    else:
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "Hello from fake-openai"
    assert tfy.last_exchange()["guardrails"][0]["outcome"] == "violation"


def test_legacy_contract_ignores_verdict_false(guardrail: ScriptedServer, tfy: Any) -> None:
    tfy.update_settings(contract="legacy")
    tfy.set_guardrails([config(guardrail)])
    guardrail.answer(body={"verdict": False, "message": "nope"})
    assert send(tfy).status_code == 200
    assert tfy.last_exchange()["guardrails"][0]["outcome"] == "pass"


@pytest.mark.parametrize("strategy, blocked", [("enforce", True), ("enforce_but_ignore_on_error", False), ("audit", False)])
@pytest.mark.parametrize("contract", ["current", "legacy"])
def test_non_2xx_is_an_error_handled_by_the_strategy(guardrail: ScriptedServer, tfy: Any, strategy: str, blocked: bool,
                                                     contract: str) -> None:
    tfy.update_settings(contract=contract)
    tfy.set_guardrails([config(guardrail, enforcing_strategy=strategy)])
    guardrail.answer(status=400, body={"actionErrors": ["Prompt injection detected"]})
    response = send(tfy)
    assert response.status_code == (400 if blocked else 200)
    if blocked:
        (check,) = response.json()["guardrail_checks"]["input_guardrails"]
        assert check["data"] == {"error": {"actionErrors": ["Prompt injection detected"]}, "guardrailUrl": f"{guardrail.url}/guard"}
    call = tfy.last_exchange()["guardrails"][0]
    assert (call["outcome"], call["status"], call["error"]) == ("error", 400, "HTTP 400")


def test_2xx_with_unreadable_body_is_an_error(guardrail: ScriptedServer, tfy: Any) -> None:
    tfy.set_guardrails([config(guardrail)])
    guardrail.answer(body=b"<html>ok</html>", content_type="text/html")
    assert send(tfy).status_code == 400
    assert tfy.last_exchange()["guardrails"][0]["error"] == "2xx with a body that is not JSON"


def test_timeout_is_an_error(guardrail: ScriptedServer, tfy: Any) -> None:
    tfy.set_guardrails([config(guardrail, timeout_s=0.3), config(guardrail, "grp/lenient", timeout_s=0.3,
                                                                   enforcing_strategy="enforce_but_ignore_on_error")])
    guardrail.answer(delay_s=2.0)
    assert send(tfy).status_code == 400
    call = tfy.last_exchange()["guardrails"][0]
    assert (call["outcome"], call["status"], call["error"]) == ("error", None, "timeout after 0.3s")
    assert send(tfy, names=("grp/lenient",)).status_code == 200


def test_unreachable_guardrail_is_an_error(tfy: Any, fake_llm_client: Any) -> None:
    closed = f"http://{LOOPBACK}:{free_port()}/guard"
    tfy.set_guardrails([GuardrailConfig(name="grp/gone", url=closed, hook="llm_input"),
                        GuardrailConfig(name="grp/gone-audit", url=closed, hook="llm_input", enforcing_strategy="audit")])
    assert send(tfy, names=("grp/gone",)).status_code == 400
    assert tfy.last_exchange()["guardrails"][0]["error"].startswith("unreachable: ConnectError")
    assert send(tfy, names=("grp/gone-audit",)).status_code == 200


# ------------------------------------------------------------------------------------- what is sent


def test_input_and_output_payloads_headers_and_auth(guardrail: ScriptedServer, tfy: Any, fake_llm_client: Any) -> None:
    tfy.set_guardrails([
        config(guardrail, "grp/in", path="/in", auth={"type": "bearer", "token": "tok-123"}, config={"k": "v"},
               headers={"x-extra": "1"}),
        config(guardrail, "grp/out", path="/out", hook="llm_output",
               auth={"type": "basic", "username": "user", "password": "pw"}),
    ])
    response = tfy.chat("hello there", input_guardrails=["grp/in"], output_guardrails=["grp/out"],
                        metadata={"ip_address": "10.0.0.9", "session_id": "s-9"})
    assert response.status_code == 200
    first, second = guardrail.received
    assert (first.path, second.path) == ("/in", "/out")
    assert first.headers["authorization"] == "Bearer tok-123" and first.headers["x-extra"] == "1"
    assert second.headers["authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()
    assert first.headers["content-type"] == "application/json"
    assert set(first.body) == {"requestBody", "context", "config"} and first.body["config"] == {"k": "v"}
    assert set(second.body) == {"requestBody", "responseBody", "context", "config"}
    assert first.body["requestBody"]["model"] == "openai-main/gpt-4o-mini"
    assert first.body["context"]["metadata"] == {"ip_address": "10.0.0.9", "session_id": "s-9"}
    assert first.body["context"]["user"]["subjectType"] == "user"
    assert second.body["responseBody"]["choices"][0]["message"]["content"] == "Hello from fake-openai"
    assert fake_llm_client.last_request().model == "gpt-4o-mini"  # the provider sees the model, not the TFY id


def test_admin_api_masks_secrets(guardrail: ScriptedServer, tfy: Any) -> None:
    shown = tfy.set_guardrails([config(guardrail, auth={"type": "bearer", "token": "tok-secret"},
                                       headers={"Authorization": "raw-secret", "x-plain": "p"})])
    text = json.dumps(shown)
    assert "tok-secret" not in text and "raw-secret" not in text and '"x-plain": "p"' in text


# ------------------------------------------------------------------------------------ Mutate and order


def test_input_mutates_run_by_priority_and_rewrite_the_request(guardrail: ScriptedServer, tfy: Any,
                                                                fake_llm_client: Any) -> None:
    tfy.set_guardrails([config(guardrail, "grp/second", path="/second", operation="mutate", priority=2),
                        config(guardrail, "grp/first", path="/first", operation="mutate", priority=1)])
    rewritten = {"model": "openai-main/gpt-4o-mini", "messages": [{"role": "user", "content": "rewritten by first"}]}
    guardrail.answer("/first", body={"verdict": True, "transformed": True, "result": rewritten})
    guardrail.answer("/second", body={"verdict": True, "transformed": False, "result": {"messages": []}})
    assert send(tfy, names=("grp/second", "grp/first")).status_code == 200
    assert [r.path for r in guardrail.received] == ["/first", "/second"]
    assert guardrail.received[1].body["requestBody"] == rewritten
    assert fake_llm_client.last_request().json_body["messages"] == rewritten["messages"]


def test_output_mutate_rewrites_the_answer(guardrail: ScriptedServer, tfy: Any) -> None:
    tfy.set_guardrails([config(guardrail, hook="llm_output", operation="mutate")])
    replaced = {"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "[redacted]"}, "finish_reason": "stop"}]}
    guardrail.answer(body={"verdict": True, "transformed": True, "result": replaced})
    response = send(tfy, hook="llm_output")
    assert response.json() == replaced


def test_akto_configured_as_mutate_changes_nothing(guardrail: ScriptedServer, tfy: Any, fake_llm_client: Any) -> None:
    tfy.set_guardrails([config(guardrail, operation="mutate")])
    guardrail.answer(body={})  # Akto's allow answer
    assert send(tfy, prompt="original").status_code == 200
    assert fake_llm_client.last_request().json_body["messages"] == [{"role": "user", "content": "original"}]


def test_validates_of_a_hook_run_in_parallel(guardrail: ScriptedServer, tfy: Any) -> None:
    tfy.set_guardrails([config(guardrail, "grp/a", path="/a"), config(guardrail, "grp/b", path="/b")])
    guardrail.answer("/a", barrier=2)  # each answers only once both calls have arrived
    guardrail.answer("/b", barrier=2)
    assert send(tfy, names=("grp/a", "grp/b")).status_code == 200
    assert all(c["status"] == 200 for c in tfy.last_exchange()["guardrails"])


def test_parallel_validation_cancels_the_model_call_on_a_block(guardrail: ScriptedServer, tfy: Any,
                                                                fake_llm_client: Any) -> None:
    fake_llm_client.update_script(first_byte_ms=20000)  # the model answers far later than anything else here
    tfy.set_guardrails([config(guardrail)])
    # The guardrail blocks once the model call has reached the provider: validation and the model call overlap.
    guardrail.answer(body={"verdict": False, "message": "no"}, gate=lambda: bool(fake_llm_client.requests()))
    assert send(tfy, timeout=15).status_code == 400
    assert tfy.last_exchange()["llm"] == "cancelled"  # not "completed": the 20 s answer was not awaited
    assert len(fake_llm_client.requests()) == 1


def test_sequential_validation_never_calls_the_model_on_a_block(guardrail: ScriptedServer, tfy: Any,
                                                                 fake_llm_client: Any) -> None:
    tfy.update_settings(parallel_input_validation=False)
    tfy.set_guardrails([config(guardrail)])
    guardrail.answer(body={"verdict": False, "message": "no"})
    assert send(tfy).status_code == 400
    assert tfy.last_exchange()["llm"] == "not_called"
    assert fake_llm_client.requests() == []


def test_output_block_is_reported_as_output(guardrail: ScriptedServer, tfy: Any, fake_llm_client: Any) -> None:
    tfy.set_guardrails([config(guardrail, hook="llm_output")])
    guardrail.answer(body={"verdict": False, "message": "leaks"})
    response = send(tfy, hook="llm_output")
    assert response.status_code == 400
    assert response.json()["message"] == "Output Guardrail checks failed for integrations: [grp/rail]"
    assert "output_guardrails" in response.json()["guardrail_checks"]
    assert tfy.last_exchange()["llm"] == "completed"  # the model was paid for


def test_provider_errors_pass_through_without_output_checks(guardrail: ScriptedServer, tfy: Any,
                                                            fake_llm_client: Any) -> None:
    fake_llm_client.fail(500)
    tfy.set_guardrails([config(guardrail, hook="llm_output")])
    assert send(tfy, hook="llm_output").status_code == 500
    assert guardrail.received == []


# ------------------------------------------------------------------------------------------ streaming


def test_stream_skips_output_guardrails_by_default(guardrail: ScriptedServer, tfy: Any) -> None:
    tfy.set_guardrails([config(guardrail, hook="llm_output")])
    guardrail.answer(body={"verdict": False, "message": "would block"})
    response = send(tfy, hook="llm_output", stream=True)
    assert response.status_code == 200 and "data: [DONE]" in response.text
    assert guardrail.received == []


def test_stream_in_buffer_mode_checks_the_assembled_answer(guardrail: ScriptedServer, tfy: Any) -> None:
    tfy.update_settings(output_guardrails_on_stream="buffer")
    tfy.set_guardrails([config(guardrail, hook="llm_output")])
    guardrail.answer(body={"verdict": False, "message": "would block"})
    assert send(tfy, hook="llm_output", stream=True).status_code == 400
    (call,) = guardrail.received
    assert call.body["responseBody"]["choices"][0]["message"]["content"] == "Hello from fake-openai"
    guardrail.answer(body={"verdict": True})
    response = send(tfy, hook="llm_output", stream=True)
    assert response.status_code == 200 and "data: [DONE]" in response.text


def test_stream_input_block_answers_json_before_streaming(guardrail: ScriptedServer, tfy: Any, fake_llm_client: Any) -> None:
    tfy.set_guardrails([config(guardrail)])
    guardrail.answer(body={"verdict": False})
    response = send(tfy, stream=True)
    assert response.status_code == 400 and response.json()["error"]["type"] == "guardrail_checks_failed"
    assert fake_llm_client.requests() == []


# ------------------------------------------------------------------------------- selection and bad input


def test_default_rule_applies_without_the_header(guardrail: ScriptedServer, tfy: Any) -> None:
    tfy.set_guardrails([config(guardrail)])
    tfy.update_settings(input_guardrails=["grp/rail"])
    guardrail.answer(body={"verdict": False})
    assert tfy.chat("hi").status_code == 400
    assert tfy.chat("hi", input_guardrails=[]).status_code == 200  # the header replaces the rule


@pytest.mark.parametrize("headers, message", [
    ({"x-tfy-guardrails": '{"llm_input_guardrails": ["grp/none"]}'}, "x-tfy-guardrails: no guardrail named 'grp/none'"),
    ({"x-tfy-guardrails": '{"llm_output_guardrails": ["grp/rail"]}'}, "x-tfy-guardrails: guardrail 'grp/rail' is a llm_input guardrail"),
    ({"x-tfy-guardrails": "nope"}, "x-tfy-guardrails is not JSON"),
    ({"x-tfy-metadata": '["a"]'}, "x-tfy-metadata must be a JSON object of strings"),
])
def test_bad_selection_headers_get_400(guardrail: ScriptedServer, tfy: Any, headers: dict[str, str], message: str) -> None:
    tfy.set_guardrails([config(guardrail)])
    response = tfy._http.post("/api/llm/chat/completions", headers=headers,
                              json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message


def test_bad_chat_body_gets_400(tfy: Any) -> None:
    response = tfy._http.post("/api/llm/chat/completions", json={"model": "m"})
    assert (response.status_code, response.json()["error"]["message"]) == (400, "messages must be a list")


@pytest.mark.parametrize("bad, field", [
    ({"name": "no-slash", "url": "http://127.0.0.1:1/x", "hook": "llm_input"}, "name"),
    ({"name": "g/c", "url": "ftp://x", "hook": "llm_input"}, "url"),
    ({"name": "g/c", "url": "http://127.0.0.1:1/x", "hook": "llm_sideways"}, "hook"),
    ({"name": "g/c", "url": "http://127.0.0.1:1/x", "hook": "llm_input", "timeout_s": 0}, "timeout_s"),
    ({"name": "g/c", "url": "http://127.0.0.1:1/x", "hook": "llm_input", "enforcing_strategy": "strict"}, "enforcing_strategy"),
])
def test_admin_api_refuses_bad_guardrails_naming_the_field(tfy: Any, bad: dict[str, Any], field: str) -> None:
    response = tfy._http.post("/__tfy/guardrails", json=bad)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_admin_api_refuses_unknown_settings(tfy: Any) -> None:
    with pytest.raises(TfyGatewayError, match="422.*contract"):
        tfy.update_settings(contract="newest")
    with pytest.raises(TfyGatewayError, match="422.*typo"):
        tfy.update_settings(typo=True)
