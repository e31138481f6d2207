"""What the egress addon sends to the engine, and how a ``ModifiedPayload`` is put back into the traffic.

Pure (no mitmproxy) so the mapping can be tested anywhere. The payload shapes are Akto's addon's (contract
section 2.3): the request phase sends ``{"messages": [...]}`` when the body has messages (plus ``system``,
which Anthropic keeps outside ``messages`` and Akto's addon never checked), otherwise ``{"raw": <body>}``.

The modify mapping (docs/egress.md): Akto's addon replaced the whole body with ``ModifiedPayload``, losing
``model`` and every other field. Here the engine's answer is compared with what was sent, leaf for leaf
(:mod:`reference_impl.core.masking`), and only the changed text leaves are written into the original body:

============================  ======================================
leaf in the payload sent       leaf written in the traffic
============================  ======================================
``messages[i]...``             ``body.messages[i]...``
``system...``                  ``body.system...``
``raw.<path>``                 ``body.<path>``
``<path>`` (response phase)    ``response_body.<path>``
============================  ======================================
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Mapping

from akto_wire import Envelope

from ..core import safe_headers
from ..core.masking import MaskingError, apply_changes, masked_changes

_RAW_PREFIX = '{"raw": '

#: ``tag`` / ``metadata`` Akto's egress addon sends (contract section 2.3).
EGRESS_TAG = {"gen-ai": "Gen AI", "source": "AGENTIC"}

__all__ = [
    "EGRESS_TAG",
    "MaskingError",
    "build_envelope",
    "modified_body",
    "parse_json_body",
    "request_payload",
    "stream_batch_payload",
]


def parse_json_body(content: bytes | None) -> Any:
    """The JSON value of a body, or None when it is empty or not JSON (such bodies are not inspected)."""
    if not content:
        return None
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def request_payload(body: Any) -> str:
    """The ``requestPayload`` text for a JSON request body."""
    if isinstance(body, dict) and isinstance(body.get("messages"), list):
        picked = {"messages": body["messages"]}
        if "system" in body:
            picked["system"] = body["system"]
        return json.dumps(picked, ensure_ascii=False)
    return _RAW_PREFIX + json.dumps(body, ensure_ascii=False) + "}"


def stream_batch_payload(text: str) -> str:
    """The ``responsePayload`` of one stream batch (Akto's shape)."""
    return json.dumps({"content": [{"type": "text", "text": text}]}, ensure_ascii=False)


def modified_body(body: Any, sent_payload: str, modified_payload: str, *, phase: str) -> Any:
    """``body`` with the engine's redactions applied, every other field kept.

    ``phase`` is ``request`` (the payload was built by :func:`request_payload`) or ``response`` (the
    payload was the response text itself). Raises :class:`MaskingError` when the engine's answer cannot be
    mapped onto the body: the caller must not forward unmasked text then.
    """
    changes = masked_changes(sent_payload, modified_payload)
    if phase == "request" and sent_payload.startswith(_RAW_PREFIX):
        changes = {path[1:]: value for path, value in changes.items() if path[:1] == ("raw",)}
    return apply_changes(body, changes)


def build_envelope(
    *,
    path: str,
    method: str,
    request_headers: Mapping[str, str] | Iterable[tuple[str, str]],
    app_name: str,
    request_payload_text: str,
    response_payload_text: str = "",
    response_headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    status_code: int = 200,
    client_ip: str = "",
    dest_ip: str = "",
    account_id: str = "1000000",
    vxlan_id: str = "0",
) -> Envelope:
    """One MIRRORING envelope. Credentials are stripped from both header sets; ``host`` names the app."""
    headers = safe_headers(request_headers)
    if app_name:
        headers["host"] = app_name
    return Envelope.build(
        request_payload=request_payload_text,
        response_payload=response_payload_text,
        request_headers=headers,
        response_headers=safe_headers(response_headers or {}),
        status_code=status_code,
        tag=EGRESS_TAG,
        path=path,
        method=method,
        ip=client_ip or "127.0.0.1",
        destIp=dest_ip or "127.0.0.1",
        type=None,
        akto_account_id=account_id,
        akto_vxlan_id=vxlan_id,
        time=str(int(time.time() * 1000)),
    )
