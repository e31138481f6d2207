"""Anthropic Messages API bodies and stream events, in the order and shape the real API sends them."""

from __future__ import annotations

from typing import Any

import orjson

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def message(ident: str, model: str, text: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def event(data: dict[str, Any]) -> bytes:
    """One SSE event: Anthropic names each event on an ``event:`` line matching its ``type``."""
    return b"event: " + data["type"].encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def message_start(ident: str, model: str, input_tokens: int) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    }


def content_block_start() -> dict[str, Any]:
    return {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}


def ping() -> dict[str, Any]:
    return {"type": "ping"}


def text_delta(text: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}


def content_block_stop() -> dict[str, Any]:
    return {"type": "content_block_stop", "index": 0}


def message_delta(output_tokens: int) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }


def message_stop() -> dict[str, Any]:
    return {"type": "message_stop"}


def error_body(status: int, message_text: str, error_type: str | None = None) -> dict[str, Any]:
    default_type = _ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": error_type or default_type, "message": message_text}}
