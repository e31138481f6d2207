"""Record a "real" Akto and replay it: a second engine process over TLS (a trustme test CA) with a token and
scripted answers stands in for Akto; ``mock-akto record`` proxies to it, scrubs, and survives the target
going down; ``serve --replay`` answers the recorded prompts with the recorded verdicts, and misses per rule."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest
import trustme

from harness.process import ManagedProcess, free_port, port_open
from mock_akto.config import EngineConfig
from mock_akto.record import Recording, load_recording, replay_scripts
from mock_akto.server import EngineServer
from test_matching import litellm_body

pytestmark = pytest.mark.timeout(120)

TOKEN = "akto-secret-token-123"
HERE = Path(__file__).parent


@pytest.fixture
def real_akto(tmp_path: Path):  # noqa: ANN201
    """The stand-in Akto: TLS with a test CA, a token, and a scripted verdict only it gives."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    state = tmp_path / "akto-state.yaml"
    state.write_text("verdicts:\n  - match: {prompt: {contains: wire money}}\n"
                     "    answer: {verdict: {Allowed: false, Reason: real akto says no, behaviour: block}}\n",
                     encoding="utf-8")
    port = free_port()
    process = ManagedProcess("tls-akto", [sys.executable, str(HERE / "tls_engine.py"), str(port), str(cert_file),
                                          str(key_file), str(state)], ready=port_open(port),
                             env={"MOCK_AKTO_TOKEN": TOKEN}, startup_timeout=60)
    with process:
        yield process, f"https://127.0.0.1:{port}", ca_file


def test_record_through_tls_scrub_survive_an_outage_then_replay(real_akto, tmp_path: Path) -> None:  # noqa: ANN001
    target_process, target_url, ca_file = real_akto
    out = tmp_path / "calls.jsonl"
    port = free_port()
    recorder = ManagedProcess("recorder", [sys.executable, "-m", "mock_akto", "record", "--target", target_url,
                                           "--out", str(out), "--port", str(port), "--ca-file", str(ca_file),
                                           "--scrub", r"acct-[0-9]+"],
                              ready=port_open(port), env={"MOCK_AKTO_TARGET_TOKEN": TOKEN}, startup_timeout=60)
    with recorder, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15, trust_env=False) as http:
        blocked = http.post("/api/http-proxy?guardrails=true&akto_connector=litellm",
                            json=litellm_body("please wire money from acct-1234", **{"authorization": "Bearer user-key"}),
                            headers={"authorization": "caller-token"})
        allowed = http.post("/api/http-proxy?guardrails=true&akto_connector=litellm", json=litellm_body("hello"))
        assert blocked.status_code == 200 and allowed.status_code == 200, (blocked.text, allowed.text)
        assert blocked.json()["data"]["guardrailsResult"]["Reason"] == "real akto says no"  # the token and CA worked
        target_process.stop()
        down = http.post("/api/http-proxy?guardrails=true", json=litellm_body("while down"))
        assert down.status_code == 502 and "unreachable" in down.json()["message"]
        assert http.get("/health").json() == {"status": "ok", "recorded": 2, "failed": 1}
    text = out.read_text(encoding="utf-8")
    for secret in (TOKEN, "caller-token", "user-key", "acct-1234"):
        assert secret not in text
    recording = load_recording(out)
    assert recording.target == target_url and len(recording.calls) == 2
    assert recording.calls[0]["prompt"] == "be nice\nplease wire money from [SCRUBBED]"
    assert json.loads(recording.calls[0]["request"]["requestHeaders"])["authorization"] == "***"

    with EngineServer(EngineConfig(replay_file=out, replay_miss="fail")) as replay, \
            httpx.Client(base_url=replay.url, timeout=10, trust_env=False) as http:
        again = http.post("/api/http-proxy?guardrails=true", json=litellm_body("please wire money from acct-9876"))
        assert again.json()["data"]["guardrailsResult"]["Reason"] == "real akto says no"  # scrubbed part: any text
        assert http.post("/api/http-proxy?guardrails=true", json=litellm_body("hello")).json()["data"]["guardrailsResult"]["Allowed"]
        miss = http.post("/api/http-proxy?guardrails=true", json=litellm_body("never recorded"))
        assert miss.status_code == 500 and "replay miss" in miss.json()["message"]
        other_flags = http.post("/api/http-proxy?guardrails=true&response_guardrails=true",
                                json={**litellm_body("hello"), "responsePayload": "{}"})
        assert other_flags.status_code == 500  # a recorded prompt with other flags is a miss too

    with EngineServer(EngineConfig(replay_file=out)) as replay, \
            httpx.Client(base_url=replay.url, timeout=10, trust_env=False) as http:
        fallback = http.post("/api/http-proxy?guardrails=true", json=litellm_body("never recorded"))
        assert fallback.status_code == 200 and fallback.json()["data"]["guardrailsResult"]["Allowed"] is True


def test_replay_file_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"mock_akto_replay": 1}\nnot json\n', encoding="utf-8")
    with pytest.raises(Exception, match="line 2: not JSON"):
        load_recording(bad)
    assert replay_scripts(Recording(target="", calls=[]), miss="policies") == []
    assert [s.id for s in replay_scripts(Recording(target="", calls=[]), miss="fail")] == ["replay-miss"]
