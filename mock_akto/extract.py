"""Find the human text inside the payload strings Akto connectors send.

Every connector wraps the conversation its own way (contracts sections 2-4 and truefoundry.md 6.2):
LiteLLM double-encodes ``{"body": "<json of {model, messages, tools}>"}``, Akto's custom_hooks single-encodes
``{"body": {...}}``, the egress addon sends ``{"messages": [...]}`` or ``{"raw": <body>}`` (and stream batches
as ``{"content": [{"type": "text", ...}]}``), TrueFoundry sends the OpenAI request body, MCP calls are JSON-RPC.
Policies must judge what people, tools and models wrote, never model names, ids, roles or base64
attachments, so one walker covers every shape: it keeps the string leaves of the payload except under keys
that carry identifiers, settings or binary data, unwraps JSON that was encoded into a string where
connectors do that (``body``, ``raw``, tool-call ``arguments``), and treats tool arguments as all-text.
Anything that is not JSON is returned as itself. It never raises.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["extract_texts", "decode_json_container", "MAX_DEPTH"]

#: Keys whose values are identifiers, enums, settings, accounting or schemas, never text to judge.
_SKIP_KEYS = frozenset(
    {
        # identifiers and enums
        "model", "id", "object", "role", "type", "name", "index", "created", "created_at", "status",
        "finish_reason", "stop_reason", "stop_sequence", "tool_call_id", "tool_use_id", "call_id",
        "jsonrpc", "method", "toolName", "system_fingerprint", "service_tier", "mimeType", "mime_type",
        "media_type", "format", "signature", "encrypted_content",
        # settings and accounting
        "usage", "logprobs", "metadata", "user", "temperature", "top_p", "max_tokens",
        "max_completion_tokens", "stream", "stream_options", "tool_choice", "response_format", "stop", "seed",
        "provider_specific_fields", "annotations", "cache_control", "reasoning_effort",
        # schemas of tools: property names and types, not text anyone wrote to the model
        "parameters", "input_schema", "inputSchema", "outputSchema",
        # attachments (LiteLLM v4 checks these through its separate file guardrail call)
        "image_url", "input_audio", "file_data", "video_url",
    }
)

#: Content blocks that carry attachments rather than text (OpenAI, Anthropic, Responses API, MCP).
_ATTACHMENT_TYPES = frozenset(
    {"image", "image_url", "input_image", "input_audio", "audio", "file", "input_file", "document", "video_url"}
)

#: Keys whose string value is itself JSON in some connector: decode it and walk it as a payload.
_ENCODED_PAYLOAD_KEYS = frozenset({"body", "raw"})

#: Keys whose value is tool input: every string leaf is text, whatever its key.
_TOOL_INPUT_KEYS = frozenset({"arguments", "input"})

#: Below this depth the walk stops recursing (recursion must stay bounded) and takes every string leaf of
#: what is left with an explicit stack, skipping nothing: no connector nests text this deep, so whatever is
#: down there was put there to hide from the scan (issue 11: text in 254+ lists was never scanned).
MAX_DEPTH = 256


def extract_texts(field_text: str) -> list[str]:
    """The human-written strings in one ``requestPayload`` / ``responsePayload``, in document order.

    Non-JSON input comes back as ``[field_text]``; whitespace-only strings are dropped.
    """
    texts: list[str] = []
    if isinstance(field_text, str):
        _walk_encoded(field_text, texts, tool_input=False, depth=0)
    return texts


def _add(text: str, texts: list[str]) -> None:
    if text and not text.isspace():
        texts.append(text)


def _walk_encoded(text: str, texts: list[str], *, tool_input: bool, depth: int) -> None:
    """A string that may hold JSON (the whole field, ``body``, ``raw``, ``arguments``): decode it or keep it."""
    decoded = decode_json_container(text)
    if decoded is None:
        _add(text, texts)
    elif tool_input:
        _walk_leaves(decoded, texts, depth + 1)
    else:
        _walk_payload(decoded, texts, depth + 1)


def _walk_leaves(value: Any, texts: list[str], depth: int) -> None:
    """Tool input: every string leaf is text, whatever its key (``{"id": "123-45-6789"}`` is user data)."""
    if isinstance(value, str):
        _add(value, texts)
    elif depth > MAX_DEPTH:
        _deep_leaves(value, texts)
    elif isinstance(value, dict):
        for child in value.values():
            _walk_leaves(child, texts, depth + 1)
    elif isinstance(value, list):
        for child in value:
            _walk_leaves(child, texts, depth + 1)


def _walk_payload(value: Any, texts: list[str], depth: int) -> None:
    """A payload object: skip identifier keys and attachments, unwrap the wrappers connectors use."""
    if isinstance(value, str):
        _add(value, texts)
        return
    if depth > MAX_DEPTH:
        _deep_leaves(value, texts)
        return
    if isinstance(value, list):
        for child in value:
            _walk_payload(child, texts, depth + 1)
        return
    if not isinstance(value, dict) or value.get("type") in _ATTACHMENT_TYPES:
        return
    if "requestBody" in value or "responseBody" in value:
        # A TrueFoundry guardrail body: the conversation lives in these two; context and config are not text.
        value = {key: value[key] for key in ("requestBody", "responseBody") if key in value}
    for key, child in value.items():
        if key in _SKIP_KEYS:
            continue
        if key in _ENCODED_PAYLOAD_KEYS:
            # custom_hooks tool calls send {"body": <tool arguments>, "toolName": ...}
            tool_input = "toolName" in value
            if isinstance(child, str):
                _walk_encoded(child, texts, tool_input=tool_input, depth=depth + 1)
            elif tool_input:
                _walk_leaves(child, texts, depth + 1)
            else:
                _walk_payload(child, texts, depth + 1)
        elif key in _TOOL_INPUT_KEYS and not isinstance(child, list):
            # Tool-call ``arguments`` (often a JSON string) and Anthropic ``tool_use.input``; a string
            # ``input`` is the Responses API prompt. A list ``input`` (Responses items) is a payload.
            if isinstance(child, str):
                if key == "arguments":
                    _walk_encoded(child, texts, tool_input=True, depth=depth + 1)
                else:
                    _add(child, texts)
            else:
                _walk_leaves(child, texts, depth + 1)
        else:
            _walk_payload(child, texts, depth + 1)


def _deep_leaves(value: Any, texts: list[str]) -> None:
    """Every string leaf (keys' values and list items) under ``value`` in document order, without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _add(item, texts)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def decode_json_container(text: str) -> Any:
    """The JSON object or array encoded in ``text``, or None when it holds anything else."""
    start = text.lstrip()[:1]
    if start == '"':
        # A JSON string literal: one more layer of encoding around the payload.
        inner = _loads(text)
        return decode_json_container(inner) if isinstance(inner, str) else None
    if start not in ("{", "["):
        return None
    decoded = _loads(text)
    return decoded if isinstance(decoded, (dict, list)) else None


def _loads(text: str) -> Any:
    """orjson first (fast); the stdlib parser for what orjson refuses (lone surrogates); None if neither."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None
