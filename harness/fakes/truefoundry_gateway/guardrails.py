"""How TrueFoundry's AI gateway calls one custom guardrail and judges its answer.

This is the contract half of the gateway simulator (harness/fakes/truefoundry_gateway/gateway.py), written from
../shared/contracts/truefoundry.md sections 1, 2 and 4:

* a guardrail is ``POST <url>`` with ``{requestBody, context, config}`` (+ ``responseBody`` on output hooks),
  its auth header ("Custom Bearer" / "Custom Basic"), its extra headers forwarded as is, and a total
  timeout (default 10 s);
* the answer is classified as *pass*, *violation* or *error*. Current contract (May 2026): 2xx carries the
  decision in the body (``verdict``, or ``result: false`` on Validate; ``transformed`` + ``result`` on
  Mutate), and non-2xx, a timeout or a network failure is an *error*. Legacy contract: any 2xx passes;
* the enforcing strategy turns (outcome) into an effect: Enforce blocks violations and errors; Enforce But
  Ignore On Error blocks only violations; Audit never blocks.

So an Akto block (HTTP 400) is an *error* here, which blocks only under Enforce.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, field_validator

from reference_impl.core.headers import CREDENTIAL_HEADERS

DEFAULT_TIMEOUT_S = 10.0


class Hook(str, Enum):
    LLM_INPUT = "llm_input"
    LLM_OUTPUT = "llm_output"


class Operation(str, Enum):
    VALIDATE = "validate"  # inspects, may block, never changes data; a hook's validates run in parallel
    MUTATE = "mutate"  # may rewrite and may block; runs sequentially by priority (lower first)


class EnforcingStrategy(str, Enum):
    ENFORCE = "enforce"
    ENFORCE_BUT_IGNORE_ON_ERROR = "enforce_but_ignore_on_error"
    AUDIT = "audit"


class Contract(str, Enum):
    CURRENT = "current"  # gateway a1c551be (PR #2931, May 2026): verdict in the body
    LEGACY = "legacy"  # before: any 2xx passes, any non-2xx fails (through "fail on error")


class Outcome(str, Enum):
    PASS = "pass"
    VIOLATION = "violation"
    ERROR = "error"


class Effect(str, Enum):
    ALLOW = "allow"
    BLOCK = "block"
    LET_THROUGH = "let_through"  # a violation under Audit, or an error outside Enforce: logged, not blocked


def effect_of(strategy: EnforcingStrategy, outcome: Outcome) -> Effect:
    """The documented strategy table (guardrails-overview): the one place the matrix is decided."""
    if outcome is Outcome.PASS:
        return Effect.ALLOW
    if strategy is EnforcingStrategy.AUDIT:
        return Effect.LET_THROUGH
    if outcome is Outcome.VIOLATION or strategy is EnforcingStrategy.ENFORCE:
        return Effect.BLOCK
    return Effect.LET_THROUGH


class GuardrailAuth(BaseModel):
    """The dashboard's "Auth Data". A raw ``Authorization`` token goes in ``headers`` instead."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["none", "bearer", "basic"] = "none"
    token: SecretStr | None = None  # bearer
    username: str | None = None  # basic
    password: SecretStr | None = None  # basic

    def header(self) -> dict[str, str]:
        if self.type == "bearer":
            return {"authorization": f"Bearer {self.token.get_secret_value() if self.token else ''}"}
        if self.type == "basic":
            secret = self.password.get_secret_value() if self.password else ""
            return {"authorization": "Basic " + base64.b64encode(f"{self.username or ''}:{secret}".encode()).decode()}
        return {}


class GuardrailConfig(BaseModel):
    """One custom guardrail integration, as configured in a TrueFoundry guardrails group."""

    model_config = ConfigDict(extra="forbid")

    #: ``<group>/<config>``: what rules and the ``X-TFY-GUARDRAILS`` header select it by.
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    url: str
    hook: Hook
    operation: Operation = Operation.VALIDATE
    enforcing_strategy: EnforcingStrategy = EnforcingStrategy.ENFORCE
    auth: GuardrailAuth = Field(default_factory=GuardrailAuth)
    #: Forwarded as is (some vendor setups put ``Authorization`` here).
    headers: dict[str, str] = Field(default_factory=dict)
    #: The dashboard "Config" JSON, passed through unchanged.
    config: dict[str, Any] | None = Field(default_factory=dict)
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=600)
    priority: int = 0
    #: Simulator only: judge this guardrail under another contract than the gateway's (to run current- and
    #: legacy-contract cases side by side on one gateway).
    contract: Contract | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_serializer("headers")
    def _mask_credentials(self, headers: dict[str, str]) -> dict[str, str]:
        return {k: ("**********" if k.lower() in CREDENTIAL_HEADERS else v) for k, v in headers.items()}

    def request_headers(self) -> dict[str, str]:
        return {"content-type": "application/json", **self.headers, **self.auth.header()}


@dataclass
class GuardrailResult:
    """What one guardrail call came to. ``replacement`` is set when a Mutate transformed the data."""

    name: str
    hook: Hook
    operation: Operation
    strategy: EnforcingStrategy
    url: str
    outcome: Outcome
    effect: Effect
    status: int | None = None
    #: Why it is an error ("HTTP 400", "timeout after 2s", "unreachable: ConnectError").
    error: str | None = None
    #: The guardrail's ``message`` (shown to the caller as the explanation of a violation).
    message: str | None = None
    #: The answer body (JSON, else text): the client-facing error keeps it under ``data.error``.
    body: Any = None
    replacement: dict[str, Any] | None = None
    elapsed_ms: float = 0.0

    def summary(self) -> str:
        """``name=status:outcome:effect`` (status ``timeout`` / ``unreachable`` without an answer)."""
        status = str(self.status) if self.status is not None else (self.error or "error").split(" ")[0].rstrip(":")
        return f"{self.name}={status}:{self.outcome.value}:{self.effect.value}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "hook": self.hook.value, "operation": self.operation.value,
            "strategy": self.strategy.value, "url": self.url, "outcome": self.outcome.value,
            "effect": self.effect.value, "status": self.status, "error": self.error, "message": self.message,
            "body": self.body, "transformed": self.replacement is not None, "elapsed_ms": round(self.elapsed_ms, 3),
        }


async def call_guardrail(
    http: httpx.AsyncClient, guardrail: GuardrailConfig, payload: dict[str, Any], contract: Contract
) -> GuardrailResult:
    """POST ``payload`` to the guardrail under its total timeout and classify the answer."""
    started = time.perf_counter()

    def result(outcome: Outcome, **fields: Any) -> GuardrailResult:
        return GuardrailResult(
            name=guardrail.name, hook=guardrail.hook, operation=guardrail.operation,
            strategy=guardrail.enforcing_strategy, url=guardrail.url, outcome=outcome,
            effect=effect_of(guardrail.enforcing_strategy, outcome),
            elapsed_ms=(time.perf_counter() - started) * 1000, **fields,
        )

    try:
        async with asyncio.timeout(guardrail.timeout_s):
            response = await http.post(guardrail.url, content=json.dumps(payload), headers=guardrail.request_headers())
    except (TimeoutError, httpx.TimeoutException):
        return result(Outcome.ERROR, error=f"timeout after {guardrail.timeout_s:g}s")
    except httpx.TransportError as exc:
        return result(Outcome.ERROR, error=f"unreachable: {type(exc).__name__}")
    contract = guardrail.contract or contract
    outcome, fields = classify(guardrail.operation, guardrail.hook, contract, response.status_code, response.content)
    return result(outcome, status=response.status_code, **fields)


def classify(
    operation: Operation, hook: Hook, contract: Contract, status: int, content: bytes
) -> tuple[Outcome, dict[str, Any]]:
    """(outcome, extra result fields) for one HTTP answer of a guardrail."""
    body = _decode(content)
    shown = body.text if isinstance(body, _Unreadable) else body
    if not 200 <= status < 300:
        return Outcome.ERROR, {"error": f"HTTP {status}", "body": shown}
    if contract is Contract.LEGACY:
        replacement = _bare_replacement(body, hook) if operation is Operation.MUTATE else None
        return Outcome.PASS, {"body": shown, "replacement": replacement}
    if isinstance(body, _Unreadable):
        # UNCONFIRMED in the contract; the gateway parses JSON and a throw is routed as an error.
        return Outcome.ERROR, {"error": "2xx with a body that is not JSON", "body": shown}
    fields: dict[str, Any] = {"body": shown}
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        fields["message"] = body["message"]
    decided = body if isinstance(body, dict) else {}
    if operation is Operation.MUTATE:
        if decided.get("verdict") is False:
            return Outcome.VIOLATION, fields
        result = decided.get("result")
        if decided.get("transformed") is True and isinstance(result, dict):
            fields["replacement"] = result
        return Outcome.PASS, fields
    verdict = decided.get("verdict")
    if isinstance(verdict, bool):
        return (Outcome.PASS if verdict else Outcome.VIOLATION), fields
    if decided.get("result") is False:
        return Outcome.VIOLATION, fields
    return Outcome.PASS, fields


@dataclass
class _Unreadable:
    text: str


def _decode(content: bytes) -> Any:
    if not content.strip():
        return _Unreadable("")
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return _Unreadable(content[:2000].decode("utf-8", "replace"))


def _bare_replacement(body: Any, hook: Hook) -> dict[str, Any] | None:
    """Legacy Mutate answers: ``null`` (no change) or the bare modified body. Only a body that looks like
    the hooked data (``messages`` for input, ``choices`` for output) replaces it: an empty ``{}`` does not."""
    if not isinstance(body, dict):
        return None
    key = "messages" if hook is Hook.LLM_INPUT else "choices"
    return body if isinstance(body.get(key), list) else None
