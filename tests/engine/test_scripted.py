"""Scripted verdicts over real sockets: one verdict, a sequence ("block the 2nd call, redact the 3rd"), the
merged request/response shape, /api/validate/*, and the same model from the client, the CLI and a YAML
apply file; plus verification with a deadline and near-misses."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from mock_akto import cli
from mock_akto.errors import AdminError, VerificationError

from test_matching import litellm_body

pytestmark = pytest.mark.timeout(60)

BLOCK = {"Allowed": False, "Reason": "scripted block", "behaviour": "block",
         "Metadata": {"policy_name": "script", "rule_violated": "Scripted", "severity": "HIGH", "reason": "scripted"}}


def guardrails(http: httpx.Client, prompt: str, query: str = "guardrails=true&akto_connector=litellm") -> dict:
    response = http.post(f"/api/http-proxy?{query}", json=litellm_body(prompt))
    assert response.status_code == 200, response.text
    return response.json()["data"]["guardrailsResult"]


def test_one_scripted_verdict_answers_matching_calls_only(akto) -> None:  # noqa: ANN001
    akto.client.add_verdict(match={"prompt": {"contains": "wire money"}}, answer={"verdict": BLOCK})
    with httpx.Client(base_url=akto.url, timeout=10, trust_env=False) as http:
        scripted = guardrails(http, "please wire money to x")
        policies = guardrails(http, "hello")
    assert scripted["Allowed"] is False and scripted["Reason"] == "scripted block" and scripted["behaviour"] == "block"
    assert scripted["Metadata"]["policy_name"] == "script"
    assert policies["Allowed"] is True
    [entry] = akto.client.find({"prompt": {"contains": "wire"}})
    assert entry.note and entry.note.startswith("scripted verdict") and entry.request_verdict.allowed is False  # type: ignore[union-attr]


def test_a_sequence_blocks_the_second_call_and_redacts_the_third(akto) -> None:  # noqa: ANN001
    redacted = {"Allowed": True, "Modified": True, "ModifiedPayload": "[REDACTED]", "Reason": "redacted", "behaviour": "alert"}
    stored = akto.client.add_verdict(match={"connector": "litellm"},
                                     sequence=[{"policies": True}, {"verdict": BLOCK}, {"verdict": redacted}])
    with httpx.Client(base_url=akto.url, timeout=10, trust_env=False) as http:
        results = [guardrails(http, "same prompt") for _ in range(4)]
    assert [r["Allowed"] for r in results] == [True, False, True, True]
    assert [r["Modified"] for r in results] == [False, False, True, False]
    assert results[2]["ModifiedPayload"] == "[REDACTED]"
    [listed] = akto.client.verdicts()
    assert (listed.id, listed.matched, listed.applied) == (stored.id, 3, 3)


def test_merged_shape_and_validate_routes(akto) -> None:  # noqa: ANN001
    akto.client.add_verdict(answer={"response": BLOCK})
    with httpx.Client(base_url=akto.url, timeout=10, trust_env=False) as http:
        body = {**litellm_body("hi"), "responsePayload": json.dumps({"choices": [{"message": {"content": "ok"}}]})}
        merged = http.post("/api/http-proxy?guardrails=true&response_guardrails=true", json=body).json()["data"]["guardrailsResult"]
        bare = http.post("/api/validate/response", json=body).json()
        request_side = http.post("/api/validate/request", json=body).json()
    assert merged["Allowed"] is False and merged["requestResult"]["Allowed"] is True
    assert merged["responseResult"]["Reason"] == "scripted block"
    assert bare["Allowed"] is False and bare["Reason"] == "scripted block"
    assert request_side["Allowed"] is True  # the step scripts only the response side: the policies decide the request


def test_a_typo_in_a_verdict_is_refused_not_ignored(akto) -> None:  # noqa: ANN001
    with pytest.raises(AdminError) as refused:
        akto.client._call("POST", "/verdicts", json={"answer": {"verdict": {"Alowed": False}}})
    assert refused.value.status == 422 and "unknown verdict field(s) Alowed" in str(refused.value.detail)


def test_cli_and_apply_file_share_the_model(akto, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    base = ["--url", akto.engine_url, "-n", akto.namespace]
    assert cli.main(["verdict", "add", *base, "--match", '{"prompt": {"contains": "refund"}}', "--block", "no refunds"]) == 0
    apply_file = tmp_path / "state.yaml"
    apply_file.write_text("verdicts:\n  - id: fraud\n    match: {prompt: {contains: wire}}\n"
                          "    answer: {verdict: {Allowed: false, Reason: fraud}}\n", encoding="utf-8")
    assert cli.main(["apply", *base, str(apply_file)]) == 0  # replaces the scripted verdicts
    capsys.readouterr()
    assert cli.main(["verdict", "list", *base]) == 0
    listed = capsys.readouterr().out
    assert "fraud:" in listed and "no refunds" not in listed
    with httpx.Client(base_url=akto.url, timeout=10, trust_env=False) as http:
        assert guardrails(http, "wire it")["Reason"] == "fraud"


def test_verify_waits_for_a_late_call_and_explains_near_misses(akto) -> None:  # noqa: ANN001
    with httpx.Client(base_url=akto.url, timeout=10, trust_env=False) as http:
        guardrails(http, "hello", "guardrails=true&akto_connector=egress")
        timer = threading.Timer(0.3, lambda: guardrails(httpx.Client(base_url=akto.url, timeout=10, trust_env=False),
                                                         "late one"))
        timer.start()
        try:
            result = akto.client.verify({"connector": "litellm", "prompt": {"contains": "late"}}, 1, timeout=10)
        finally:
            timer.join(10)
    assert result.ok and result.count == 1
    with pytest.raises(VerificationError) as failed:
        akto.client.verify({"connector": "litellm", "prompt": {"contains": "hello"}}, 1)
    message = str(failed.value)
    assert "expected exactly 1 call(s)" in message and "found 0" in message
    assert "connector=egress" in message and "connector: expected equal 'litellm' (any case), got 'egress'" in message
    misses = {miss.call.split(" prompt=")[0].split(" ", 3)[-1]: miss.failed for miss in failed.value.result.near_misses}
    assert ["connector: expected equal 'litellm' (any case), got 'egress'"] in misses.values()
    assert ["prompt: expected contains 'hello', got 'be nice\\nlate one'"] in misses.values()


def test_verify_from_the_cli_exits_1_with_near_misses(akto, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    with httpx.Client(base_url=akto.url, timeout=10, trust_env=False) as http:
        guardrails(http, "hello")
    base = ["--url", akto.engine_url, "-n", akto.namespace]
    assert cli.main(["verify", *base, "--match", '{"prompt": {"contains": "hello"}}', "--count", "1"]) == 0
    assert cli.main(["verify", *base, "--match", '{"allowed": false}', "--wait", "0.2"]) == 1
    assert "allowed: expected False, got True" in capsys.readouterr().err
