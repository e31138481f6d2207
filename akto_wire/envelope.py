"""The flat "MIRRORING" envelope every connector sends to ``/api/http-proxy`` and ``/api/validate/*``."""

from __future__ import annotations

import json
import time
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict

#: The ``tag`` (and by default ``metadata``) every reference connector sends: marks the traffic as Gen AI.
DEFAULT_TAG: Mapping[str, str] = {"gen-ai": "Gen AI"}


class Envelope(BaseModel):
    """The flat "MIRRORING" envelope every connector sends. Every value is a string or null on the wire;
    headers, tag and metadata are JSON objects encoded as strings.

    The engine validates incoming bodies leniently (unknown fields ignored, missing ones defaulted) and the
    connectors build theirs with :meth:`build`.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    path: str = "/v1/chat/completions"
    requestHeaders: str = "{}"
    responseHeaders: str = "{}"
    method: str = "POST"
    requestPayload: str = ""
    responsePayload: str | None = ""
    ip: str = ""
    destIp: str = "127.0.0.1"
    time: str = ""
    statusCode: str = "200"
    type: str | None = "HTTP/1.1"
    status: str = "200"
    akto_account_id: str = "1000000"
    akto_vxlan_id: str = "0"
    is_pending: str = "false"
    source: str = "MIRRORING"
    direction: str | None = None
    process_id: str | None = None
    socket_id: str | None = None
    daemonset_id: str | None = None
    enabled_graph: str | None = None
    tag: str = '{"gen-ai": "Gen AI"}'
    metadata: str = '{"gen-ai": "Gen AI"}'
    contextSource: str = "AGENTIC"

    @classmethod
    def build(
        cls,
        *,
        request_payload: str,
        response_payload: str | None = "",
        request_headers: Mapping[str, str] | None = None,
        response_headers: Mapping[str, str] | None = None,
        status_code: int | str = 200,
        tag: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> "Envelope":
        """Build an envelope from Python values, encoding the JSON-in-a-string fields the wire wants."""
        tag_json = json.dumps(dict(tag) if tag is not None else dict(DEFAULT_TAG))
        status = str(status_code)
        fields.setdefault("time", str(int(time.time() * 1000)))
        return cls(
            requestPayload=request_payload,
            responsePayload=response_payload,
            requestHeaders=json.dumps(dict(request_headers or {})),
            responseHeaders=json.dumps(dict(response_headers or {})),
            statusCode=status,
            status=fields.pop("status", status),
            tag=tag_json,
            metadata=fields.pop("metadata", tag_json),
            **fields,
        )

    def header(self, name: str) -> str | None:
        """A request header from the JSON-encoded ``requestHeaders`` (``host`` names the Akto app)."""
        try:
            headers = json.loads(self.requestHeaders or "{}")
        except ValueError:
            return None
        if not isinstance(headers, dict):
            return None
        value = headers.get(name.lower())
        return value if isinstance(value, str) else None
