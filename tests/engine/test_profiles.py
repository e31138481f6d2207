"""Akto contract profiles over real sockets: the engine plays the chosen version of Akto's contract, per
namespace (admin API, client, CLI) or engine-wide (``--akto-profile``)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from mock_akto.profiles import DEFAULT_PROFILE, PROFILES, ProfileChoice, UnknownProfile

BLOCK_WORD = "forbidden-zebra"
BLOCK_POLICY = {"name": "zebra", "matcher": {"keywords": [BLOCK_WORD]}, "action": "block", "reason": "Zebra talk"}
PROXY = "/api/http-proxy"
TRUEFOUNDRY = "/api/http-proxy/truefoundry"


@pytest.fixture
def engine(akto):  # noqa: ANN001 - the harness fixture
    akto.client.add_policy(BLOCK_POLICY)
    return akto


def check(http: httpx.Client, url: str, text: str = "hello", **flags: str) -> httpx.Response:
    return http.post(f"{url}{PROXY}", params=flags or {"guardrails": "true"}, json={"requestPayload": text})


# --------------------------------------------------------------------------------------------- the registry


def test_current_is_the_default_and_every_profile_names_its_source() -> None:
    assert DEFAULT_PROFILE == "current" and next(iter(PROFILES)) == "current"
    current = PROFILES["current"]
    assert (current.legacy_payload, current.gateway_fail_open, current.truefoundry_sync) == ("ignored", "on", "ignored")
    assert current.guardrails_client_timeout_ms == 3000
    assert all(profile.source and profile.description for profile in PROFILES.values())
    assert PROFILES["gateway-fail-open-off"].gateway_timeout_s is None


def test_a_choice_resolves_by_name_and_refuses_unknown_names_and_short_timeouts() -> None:
    assert ProfileChoice(name="current", guardrails_client_timeout_ms=500).resolve().gateway_timeout_s == 0.5
    with pytest.raises(UnknownProfile, match="known: current, "):
        ProfileChoice(name="next-year").resolve()
    with pytest.raises(ValueError, match="greater than or equal to 500"):
        ProfileChoice(guardrails_client_timeout_ms=499)


# --------------------------------------------------------------------------------------------- admin API and client


def test_a_namespace_plays_the_profile_it_is_given_until_reset(engine) -> None:
    client = engine.client
    assert client.akto_profile().name == "current"
    assert [p.name for p in client.akto_profiles()] == list(PROFILES)
    chosen = client.set_akto_profile("gateway-fail-open-off")
    assert chosen.name == "gateway-fail-open-off" and client.akto_profile() == chosen
    client.reset()
    assert client.akto_profile().name == "current"


def test_profiles_are_per_namespace(engine, akto_engine_url) -> None:
    engine.client.set_akto_profile("validate-legacy-payload")
    other = engine.client.for_namespace(engine.namespace + "-other")
    try:
        assert other.akto_profile().name == "current"
    finally:
        other.reset()


def test_the_admin_api_refuses_an_unknown_profile_naming_the_known_ones(engine, http) -> None:
    response = http.put(f"{engine.url}/__admin/akto-profile", json={"name": "next-year"})
    assert response.status_code == 422
    assert "known: current" in response.text
    response = http.put(f"{engine.url}/__admin/akto-profile", json={"name": "current", "guardrails_client_timeout_ms": 100})
    assert response.status_code == 422 and "guardrails_client_timeout_ms" in response.text
    assert engine.client.akto_profile().name == "current"


# --------------------------------------------------------------------------------------------- legacy `payload`


def test_legacy_payload_is_a_silent_allow_today_and_read_by_the_legacy_profile(engine, http) -> None:
    body = {"payload": f"some {BLOCK_WORD}"}
    today = http.post(f"{engine.url}/api/validate/request", json=body).json()
    assert today["Allowed"] is True and today["Reason"] == "No request body provided"
    engine.client.set_akto_profile("validate-legacy-payload")
    legacy = http.post(f"{engine.url}/api/validate/request", json=body).json()  # the same body: not memoised across
    assert legacy["Allowed"] is False and legacy["Reason"] == "Zebra talk"
    first, second = engine.client.journal(path="/api/validate/request")
    assert "ignored" in first.note and "validate-legacy-payload" in second.note


# --------------------------------------------------------------------------------------------- gateway fail-open


def test_slow_guardrails_is_a_soft_allow_at_the_gateway_timeout_in_profile_current(engine, http) -> None:
    engine.client.set_akto_profile("current", guardrails_client_timeout_ms=500)
    engine.client.add_fault({"type": "slow_guardrails", "ms": 5000})
    started = time.perf_counter()
    response = check(http, engine.url, f"a {BLOCK_WORD}")  # would be blocked, had guardrails-service answered
    elapsed = time.perf_counter() - started
    result = response.json()["data"]["guardrailsResult"]
    assert response.status_code == 200 and 0.5 <= elapsed < 2.0
    assert result["Allowed"] is True and result["failOpen"] is True
    assert "GUARDRAILS_CLIENT_TIMEOUT_MS (500 ms)" in result["error"]


def test_slow_guardrails_reaches_the_caller_late_with_the_gateway_fail_open_off(engine, http) -> None:
    engine.client.set_akto_profile("gateway-fail-open-off")
    engine.client.add_fault({"type": "slow_guardrails", "ms": 800})
    started = time.perf_counter()
    response = check(http, engine.url, f"a {BLOCK_WORD}")
    assert time.perf_counter() - started >= 0.8
    assert response.json()["data"]["guardrailsResult"]["Allowed"] is False  # the real verdict, late


def test_slow_guardrails_faster_than_the_gateway_timeout_is_the_real_verdict(engine, http) -> None:
    engine.client.set_akto_profile("current", guardrails_client_timeout_ms=2000)
    engine.client.add_fault({"type": "slow_guardrails", "ms": 300})
    started = time.perf_counter()
    result = check(http, engine.url, f"a {BLOCK_WORD}").json()["data"]["guardrailsResult"]
    assert 0.3 <= time.perf_counter() - started < 1.5
    assert result["Allowed"] is False and "failOpen" not in result


def test_the_2026_h1_gateway_answers_the_lower_case_deny(engine, http) -> None:
    engine.client.set_akto_profile("gateway-2026-h1", guardrails_client_timeout_ms=500)
    engine.client.add_fault({"type": "slow_guardrails", "ms": 5000})
    result = check(http, engine.url).json()["data"]["guardrailsResult"]
    assert result["allowed"] is False and "Allowed" not in result
    assert result["reason"].startswith("Guardrails validation failed")


def test_no_gateway_stands_before_an_ingest_only_call_or_the_validate_routes(engine, http) -> None:
    engine.client.set_akto_profile("current", guardrails_client_timeout_ms=500)
    engine.client.add_fault({"type": "slow_guardrails", "ms": 700})
    started = time.perf_counter()
    ingest = check(http, engine.url, ingest_data="true")
    direct = http.post(f"{engine.url}/api/validate/request", json={"requestPayload": BLOCK_WORD})
    assert time.perf_counter() - started >= 1.4  # both waited the whole 700 ms: no gateway timeout in front
    assert "guardrailsResult" not in ingest.json()["data"] and direct.json()["Allowed"] is False


def test_fixed_delay_means_the_same_under_every_profile(engine, http) -> None:
    # fixed_delay is the ingestion service's own answer being late (network, gateway): never a soft allow
    engine.client.set_akto_profile("current", guardrails_client_timeout_ms=500)
    engine.client.add_fault({"type": "fixed_delay", "ms": 900})
    started = time.perf_counter()
    result = check(http, engine.url, f"a {BLOCK_WORD}").json()["data"]["guardrailsResult"]
    assert time.perf_counter() - started >= 0.9 and result["Allowed"] is False


# --------------------------------------------------------------------------------------------- TrueFoundry sync


def tfy_input(text: str) -> dict:
    return {"requestBody": {"model": "m", "messages": [{"role": "system", "content": "be nice"},
                                                       {"role": "user", "content": text}]},
            "context": {}, "config": {}}


@pytest.mark.parametrize("sync", [None, "true", "false"])
def test_truefoundry_checks_input_whatever_sync_says_today(engine, http, sync) -> None:
    params = {} if sync is None else {"sync": sync}
    blocked = http.post(f"{engine.url}{TRUEFOUNDRY}", params=params, json=tfy_input(f"a {BLOCK_WORD}"))
    allowed = http.post(f"{engine.url}{TRUEFOUNDRY}", params=params, json=tfy_input("hello"))
    assert (blocked.status_code, blocked.json()) == (400, {})
    assert (allowed.status_code, allowed.json()) == (200, {})
    [record] = engine.client.ingest_records()  # only the blocked call is recorded
    assert (record.statusCode, record.status) == ("400", "forbidden")
    assert "x-blocked-by" in record.responsePayload and BLOCK_WORD in record.requestPayload
    assert "be nice" not in record.requestPayload  # cut to the last user message


def test_truefoundry_2026_02_only_checks_input_with_sync_true(engine, http) -> None:
    engine.client.set_akto_profile("truefoundry-2026-02")
    body = tfy_input(f"a {BLOCK_WORD}")
    assert http.post(f"{engine.url}{TRUEFOUNDRY}", params={"sync": "true"}, json=body).status_code == 400
    assert http.post(f"{engine.url}{TRUEFOUNDRY}", params={"sync": "false"}, json=body).status_code == 200
    assert http.post(f"{engine.url}{TRUEFOUNDRY}", json=body).status_code == 200  # absent meant async: a no-op
    output = dict(body, responseBody={"choices": [{"message": {"role": "assistant", "content": "ok"}}]})
    assert http.post(f"{engine.url}{TRUEFOUNDRY}", json=output).status_code == 200  # checked in the background
    entries = engine.client.journal(path=TRUEFOUNDRY)
    assert [e.flags.guardrails for e in entries] == [True, False, False, True]
    assert entries[-1].request_verdict is not None and not entries[-1].request_verdict.allowed
    assert [r.statusCode for r in engine.client.ingest_records()] == ["400", "200"]


def test_truefoundry_without_request_body_is_422_with_empty_action_errors(engine, http) -> None:
    response = http.post(f"{engine.url}{TRUEFOUNDRY}", json={"config": {}})
    assert (response.status_code, response.json()) == (422, {"actionErrors": []})


# --------------------------------------------------------------------------------------------- serve and CLI


def test_serve_starts_every_namespace_in_the_chosen_profile(make_engine) -> None:
    server = make_engine(akto_profile="gateway-fail-open-off")
    with httpx.Client(timeout=10.0, trust_env=False) as http:
        assert http.get(f"{server.url}/__admin/akto-profile").json()["name"] == "gateway-fail-open-off"
        http.post(f"{server.url}/__admin/reset")
        assert http.get(f"{server.url}/__admin/akto-profile").json()["name"] == "gateway-fail-open-off"
    with pytest.raises(ValueError, match="unknown Akto profile"):
        make_engine(akto_profile="next-year")


def mock_akto(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mock_akto", *args], capture_output=True, text=True, timeout=60)


def test_the_cli_lists_shows_and_sets_a_namespace_profile(engine) -> None:
    where = ["--url", engine.engine_url, "--namespace", engine.namespace]
    listed = mock_akto("profile", "list", *where)
    assert listed.returncode == 0 and all(name in listed.stdout for name in PROFILES)
    chosen = mock_akto("profile", "set", "gateway-2026-h1", "--guardrails-client-timeout-ms", "700", *where)
    assert chosen.returncode == 0, chosen.stderr
    profile = engine.client.akto_profile()
    assert (profile.name, profile.guardrails_client_timeout_ms) == ("gateway-2026-h1", 700)
    assert "gateway-2026-h1" in mock_akto("profile", "show", *where).stdout
    refused = mock_akto("profile", "set", "next-year", *where)
    assert refused.returncode == 2 and "known: current" in refused.stderr


def test_serve_refuses_an_unknown_profile_with_its_choices() -> None:
    refused = mock_akto("serve", "--akto-profile", "next-year")
    assert refused.returncode == 2 and "current" in refused.stderr
