"""The fail-open / fail-closed decision, made once for every connector.

Every way an engine call can go wrong is classified into one :class:`EngineFailure` kind, and the one
function :func:`on_failure` turns (kind, policy) into what the connector does. A fix to "what counts as
unreachable" is made here, not in three host adapters.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FailMode(str, Enum):
    FAIL_OPEN = "fail_open"
    FAIL_CLOSED = "fail_closed"


class FailureKind(str, Enum):
    UNREACHABLE = "unreachable"  # refused, reset, DNS, TLS, empty reply
    TIMEOUT = "timeout"  # the total deadline passed (connect, write, read or a trickling body)
    SERVER_ERROR = "server_error"  # 5xx, or any non-2xx that is not an auth error
    UNREADABLE = "unreadable"  # not JSON, wrong content-type, schema break (no boolean Allowed)
    AUTH = "auth"  # 401/403 from the engine: a configuration error, not an outage
    TLS = "tls"  # the engine's certificate did not verify: an attack or a misconfiguration, not an outage
    ENGINE_FAILED_OPEN = "engine_failed_open"  # the engine says its own guardrails did not run (failOpen / error)


class EngineFailure(Exception):
    """The engine call did not produce a verdict. ``kind`` says why; the message is safe to log."""

    def __init__(self, kind: FailureKind, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


@dataclass(frozen=True)
class FailureDecision:
    """What to do with the traffic when the engine failed: pass it, or answer ``status``."""

    allow: bool
    status: int
    message: str


UNAVAILABLE_MESSAGE = "Akto guardrail service unreachable"
AUTH_MESSAGE = "Akto guardrail rejected the connector's credentials"
TLS_MESSAGE = "Akto guardrail's TLS certificate could not be verified"


def on_failure(failure: EngineFailure, mode: FailMode) -> FailureDecision:
    """Decide the outcome of a failed engine call.

    A 401/403 from the engine is *never* failed open: it means the connector is misconfigured (an expired
    or wrong key), and failing open would silently turn guardrails off for everyone (LiteLLM PR #38568).
    It answers 503 with a message that names the cause, in both modes.

    A TLS verification failure is never failed open either (docs/connectors.md, "Fail-mode edge cases"):
    someone between the connector and the engine, or a wrong CA bundle, must not switch guardrails off.
    """
    if failure.kind is FailureKind.AUTH:
        return FailureDecision(allow=False, status=503, message=AUTH_MESSAGE)
    if failure.kind is FailureKind.TLS:
        return FailureDecision(allow=False, status=503, message=TLS_MESSAGE)
    if mode is FailMode.FAIL_OPEN:
        return FailureDecision(allow=True, status=200, message=f"failed open: {failure.kind.value}")
    return FailureDecision(allow=False, status=503, message=UNAVAILABLE_MESSAGE)
