"""``akto-harness conformance`` over real hosts: a LiteLLM config (a custom class, the built-in ``akto``),
a mitmproxy addon file, a guardrail endpoint (started from a command, or unreachable), profiles, the three
reports, and bad input as one clear error (exit 2) within a bounded time."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.hosts.truefoundry_endpoint import TEST_JWT_SECRET
from harness.process import free_port
from harness.resources import egress_addon

CLI = str(Path(sys.executable).with_name("akto-harness"))
REFERENCE_CLASS = "reference_impl.litellm.guardrail.AktoGuardrail"
#: Each run starts its own engine, fake LLM and host; LiteLLM alone can take a minute on a loaded 2-core box.
RUN_TIMEOUT_S = 280
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def conformance(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "conformance", *args], cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def litellm_config(folder: Path, guardrail: str, *, mcp: bool = False) -> Path:
    modes = [("akto-validate", "pre_call"), ("akto-ingest", "post_call")]
    if mcp:
        modes += [("akto-mcp-validate", "pre_mcp_call"), ("akto-mcp-ingest", "post_mcp_call")]
    entries = [{"guardrail_name": name, "litellm_params": {"guardrail": guardrail, "mode": mode, "default_on": True,
                                                           "akto_base_url": "http://akto.invalid", "akto_api_key": "os.environ/AKTO_API_KEY"}}
               for name, mode in modes]
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"model_list": [{"model_name": "prod", "litellm_params": {"model": "openai/gpt-4o"}}],
                                    "guardrails": entries, "general_settings": {"master_key": "sk-theirs"}}))
    return path


def test_a_litellm_config_target_with_a_profile_writes_three_reports_and_flags_an_unexpected_pass(tmp_path):
    litellm_config(tmp_path, REFERENCE_CLASS)
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump({
        "expected_failures": [{"scenario": "allow", "reason": "TICKET-1: we think allow is broken"}]}))
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"litellm_config": "config.yaml", "profile": "profile.yaml"}))
    run = conformance("--target", "mine.yaml", "--scenario", "[ab]l[lo]?[kw]", "--junit", "out/j.xml", "--markdown",
                      "out/m.md", "--html", "out/m.html", cwd=tmp_path)
    assert run.returncode == 1, run.stderr  # the expected failure passed: a difference
    html = (tmp_path / "out/m.html").read_text()
    assert "PASSED (unexpected)" in html and "TICKET-1: we think allow is broken" in html
    assert html.count("observed: <b>pass</b>") == 1  # block passed as the litellm profile expects
    junit = (tmp_path / "out/j.xml").read_text()
    assert 'classname="mine" name="allow"' in junit and "<failure" in junit
    assert "| block | ✅ pass |" in (tmp_path / "out/m.md").read_text().replace("❗ gap fixed? [1]", "")


def test_a_config_using_litellms_builtin_akto_is_judged_by_its_shipped_profile(tmp_path):
    config = litellm_config(tmp_path, "akto")
    run = conformance("--litellm-config", str(config), "--scenario", "block", "--html", "m.html", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "failed (as expected)" in (tmp_path / "m.html").read_text()  # the built-in's known gap


def test_mcp_tool_calls_through_litellms_builtin_in_its_mcp_modes(tmp_path):
    """A real proxy with the built-in in pre_mcp_call / post_mcp_call, over the fake MCP server: allow, a blocked
    result and an engine outage pass; the blocked arguments are its known gap (a strict expected failure)."""
    config = litellm_config(tmp_path, "akto", mcp=True)
    run = conformance("--litellm-config", str(config), "--scenario", "mcp-*", "--markdown", "m.md", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {line.split("|")[1].strip(): line for line in (tmp_path / "m.md").read_text().splitlines() if line.startswith("| mcp-")}
    assert set(rows) == {"mcp-tool-call-allow", "mcp-tool-call-block", "mcp-tool-result-block", "mcp-tool-call-engine-down"}
    assert all("pass" in rows[name] for name in ("mcp-tool-call-allow", "mcp-tool-result-block", "mcp-tool-call-engine-down"))
    assert "pass" not in rows["mcp-tool-call-block"]


def test_a_config_without_mcp_entries_marks_the_mcp_scenarios_not_applicable(tmp_path):
    config = litellm_config(tmp_path, "akto")
    run = conformance("--litellm-config", str(config), "--scenario", "mcp-*", "--html", "m.html", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    html = (tmp_path / "m.html").read_text()
    assert html.count("it does not guard MCP tool calls") == 4


def test_a_config_whose_guardrail_does_not_load_is_one_clear_error(tmp_path):
    config = litellm_config(tmp_path, "no_such_module.NoGuardrail")
    started = time.monotonic()
    run = conformance("--litellm-config", str(config), "--scenario", "allow", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "target 'config' did not start" in run.stderr
    assert "no_such_module" in run.stderr  # the host's last log lines
    assert time.monotonic() - started < RUN_TIMEOUT_S


def test_an_addon_that_does_not_load_is_one_clear_error(tmp_path):
    addon = tmp_path / "broken_addon.py"
    addon.write_text("raise RuntimeError('this addon is broken on purpose')\n")
    run = conformance("--mitm-addon", str(addon), "--scenario", "allow", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "target 'broken_addon' did not start" in run.stderr
    assert "this addon is broken on purpose" in run.stderr


def test_an_addon_file_runs_in_the_harness_mitmdump(tmp_path):
    run = conformance("--mitm-addon", str(egress_addon()), "--scenario", "block", "--markdown", "m.md", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "| block | ✅ pass |" in (tmp_path / "m.md").read_text()


def test_an_unreachable_guardrail_url_is_one_clear_error(tmp_path, akto_engine):
    url = f"http://127.0.0.1:{free_port()}/guard"
    run = conformance("--guardrail-url", url, "--engine-url", akto_engine.url, "--scenario", "block", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert f"guardrail endpoint {url} is unreachable" in run.stderr


def test_a_guardrail_endpoint_started_from_a_command(tmp_path):
    (tmp_path / "endpoint.yaml").write_text(yaml.safe_dump({
        "name": "tfy",
        "guardrail_url": "http://127.0.0.1:{port}/api/http-proxy/truefoundry",
        "command": [sys.executable, "-m", "reference_impl.truefoundry", "--port", "{port}", "--akto-url", "{engine_url}",
                    "--fail-mode", "{fail_mode}", "--timeout", "{timeout_s}"],
        "env": {"AKTO_TFY_JWT_SECRET": TEST_JWT_SECRET},
    }))
    run = conformance("--target", "endpoint.yaml", "--scenario", "block", "--markdown", "m.md", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "| block | ✅ pass |" in (tmp_path / "m.md").read_text()


@pytest.mark.parametrize(("profile", "message"), [
    ({"expected_failures": [{"scenario": "allow"}]}, "expected_failures.0.reason: Field required"),
    ({"not_applicable": [{"scenario": "no-such-*", "reason": "x"}]}, "'no-such-*' matches no scenario"),
    ({"base": "nginx"}, "unknown profile 'nginx'"),
])
def test_a_bad_profile_is_refused_before_anything_starts(tmp_path, profile, message):
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(profile))
    run = conformance("--reference", "litellm", "--profile", str(tmp_path / "p.yaml"), cwd=tmp_path)
    assert run.returncode == 2 and message in run.stderr, run.stderr


def test_a_target_file_naming_two_kinds_is_refused(tmp_path):
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"reference": "litellm", "mitm_addon": "x.py"}))
    run = conformance("--target", str(tmp_path / "t.yaml"), cwd=tmp_path)
    assert run.returncode == 2 and "give exactly one of" in run.stderr, run.stderr
