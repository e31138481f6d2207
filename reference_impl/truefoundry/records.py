"""What TrueFoundry's gateway sends, read strictly, and turned into Akto's flat traffic record.

The gateway posts ``{requestBody, responseBody?, config, context{user, metadata}}``
(../shared/contracts/truefoundry.md section 1.2). Akto's own handler converts it into one fixed envelope
(section 6.2): path ``/api/llm/chat/completions``, host ``app.truefoundry.com``, tag
``{"gen-ai":"Gen AI","ai-agent":"truefoundry"}``, the TrueFoundry context and config in ``metadata``, and
``requestBody.messages`` cut down to the last user message. That conversion lives here, once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from akto_wire import Envelope

TRUEFOUNDRY_ENVELOPE_PATH = "/api/llm/chat/completions"
TRUEFOUNDRY_HOST = "app.truefoundry.com"
TRUEFOUNDRY_TAG = {"gen-ai": "Gen AI", "ai-agent": "truefoundry"}
TRUEFOUNDRY_CONNECTOR = "truefoundry"
JSON_HEADERS = {"content-type": "application/json"}
REQUEST_HEADERS = {"content-type": "application/json", "host": TRUEFOUNDRY_HOST}
#: What Akto records as the answer of a call it blocked (its own marker, not an LLM answer).
BLOCKED_RESPONSE_PAYLOAD = {"x-blocked-by": "Akto Proxy"}
UNKNOWN_IP = "0.0.0.0"


class BadCall(ValueError):
    """The gateway's body cannot be read; the message names the offending field (answered as 422)."""


@dataclass(frozen=True)
class TrueFoundryCall:
    """One guardrail call from the gateway. ``response_body`` is set only for output hooks."""

    request_body: dict[str, Any]
    response_body: dict[str, Any] | None
    config: dict[str, Any] | None
    context: dict[str, Any] | None
    streaming: bool

    @property
    def has_response(self) -> bool:
        """Akto tells input from output hooks only by a non-empty ``responseBody``."""
        return bool(self.response_body)

    @property
    def ip(self) -> str:
        metadata = (self.context or {}).get("metadata")
        ip = metadata.get("ip_address") if isinstance(metadata, dict) else None
        return ip if isinstance(ip, str) and ip else UNKNOWN_IP


def parse_flag(value: Any, name: str) -> bool | None:
    """``true``/``false`` in any case (or a JSON bool); None when absent. Anything else is a bad call.

    Akto itself only compares with ``"true"``; we reject ``sync=ture`` instead of silently reading false,
    because a typo here would silently switch guardrails off.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadCall(f"{name} must be true or false, got {value!r}")


def parse_call(raw: bytes) -> TrueFoundryCall:
    """Read the gateway's body, raising :class:`BadCall` with a precise message for anything unusable."""
    if not raw.strip():
        raise BadCall("body is empty: expected a JSON object with requestBody")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise BadCall("body is not UTF-8") from None
    except ValueError as exc:
        raise BadCall(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadCall(f"body must be a JSON object, got {type(body).__name__}")
    request_body = body.get("requestBody")
    if request_body is None:
        raise BadCall("requestBody is missing")
    if not isinstance(request_body, dict):
        raise BadCall(f"requestBody must be an object, got {type(request_body).__name__}")
    if not request_body:
        raise BadCall("requestBody is empty")
    messages = request_body.get("messages")
    if messages is not None:
        if not isinstance(messages, list):
            raise BadCall(f"requestBody.messages must be a list, got {type(messages).__name__}")
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise BadCall(f"requestBody.messages[{index}] must be an object, got {type(message).__name__}")
    context = _optional_object(body, "context")
    if context is not None:
        _optional_object(context, "user", "context.user")
        _optional_object(context, "metadata", "context.metadata")
    return TrueFoundryCall(
        request_body=request_body,
        response_body=_optional_object(body, "responseBody"),
        config=_optional_object(body, "config"),
        context=context,
        streaming=bool(parse_flag(body.get("streaming"), "streaming")),
    )


def _optional_object(parent: dict[str, Any], key: str, label: str | None = None) -> dict[str, Any] | None:
    value = parent.get(key)
    if value is not None and not isinstance(value, dict):
        raise BadCall(f"{label or key} must be an object or null, got {type(value).__name__}")
    return value


def last_user_only(request_body: dict[str, Any]) -> dict[str, Any]:
    """``requestBody`` with ``messages`` cut to the last ``user`` message, as Akto checks and records it.

    Left as is when there is no messages list or no user message in it.
    """
    messages = request_body.get("messages")
    if not isinstance(messages, list):
        return request_body
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return {**request_body, "messages": [message]}
    return request_body


def previous_turn(request_body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """For ``streaming=true``: the previous user -> assistant exchange found in the full history.

    Output hooks do not fire for streamed answers, so Akto records the last completed turn from the next
    request's history instead. Returns (synthetic request body, synthetic response body), or None when the
    history has no assistant message after a user message.
    """
    messages = request_body.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        return None
    assistant_at = next(
        (i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], dict) and messages[i].get("role") == "assistant"),
        None,
    )
    if not assistant_at:  # none, or at index 0 (nothing can precede it)
        return None
    user = next(
        (messages[i] for i in range(assistant_at - 1, -1, -1) if isinstance(messages[i], dict) and messages[i].get("role") == "user"),
        None,
    )
    if user is None:
        return None
    answer = messages[assistant_at].get("content")
    return (
        {**request_body, "messages": [user]},
        {"choices": [{"message": {"role": "assistant", "content": answer}}]},
    )


def to_envelope(
    call: TrueFoundryCall,
    *,
    account_id: str,
    vxlan_id: str,
    request_body: dict[str, Any] | None = None,
    response_body: dict[str, Any] | None = None,
    blocked: bool = False,
) -> Envelope:
    """Akto's flat traffic record for this call (contract section 6.2).

    ``request_body`` / ``response_body`` override the call's own (the streaming previous turn).
    ``blocked`` gives the record Akto ingests for a blocked call: status 400 ``forbidden`` and the
    ``x-blocked-by`` marker as the answer.
    """
    request = last_user_only(request_body if request_body is not None else call.request_body)
    response = response_body if response_body is not None else call.response_body
    ip = call.ip
    metadata = {"tag": TRUEFOUNDRY_TAG, "ip": ip, "truefoundry_context": call.context, "truefoundry_config": call.config}
    if blocked:
        response_fields: dict[str, Any] = {
            "response_payload": json.dumps(BLOCKED_RESPONSE_PAYLOAD), "response_headers": JSON_HEADERS,
            "status_code": 400, "status": "forbidden",
        }
    elif response:
        response_fields = {
            "response_payload": json.dumps(response), "response_headers": JSON_HEADERS, "status_code": 200, "status": "OK",
        }
    else:
        response_fields = {}
    return Envelope.build(
        request_payload=json.dumps(request),
        request_headers=REQUEST_HEADERS,
        tag=TRUEFOUNDRY_TAG,
        metadata=json.dumps(metadata),
        path=TRUEFOUNDRY_ENVELOPE_PATH,
        ip=ip,
        time=str(int(time.time() * 1000)),
        akto_account_id=account_id,
        akto_vxlan_id=vxlan_id,
        **response_fields,
    )
