"""Turning LiteLLM's request dict and response objects into Akto envelopes.

Follows the wire shape of LiteLLM's own ``akto`` guardrail (contract section 3.2: the double-encoded
``{"body": "<json>"}`` payloads, ``"200"``/``"403"`` statuses, the ``gen-ai`` tag) with two deliberate
differences: client credential headers are stripped (core ``safe_headers``), and the account and vxlan ids
come from the validated settings.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from akto_wire import Envelope

from ..core import EngineSettings, safe_headers

DEFAULT_ROUTE = "/v1/chat/completions"
#: Request fields the engine evaluates. Masking changes are applied to exactly these, so the fields the
#: engine never sees (temperature, stream, metadata ...) cannot be touched by a ``ModifiedPayload``.
BODY_FIELDS = ("model", "system", "messages", "prompt", "input", "tools", "functions")
#: Fields that carry text to check; a request with none of them has nothing to send to the engine.
TEXT_FIELDS = ("messages", "prompt", "input")
BLOCKED_BY = "Akto Proxy"
JSON_HEADERS = {"content-type": "application/json"}


def request_body(data: Mapping[str, Any]) -> dict[str, Any]:
    """The part of LiteLLM's request dict that is sent to the engine (and may be masked)."""
    return {name: data[name] for name in BODY_FIELDS if data.get(name) is not None}


def has_text(data: Mapping[str, Any]) -> bool:
    return any(data.get(name) for name in TEXT_FIELDS)


def wrap_body(body: Any) -> str:
    """LiteLLM's double encoding: a JSON string of ``{"body": "<JSON string of body>"}``."""
    return json.dumps({"body": json.dumps(body, default=str)})


def response_body(response: Any) -> dict[str, Any]:
    """A LiteLLM response object (``ModelResponse`` and friends) as plain JSON-able data."""
    if isinstance(response, Mapping):
        return dict(response)
    dump = getattr(response, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return {"choices": [{"message": {"role": "assistant", "content": str(response)}}]}


def request_envelope(data: Mapping[str, Any], settings: EngineSettings) -> Envelope:
    """The envelope of a pre_call check: the request only, no response yet."""
    return _envelope(data, settings, response_payload="{}", response_headers={})


def response_envelope(data: Mapping[str, Any], response: Mapping[str, Any], settings: EngineSettings) -> Envelope:
    """The envelope of a post_call ingest: the (possibly masked) request and the response."""
    return _envelope(data, settings, response_payload=wrap_body(response), response_headers=JSON_HEADERS)


def blocked_envelope(data: Mapping[str, Any], reason: str, settings: EngineSettings) -> Envelope:
    """The envelope recording a blocked request: status 403 and Akto's blocked marker as the response."""
    marker = {"x-blocked-by": BLOCKED_BY, "reason": reason}
    return _envelope(data, settings, response_payload=wrap_body(marker), response_headers=JSON_HEADERS, status_code=403)


def _envelope(
    data: Mapping[str, Any],
    settings: EngineSettings,
    *,
    response_payload: str,
    response_headers: Mapping[str, str],
    status_code: int = 200,
) -> Envelope:
    metadata = _metadata(data)
    headers = {**JSON_HEADERS, **safe_headers(_client_headers(data))}
    return Envelope.build(
        path=str(metadata.get("user_api_key_request_route") or DEFAULT_ROUTE),
        request_payload=wrap_body(request_body(data)),
        response_payload=response_payload,
        request_headers=headers,
        response_headers=response_headers,
        status_code=status_code,
        tag=_tag(metadata),
        ip=_client_ip(metadata, headers),
        akto_account_id=settings.akto_account_id,
        akto_vxlan_id=settings.akto_vxlan_id,
    )


def _metadata(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """LiteLLM keeps its request metadata under ``litellm_metadata`` on some routes, ``metadata`` on others."""
    for key in ("litellm_metadata", "metadata"):
        value = data.get(key)
        if isinstance(value, Mapping) and value:
            return value
    return {}


def _client_headers(data: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    request = data.get("proxy_server_request")
    headers = request.get("headers") if isinstance(request, Mapping) else None
    if not isinstance(headers, Mapping):
        return ()
    return ((str(name), str(value)) for name, value in headers.items())


def _client_ip(metadata: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    forwarded = metadata.get("requester_ip_address") or headers.get("x-forwarded-for") or headers.get("x-real-ip") or ""
    return str(forwarded).split(",")[0].strip()


def _tag(metadata: Mapping[str, Any]) -> dict[str, str]:
    tag = {"gen-ai": "Gen AI"}
    for source, name in (("user_api_key_user_id", "user_id"), ("user_api_key_team_id", "team_id")):
        if metadata.get(source):
            tag[name] = str(metadata[source])
    return tag
