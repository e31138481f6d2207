"""The ``akto_harness`` plugin: importing it changes nothing, and its settings are overridable fixtures."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

SETTINGS_ENV = ("AKTO_HARNESS_ENGINE_URL", "AKTO_HARNESS_FAKE_LLM_URL", "AKTO_HARNESS_EGRESS_ADDON",
                "LITELLM_LOCAL_MODEL_COST_MAP")


def clean_env() -> dict[str, str]:
    """This process's environment without the variables the plugin reads or used to set."""
    return {name: value for name, value in os.environ.items() if name not in SETTINGS_ENV}


def test_importing_the_plugin_leaves_the_environment_unchanged() -> None:
    probe = ("import os; before = dict(os.environ); import harness.pytest_plugin; "
             "changed = sorted(set(os.environ.items()) ^ set(before.items())); "
             "print(changed); raise SystemExit(1 if changed else 0)")
    result = subprocess.run([sys.executable, "-c", probe], env=clean_env(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"importing the plugin changed os.environ: {result.stdout}{result.stderr}"


OVERRIDDEN = '''
import pytest

@pytest.fixture(scope="session")
def akto_engine_url():
    return "http://127.0.0.1:9/from-conftest"
'''

USES_ENGINE = '''
def test_engine_url(akto_engine):
    print("ENGINE_URL=" + akto_engine.url)
'''


def run_inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    """The inner suite in its own process (the plugin loads from its entry point there), bounded in time."""
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AKTO_HARNESS_ENGINE_URL", "http://127.0.0.1:9/from-env")
    pytester.makepyfile(test_inner=USES_ENGINE)
    return pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", "-p", "no:xdist", timeout=90)


def test_a_conftest_override_of_the_engine_url_setting_wins_over_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makeconftest(OVERRIDDEN)
    result = run_inner(pytester, monkeypatch)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ENGINE_URL=http://127.0.0.1:9/from-conftest*"])


def test_the_environment_variable_is_the_default_of_the_engine_url_setting(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run_inner(pytester, monkeypatch)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ENGINE_URL=http://127.0.0.1:9/from-env*"])


FAILS_AFTER_A_CALL = '''
import httpx

def test_fails(akto):
    httpx.post(akto.url + "/api/http-proxy?guardrails=true&akto_connector=litellm",
               json={"requestPayload": "jailbreak-canary"}, timeout=10)
    assert False, "the test's own failure"
'''


def test_a_failing_test_shows_its_namespace_journal_in_the_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, akto_engine,  # noqa: ANN001
) -> None:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AKTO_HARNESS_ENGINE_URL", akto_engine.url)  # the inner suite reuses this worker's engine
    pytester.makepyfile(test_inner=FAILS_AFTER_A_CALL)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", timeout=90)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the test's own failure*", "*akto journal (namespace *, newest 20)*",
                                 "*#1 * POST /api/http-proxy -> 200 *connector=litellm*"])
