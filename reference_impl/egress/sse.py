"""Server-sent events of AI providers: split a byte stream into events, read their text, shape errors.

Pure (no mitmproxy). Events end at a blank line (``\\n\\n``, ``\\r\\n\\r\\n`` or ``\\r\\r``); bytes of an
unfinished event wait for the next chunk. The text read per event is what a guardrail must see:

=====================================================  ==========================================
event                                                  text
=====================================================  ==========================================
OpenAI chat ``choices[].delta.content``                the content
OpenAI chat ``choices[].delta.tool_calls[].function``  the ``arguments`` fragment
OpenAI Responses ``response.output_text.delta`` and    ``delta`` (Akto's addon read none of these)
``response.function_call_arguments.delta``
Anthropic ``content_block_delta`` ``text_delta``       ``delta.text``
Anthropic ``content_block_delta`` ``input_json_delta`` ``delta.partial_json``
Anthropic ``content_block_start`` of a ``tool_use``    the marker ``[tool:<name>]``
=====================================================  ==========================================
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


@dataclass(frozen=True)
class SseEvent:
    """One complete event: its exact bytes (separator included) and the text a guardrail must judge."""

    raw: bytes
    text: str


class SseSplitter:
    """Cuts a byte stream into complete events; keeps the unfinished tail for the next :meth:`feed`."""

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, data: bytes) -> list[SseEvent]:
        buffer = self._tail + data
        events: list[SseEvent] = []
        start = 0
        for match in _EVENT_END.finditer(buffer):
            raw = buffer[start : match.end()]
            events.append(SseEvent(raw, event_text(raw)))
            start = match.end()
        self._tail = buffer[start:]
        return events

    def finish(self) -> list[SseEvent]:
        """The unterminated last event, if the stream ended without a blank line."""
        tail, self._tail = self._tail, b""
        return [SseEvent(tail, event_text(tail))] if tail else []

    @property
    def pending(self) -> bytes:
        return self._tail


def event_text(raw: bytes) -> str:
    """The guardrail text of one event (empty for metadata, pings, ``[DONE]`` and anything unreadable)."""
    lines = raw.decode("utf-8", errors="replace").splitlines()
    data = "\n".join(line[5:].removeprefix(" ") for line in lines if line.startswith("data:"))
    if not data or data.strip() == "[DONE]":
        return ""
    try:
        payload = json.loads(data)
    except ValueError:
        return ""
    return payload_text(payload) if isinstance(payload, dict) else ""


def payload_text(payload: dict[str, Any]) -> str:
    kind = payload.get("type")
    if kind == "content_block_delta":
        delta = payload.get("delta") or {}
        if delta.get("type") == "text_delta":
            return _str(delta.get("text"))
        if delta.get("type") == "input_json_delta":
            return _str(delta.get("partial_json"))
        return ""
    if kind == "content_block_start":
        block = payload.get("content_block") or {}
        return f"[tool:{_str(block.get('name'))}]" if block.get("type") == "tool_use" else _str(block.get("text"))
    if kind in ("response.output_text.delta", "response.function_call_arguments.delta", "response.refusal.delta"):
        return _str(payload.get("delta"))
    parts: list[str] = []
    for choice in payload.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        parts.append(_str(delta.get("content")))
        parts.append(_str(delta.get("refusal")))
        for call in delta.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                parts.append(_str(function.get("arguments")))
    return "".join(parts)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def error_event(provider: str, reason: str, *, kind: str = "guardrails_blocked") -> bytes:
    """The event that ends a stream the guardrail stopped, shaped so the provider's SDK raises on it.

    Anthropic SDKs raise on an ``event: error``; OpenAI SDKs raise on a ``data:`` object with ``error``
    (then ``[DONE]`` closes the stream for clients that keep reading).
    """
    if provider == "anthropic":
        body = {"type": "error", "error": {"type": kind, "message": reason}}
        return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"
    body = {"error": {"message": reason, "type": kind, "code": kind}}
    return b"data: " + json.dumps(body).encode() + b"\n\ndata: [DONE]\n\n"


def provider_of(host: str) -> str:
    """``anthropic`` for Anthropic's API host, ``openai`` for every other SSE host (Akto's rule)."""
    return "anthropic" if host.lower().endswith("anthropic.com") else "openai"
