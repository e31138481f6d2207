"""Akto's TrueFoundry guardrail endpoint, ``/api/http-proxy/truefoundry`` (truefoundry.md 6-8), as data.

TrueFoundry's gateway posts ``{requestBody, responseBody?, context, config}``; Akto cuts the messages to
the last user message, turns the call into its flat traffic record, checks input calls and ingests
output calls, and answers ``{}`` with a status (200 pass, 400 blocked, 422 no ``requestBody``). What the
``sync`` query parameter changes is the profile's ``truefoundry_sync`` (:mod:`mock_akto.profiles`).
Streaming ingestion of the previous turn (``streaming=true``) is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .errors import BadRequest

#: What Akto's endpoint puts in every record it makes (truefoundry.md 6.2).
APP_HEADERS = orjson.dumps({"content-type": "application/json", "host": "app.truefoundry.com"}).decode()
TAG = orjson.dumps({"gen-ai": "Gen AI", "ai-agent": "truefoundry"}).decode()
BLOCKED_MARK = orjson.dumps({"x-blocked-by": "Akto Proxy"}).decode()
JSON_HEADERS = orjson.dumps({"content-type": "application/json"}).decode()


def last_user_message(request_body: dict[str, Any]) -> dict[str, Any]:
    """``requestBody`` with ``messages`` cut to the last ``user`` message (left alone without one)."""
    messages = request_body.get("messages")
    if not isinstance(messages, list):
        return request_body
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return {**request_body, "messages": users[-1:]} if users else request_body


@dataclass(frozen=True)
class TrueFoundryCall:
    """One call to the endpoint: the trimmed request, the response (None on an input hook) and ``sync``."""

    request_body: dict[str, Any]
    response_body: dict[str, Any] | None
    sync: bool | None  # None: no ``sync`` in the query

    @classmethod
    def parse(cls, data: dict[str, Any], query: dict[str, str]) -> "TrueFoundryCall":
        """The call in a parsed body; :class:`BadRequest` when ``requestBody`` is missing or empty (422)."""
        request_body = data.get("requestBody")
        if not isinstance(request_body, dict) or not request_body:
            raise BadRequest("requestBody is required", "missing requestBody")
        response_body = data.get("responseBody")
        sync = query.get("sync")
        return cls(last_user_message(request_body),
                   response_body if isinstance(response_body, dict) and response_body else None,
                   None if sync is None else sync.lower() == "true")  # Akto compared with "true", ignoring case

    def plan(self, sync_honoured: bool) -> tuple[bool, bool, bool]:
        """(check the input, may block, ingest): truefoundry.md 7.1 (sync ignored) and 7.2 (honoured)."""
        output = self.response_body is not None
        if not sync_honoured or self.sync:
            return (not output, not output, output)
        return (output, False, output)  # sync false or absent: input is a no-op, output is checked in the background

    def note(self, sync_honoured: bool) -> str:
        """Why the call was handled as it was, for the journal."""
        sync = "absent" if self.sync is None else str(self.sync).lower()
        hook = "output" if self.response_body is not None else "input"
        if not sync_honoured:
            return f"truefoundry {hook} hook, sync={sync} ignored (profile: sync ignored)"
        return f"truefoundry {hook} hook, sync={sync} honoured (profile: historical sync matrix)"

    def envelope(self, *, blocked: bool) -> dict[str, Any]:
        """Akto's flat traffic record of this call; ``blocked``: the record of a blocked input."""
        record: dict[str, Any] = {
            "path": "/api/llm/chat/completions", "method": "POST", "requestHeaders": APP_HEADERS,
            "requestPayload": orjson.dumps(self.request_body).decode(), "akto_account_id": "1000000",
            "akto_vxlan_id": "0", "tag": TAG, "source": "MIRRORING",
        }
        if blocked:
            record.update(responseHeaders=JSON_HEADERS, responsePayload=BLOCKED_MARK, statusCode="400",
                          status="forbidden")
        elif self.response_body is not None:
            record.update(responseHeaders=JSON_HEADERS, responsePayload=orjson.dumps(self.response_body).decode(),
                          statusCode="200", status="OK")
        return record
