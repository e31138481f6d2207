"""The bodies Akto's services answer with, apart from the verdict itself.

``/api/http-proxy`` (the Java ingestion service) wraps everything in ``success`` / ``message`` / ``data``;
``/api/validate/*`` (the Go guardrails-service) answers a bare verdict, or a bare ``{"error": ...}``.
"""

from __future__ import annotations

from typing import Any, Mapping

SUCCESS_MESSAGE = "Request processed successfully"
MISSING_PAYLOAD_MESSAGE = "Missing required field: requestPayload"
#: guardrails-service's 400 error for a body it cannot bind.
INVALID_REQUEST_FORMAT = "Invalid request format"
#: guardrails-service's 500 error when evaluating the policies failed.
VALIDATION_FAILED = "Validation failed"


def success_body(guardrails_result: Mapping[str, Any] | None) -> dict[str, Any]:
    """The 200 body of ``/api/http-proxy``; ``guardrailsResult`` only when a guardrails flag was on."""
    data: dict[str, Any] = {"success": True, "message": SUCCESS_MESSAGE}
    if guardrails_result is not None:
        data["guardrailsResult"] = dict(guardrails_result)
    return {"success": True, "message": SUCCESS_MESSAGE, "data": data}


def failure_body(message: str, error: str) -> dict[str, Any]:
    """The 422 body of ``/api/http-proxy`` (``success: false``)."""
    return {"success": False, "message": message, "data": {"success": False, "message": message, "error": error}}


def validate_error_body(error: str) -> dict[str, str]:
    """A ``/api/validate/*`` error body: ``{"error": ...}`` with no verdict (400, 405 or 500)."""
    return {"error": error}
