"""Reading the engine's answer into a :class:`~akto_wire.Verdict`, strictly.

The reference connectors always ask for guardrails, so an answer without a readable verdict is a broken
engine, not an allow: it raises :class:`EngineFailure` (``UNREADABLE``) and the fail mode decides. That
is stricter than LiteLLM v3 (which allowed on a missing ``guardrailsResult``) on purpose.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from akto_wire import Direction, Verdict

from .failmode import EngineFailure, FailureKind

_NULLABLE_DEFAULTS = {"Reason": "", "Modified": False, "ModifiedPayload": "", "behaviour": "", "Behaviour": ""}


def parse_json_body(body: bytes, content_type: str | None) -> Any:
    """Decode a JSON answer, checking the content-type first (a proxy's HTML error page is not a verdict)."""
    if not content_type or "json" not in content_type.lower():
        raise EngineFailure(FailureKind.UNREADABLE, f"engine answered content-type {content_type!r}, not JSON")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EngineFailure(FailureKind.UNREADABLE, f"engine answered invalid JSON: {exc}") from None


def verdict_from_result(result: Any, direction: Direction = "request") -> Verdict:
    """Turn one ``guardrailsResult`` object into a verdict.

    Handles the merged shape (``requestResult`` / ``responseResult``), keys in either case, null keys
    taking their defaults, and ``ModifiedPayload`` given as an object (re-encoded as JSON text).
    ``Allowed`` is required and must be a boolean.
    """
    if not isinstance(result, dict):
        raise EngineFailure(FailureKind.UNREADABLE, "guardrailsResult is missing or not an object")
    section = result.get("requestResult" if direction == "request" else "responseResult")
    if isinstance(section, dict):
        result = section
    _refuse_made_up_verdict(result)
    allowed = result.get("Allowed", result.get("allowed"))
    if not isinstance(allowed, bool):
        raise EngineFailure(FailureKind.UNREADABLE, f"verdict has no boolean Allowed (got {allowed!r})")
    cleaned = {key: value for key, value in result.items() if value is not None or key not in _NULLABLE_DEFAULTS}
    for key in ("ModifiedPayload", "modifiedPayload"):
        if isinstance(cleaned.get(key), (dict, list)):
            cleaned[key] = json.dumps(cleaned[key])
    try:
        return Verdict.model_validate(cleaned)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        raise EngineFailure(FailureKind.UNREADABLE, f"verdict has wrong types in: {fields}") from None


def _refuse_made_up_verdict(result: dict[str, Any]) -> None:
    """Akto's gateway makes up a verdict when its guardrails-service is down: ``failOpen: true`` (an allow,
    since 2026-06-29) or, before, a lower-case deny with an ``error`` field. No guardrail ran, so it is an
    engine failure and the connector's own fail mode decides (docs/connectors.md, "Fail-mode edge cases"):
    fail_closed does not let unchecked traffic through, fail_open does not block on an outage."""
    if result.get("failOpen") is True or result.get("error"):
        error = str(result.get("error") or "no reason given")[:200]
        raise EngineFailure(FailureKind.ENGINE_FAILED_OPEN, f"engine's guardrails did not run (made-up verdict): {error}")


def verdict_from_http_proxy(body: Any, direction: Direction = "request") -> Verdict:
    """Extract the verdict from an ``/api/http-proxy`` 200 body (``data.guardrailsResult``)."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise EngineFailure(FailureKind.UNREADABLE, "engine answer has no data object")
    return verdict_from_result(data.get("guardrailsResult"), direction)
