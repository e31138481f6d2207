"""The TrueFoundry matrix: {allowed, blocked, engine down, engine slow, 401} x {Enforce, Enforce But Ignore On
Error, Audit} x {sync=true, sync=false} x {input hook, output hook}, under the current and the legacy
gateway contract, plus the settings variants. Expected outcomes: tests/truefoundry/tfy_expected.py.

Each cell is one real request: client -> gateway simulator -> reference endpoint (its own process) ->
fake engine, and the fake LLM behind the gateway. The cell checks what the client got, what the gateway
saw from the endpoint, and what reached the engine.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from harness.process import wait_until
from harness.tfy_endpoint import make_token
from harness.tfy_guardrails import GuardrailConfig
from mock_akto.client import MockAktoClient

from tfy_expected import (
    ALLOWED_PROMPT, BLOCK, BLOCKED_PROMPT, ENDPOINT_TIMEOUT_S, GATEWAY_TIMEOUT_S, ROWS, SLOW_ENGINE_MS, STRATEGIES,
    VARIANTS, Row, Variant,
)

pytestmark = pytest.mark.timeout(60)

NAMESPACES = {"allowed": "tfy-ok", "blocked": "tfy-ok", "unauthorized": "tfy-ok",
              "engine_down": "tfy-down", "engine_slow": "tfy-slow"}
WRONG_TOKEN = make_token("a-different-secret-than-the-endpoint-knows-0123456789")
_cell_ids = itertools.count(1)


class Cell:
    """One matrix cell wired up: engine namespace prepared, endpoint chosen, gateway configured."""

    def __init__(self, case: str, hook: str, sync: bool, strategy: str, contract: str, *, akto_engine: Any,
                 tfy_endpoints: Any, tfy: Any, tfy_token: str, endpoint_options: dict[str, Any] | None = None,
                 gateway_timeout_s: float = GATEWAY_TIMEOUT_S) -> None:
        self.case, self.hook, self.tfy = case, hook, tfy
        self.marker = f"[cell-{next(_cell_ids)}]"
        self.prompt = f"{self.marker} {BLOCKED_PROMPT if case == 'blocked' else ALLOWED_PROMPT}"
        namespace = NAMESPACES[case]
        self.admin = MockAktoClient(akto_engine.url, namespace)
        self.admin.reset()
        if case == "engine_down":
            self.admin.add_fault("down")
        elif case == "engine_slow":
            self.admin.add_fault({"type": "fixed_delay", "ms": SLOW_ENGINE_MS})
        options = {"timeout": ENDPOINT_TIMEOUT_S, **(endpoint_options or {})}
        self.endpoint = tfy_endpoints.get(namespace, via="listener" if case == "engine_down" else "path", **options)
        token = WRONG_TOKEN if case == "unauthorized" else tfy_token
        tfy.update_settings(contract=contract)
        tfy.set_guardrails([GuardrailConfig(
            name="akto/cell", url=self.endpoint.guardrail_url(sync=sync), hook=hook, enforcing_strategy=strategy,
            auth={"type": "bearer", "token": token}, timeout_s=gateway_timeout_s)])

    def send(self) -> tuple[Any, dict[str, Any]]:
        selection = {"input_guardrails": ["akto/cell"]} if self.hook == "llm_input" else {"output_guardrails": ["akto/cell"]}
        response = self.tfy.chat(self.prompt, metadata={"ip_address": "10.1.2.3", "session_id": "s-1"}, **selection)
        return response, self.tfy.last_exchange()

    def entries(self) -> list[Any]:
        return [e for e in self.admin.journal() if self.marker in (e.request_payload or "")]

    def ingests(self) -> list[Any]:
        return [r for r in self.admin.ingest_records() if self.marker in (r.requestPayload or "")]

    def close(self) -> None:
        self.admin.reset()
        self.admin.close()


@pytest.fixture
def cell_factory(akto_engine, tfy_endpoints, tfy, tfy_token, fake_llm_client):
    fake_llm_client.update_script(echo=True)  # the LLM repeats the prompt: output hooks carry it too
    cells: list[Cell] = []

    def make(*args: Any, **kwargs: Any) -> Cell:
        cell = Cell(*args, akto_engine=akto_engine, tfy_endpoints=tfy_endpoints, tfy=tfy, tfy_token=tfy_token, **kwargs)
        cells.append(cell)
        return cell

    yield make
    for cell in cells:
        cell.close()


def assert_client_outcome(response: Any, expected: str, cell: Cell) -> None:
    body = response.json()
    if expected == BLOCK:
        assert response.status_code == 400, body
        assert body["error"]["type"] == "guardrail_checks_failed"
        label = "Input" if cell.hook == "llm_input" else "Output"
        assert body["message"] == f"{label} Guardrail checks failed for integrations: [akto/cell]"
        assert "choices" not in body
    else:
        assert response.status_code == 200, body
        assert body["choices"][0]["message"]["content"] == cell.prompt


def assert_engine(cell: Cell, row: Row) -> None:
    expected = row.engine
    if expected.ingests:
        wait_until(lambda: len(cell.ingests()) >= expected.ingests, timeout=10, what=f"{expected.ingests} ingest record(s)")
    if expected.checks:
        wait_until(lambda: sum(1 for e in cell.entries() if _asks_verdict(e)) >= expected.checks, timeout=10,
                   what=f"{expected.checks} check(s)")
    entries = cell.entries()
    if expected.checks is not None:
        assert sum(1 for e in entries if _asks_verdict(e)) == expected.checks, entries
    if expected.ingests is not None:
        records = cell.ingests()
        assert len(records) == expected.ingests, records
        for record in records:
            assert record.statusCode == expected.ingest_status
            assert record.path == "/api/llm/chat/completions" and record.app == "app.truefoundry.com"
            assert record.connector == "truefoundry"
            assert json.loads(record.tag)["ai-agent"] == "truefoundry"
    for entry in entries:
        assert entry.connector == "truefoundry"
    if expected.violation_logged:
        verdicts = [v for e in entries for v in (e.request_verdict, e.response_verdict) if v is not None]
        assert any(not v.allowed for v in verdicts), verdicts


def _asks_verdict(entry: Any) -> bool:
    return bool(entry.flags and (entry.flags.guardrails or entry.flags.response_guardrails))


def _row_id(row: Row) -> str:
    return f"{row.case}-{row.hook.replace('llm_', '')}-sync_{str(row.sync).lower()}"


@pytest.mark.parametrize("contract", ["current", "legacy"])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_matrix_cell(row: Row, strategy: str, contract: str, cell_factory) -> None:
    cell = cell_factory(row.case, row.hook, row.sync, strategy, contract)
    response, exchange = cell.send()
    expected = row.outcome(strategy)
    assert_client_outcome(response, expected, cell)
    (call,) = exchange["guardrails"]
    assert call["status"] == row.endpoint_status, call
    assert call["outcome"] == ("pass" if row.endpoint_status == 200 else "error"), call
    assert call["effect"] == {"allow": "allow" if row.endpoint_status == 200 else "let_through", BLOCK: "block"}[expected]
    assert exchange["blocked_by"] == (row.hook if expected == BLOCK else None)
    if row.case == "blocked" and row.hook == "llm_input" and row.sync:
        assert call["body"] == {"actionErrors": ["Prompt injection detected"]}
    if row.case == "unauthorized":
        assert call["body"] == {"actionErrors": ["token signature does not verify"]}
    if row.hook == "llm_output":
        assert "responseBody" in call["sent"] and call["sent"]["responseBody"]["choices"][0]["message"]["content"] == cell.prompt
    else:
        assert "responseBody" not in call["sent"]
    assert_engine(cell, row)


def _variant_id(variant: Variant) -> str:
    return variant.name


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_matrix_variant(variant: Variant, strategy: str, cell_factory) -> None:
    cell = cell_factory(variant.case, "llm_input", True, strategy, variant.contract,
                        endpoint_options=dict(variant.endpoint_options), gateway_timeout_s=variant.gateway_timeout_s)
    response, exchange = cell.send()
    expected = variant.outcome(strategy)
    assert_client_outcome(response, expected, cell)
    (call,) = exchange["guardrails"]
    assert call["status"] == variant.endpoint_status, call
    if variant.endpoint_status is None:
        assert call["error"] == f"timeout after {variant.gateway_timeout_s:g}s"
    if variant.endpoint_status == 200:  # the verdict-in-body answer
        assert call["body"] == {"verdict": False, "message": "Prompt injection detected"}
        assert call["outcome"] == ("violation" if variant.contract == "current" else "pass")
    assert exchange["blocked_by"] == ("llm_input" if expected == BLOCK else None)
