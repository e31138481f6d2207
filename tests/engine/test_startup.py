"""``mock-akto serve --state PATH``: the engine starts already scripted (policies, fault rules, scripted
verdicts from a folder of apply files), every namespace starts from that state, and ``reset`` returns to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from harness.process import ManagedProcess, free_port, port_open
from mock_akto.errors import PresetFileError
from mock_akto.startup import load_state
from test_matching import litellm_body

pytestmark = pytest.mark.timeout(120)


def write_state(folder: Path) -> Path:
    folder.mkdir()
    (folder / "10-policies.yaml").write_text("policy_preset: block-all\n", encoding="utf-8")
    (folder / "20-faults.yaml").write_text(
        "faults:\n  - id: slow-egress\n    match: {connector: egress}\n    fault: {type: status, status: 503}\n",
        encoding="utf-8")
    (folder / "30-verdicts.yaml").write_text(
        "verdicts:\n  - id: vip\n    match: {headers: {x-tier: vip}}\n"
        "    answer: {verdict: {Allowed: true, Reason: vip pass}}\n", encoding="utf-8")
    return folder


def test_serve_starts_scripted_from_a_folder(tmp_path: Path) -> None:
    state = write_state(tmp_path / "state")
    port = free_port()
    engine = ManagedProcess("state-engine", [sys.executable, "-m", "mock_akto", "serve", "--port", str(port),
                                             "--state", str(state)], ready=port_open(port), startup_timeout=60)
    with engine, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, trust_env=False) as http:
        for prefix in ("", "/ns/fresh-one"):
            plain = http.post(f"{prefix}/api/http-proxy?guardrails=true", json=litellm_body("hi"))
            vip = http.post(f"{prefix}/api/http-proxy?guardrails=true", json=litellm_body("hi", **{"x-tier": "vip"}))
            egress = http.post(f"{prefix}/api/http-proxy?guardrails=true&akto_connector=egress", json=litellm_body("hi"))
            assert plain.json()["data"]["guardrailsResult"]["Allowed"] is False  # block-all policies
            assert vip.json()["data"]["guardrailsResult"]["Reason"] == "vip pass"  # scripted verdict
            assert egress.status_code == 503  # fault rule
        http.delete("/__admin/faults/rules/slow-egress").raise_for_status()
        http.post("/__admin/reset").raise_for_status()
        assert [r["id"] for r in http.get("/__admin/faults/rules").json()] == ["slow-egress"]  # reset: back to the state


def test_a_bad_state_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("verdicts:\n  - answer: {verdict: {Allowed: false}}\n    sequence: []\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "mock_akto", "serve", "--port", "0", "--state", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "bad.yaml" in result.stderr
    down = tmp_path / "down.yaml"
    down.write_text("faults:\n  - fault: {type: down}\n", encoding="utf-8")
    with pytest.raises(PresetFileError, match="'down' cannot be a start-up rule"):
        load_state(down)
    two = write_state(tmp_path / "two")
    (two / "40-more-policies.yaml").write_text("policy_preset: allow-all\n", encoding="utf-8")
    with pytest.raises(PresetFileError, match="already did"):
        load_state(two)
