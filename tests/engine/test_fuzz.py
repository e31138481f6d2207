"""Fuzzing the engine over real sockets, in a bounded budget.

* schemathesis against the admin API's own OpenAPI spec: no 5xx, every status, content type and body as
  the spec documents them;
* hypothesis against the Akto routes: arbitrary bytes and JSON (deeply nested too), wrong types in every
  envelope field, random query flags, non-UTF-8, invalid content types, huge strings, a 10 MB body and
  bodies cut short, with and without a token.

The oracle is the contract: only the documented statuses (200, 400 for a validate body it cannot bind,
401 with a token, 413, 422) with their documented body shapes, never a 5xx, and never a crash: the
engine process is alive, answers ``/__admin/health`` and logged no traceback. Each fuzzer gets its own
engine process (the admin fuzz adds global faults and resets everything). Regressions for what fuzzing
found sit at the end.
"""

from __future__ import annotations

import json
import socket
import string
from typing import Any, Iterator

import httpx
import psutil
import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.engine import EngineProcess
from harness.process import wait_until
from mock_akto.wire import MISSING_PAYLOAD_MESSAGE, SUCCESS_MESSAGE, Envelope

PROXY = "/api/http-proxy"
VALIDATE = ("/api/validate/request", "/api/validate/response")
FLAGS = ("guardrails", "response_guardrails", "ingest_data")
TOKEN = "fuzz-engine-token-4f1d9a"
API_KEY = "sk-fuzz-namespace-key-77c2"
#: Engine log lines that mean an exception escaped somewhere.
CRASH_MARKERS = ("Traceback", "Exception in ASGI application")
#: One fuzzed call may take this long on a loaded 2-core machine (policies on a megabyte payload).
CALL_TIMEOUT = 20.0
#: Hypothesis budget per property: small, because each example is a real HTTP exchange.
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------- engines


def assert_engine_survived(engine: EngineProcess) -> None:
    """The process lives, answers health, and never logged an escaped exception."""
    assert engine.process.running, f"the engine died:\n{engine.process.log_tail()}"
    assert httpx.get(f"{engine.url}/__admin/health", timeout=10, trust_env=False).status_code == 200
    log = engine.process.log_path.read_text(errors="replace")
    for marker in CRASH_MARKERS:
        assert marker not in log, f"the engine logged {marker!r}:\n{engine.process.log_tail(60)}"


@pytest.fixture(scope="module")
def contract_engine() -> Iterator[EngineProcess]:
    with EngineProcess() as engine:
        yield engine
    # teardown: a crash during the last test must still fail something, so each test checks itself


@pytest.fixture(scope="module")
def token_engine() -> Iterator[EngineProcess]:
    """An engine with a token and one registered namespace key, logging as much as the CLI allows."""
    with EngineProcess(token=TOKEN, extra_args=["--log-level", "debug"]) as engine:
        admin = httpx.post(f"{engine.url}/__admin/namespaces/api-keys", json={"api_key": API_KEY, "namespace": "keyed"},
                           timeout=10, trust_env=False)
        assert admin.status_code == 204
        yield engine


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=CALL_TIMEOUT, trust_env=False) as client:
        yield client


# --------------------------------------------------------------------------------------------- schemathesis


@pytest.fixture(scope="module")
def admin_engine() -> Iterator[EngineProcess]:
    with EngineProcess() as engine:
        yield engine


#: What "answers as its spec says" means. Left out on purpose: positive_data_acceptance and
#: negative_data_rejection (pydantic validators say more than JSON Schema can: "exactly one of fault or
#: sequence", a matcher needs something to match, YAML-friendly "one string or a list"; a 422 naming the
#: field is the right answer there) and the OPTIONS/Allow checks (Starlette's 405 names one method only).
ADMIN_CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
                "response_schema_conformance", "response_headers_conformance")
#: Examples per admin operation and generation mode (valid and invalid data): 24 operations.
ADMIN_EXAMPLES = 6


@pytest.fixture(scope="module")
def admin_schema(admin_engine: EngineProcess) -> Any:
    config = schemathesis.Config.from_dict({
        "request-timeout": CALL_TIMEOUT,
        "checks": {"enabled": False, **{name: {"enabled": True} for name in ADMIN_CHECKS}},
    })
    return schemathesis.openapi.from_url(f"{admin_engine.url}/__admin/openapi.json", config=config, timeout=10)


def keep_bounded(case: Any) -> None:
    """Keep a generated case inside what a CI run can afford and what is safe on a shared machine:
    a journal wait lasts at most 200 ms (the spec allows 300 s), and a listener takes a free port of the
    OS's choosing (a fixed one could steal a port another test is about to bind)."""
    if case.operation.path == "/__admin/journal/wait" and isinstance(case.query, dict):
        timeout_ms = case.query.get("timeout_ms")
        if isinstance(timeout_ms, int) and not isinstance(timeout_ms, bool) and timeout_ms > 200:
            case.query["timeout_ms"] = 200
    if case.operation.path == "/__admin/listeners" and case.method == "POST" and isinstance(case.body, dict):
        if isinstance(case.body.get("port"), int):
            case.body["port"] = 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_admin_api_answers_as_its_spec_says(admin_engine: EngineProcess, admin_schema: Any) -> None:
    """Every admin operation, with valid and invalid data: no 5xx, statuses, content types, headers and
    bodies as documented. Failures are collected per operation, so one run reports all of them."""
    failures: dict[str, str] = {}
    operations = [result.ok() for result in admin_schema.get_all_operations()]
    assert len(operations) >= 20, "the admin spec lost operations"
    for operation in operations:
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                             operation.as_strategy(GenerationMode.NEGATIVE))

        @settings(max_examples=ADMIN_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def exercise(case: Any) -> None:
            keep_bounded(case)
            case.call_and_validate(base_url=admin_engine.url, timeout=CALL_TIMEOUT)

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - schemathesis raises a group
            failures[operation.label] = str(failure)
        assert admin_engine.process.running, f"the engine died on {operation.label}:\n{admin_engine.process.log_tail()}"
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert_engine_survived(admin_engine)


def test_admin_refusals_name_the_problem(contract_engine: EngineProcess) -> None:
    """422 naming the field, 409 for a duplicate rule id, 404 for what does not exist, 400 for a bad
    namespace: each with the shape the spec documents (fuzzing only sees these by luck)."""
    with httpx.Client(base_url=f"{contract_engine.url}/__admin", timeout=10, trust_env=False,
                      headers={"x-mock-akto-namespace": "admin-refusals"}) as admin:
        bad_policy = admin.post("/policies", json={"name": "p", "matcher": {"regex": ["("]}, "action": "block"})
        assert bad_policy.status_code == 422
        (problem,) = bad_policy.json()["detail"]
        assert problem["loc"][-2:] == ["regex", 0] and "invalid regular expression" in problem["msg"]

        bad_rule = admin.post("/faults/rules", json={"fault": {"type": "status", "status": 503,
                                                                "headers": {"x-note": "line\r\nbreak"}}})
        assert bad_rule.status_code == 422
        (problem,) = bad_rule.json()["detail"]
        assert problem["loc"][-2:] == ["status", "headers"] and "control characters" in problem["msg"]

        bad_listener = admin.post("/listeners", json={"namespace": "no spaces allowed"})
        assert bad_listener.status_code == 422
        (problem,) = bad_listener.json()["detail"]
        assert problem["loc"] == ["body", "namespace"] and "invalid namespace name" in problem["msg"]

        rule = {"id": "only-once", "fault": {"type": "empty_response"}}
        assert admin.post("/faults/rules", json=rule).status_code == 201
        duplicate = admin.post("/faults/rules", json=rule)
        assert duplicate.status_code == 409 and "only-once" in duplicate.json()["detail"]

        for path in ("/faults/rules/no-such-rule", "/policies/no-such-policy", "/listeners/1",
                     "/namespaces/no-such-namespace"):
            missing = admin.delete(path)
            assert missing.status_code == 404, path
            assert isinstance(missing.json()["detail"], str) and missing.json()["detail"].startswith("no ")
        assert admin.post("/policies/presets/no-such-preset").status_code == 404

        bad_namespace = admin.get("/health", headers={"x-mock-akto-namespace": "bad name!"})
        assert bad_namespace.status_code == 400
        assert "invalid namespace name" in bad_namespace.json()["detail"]
        admin.delete("/namespaces/admin-refusals")
