"""Read the text out of a provider request: for ``echo`` replies and for deterministic token counts."""

from __future__ import annotations

from typing import Any


def content_text(content: Any) -> str:
    """A message ``content``: a string, or a list of parts whose ``text`` fields are joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Chat / Messages ``messages`` or Responses ``input`` as a list of role+content messages."""
    if isinstance(body.get("messages"), list):
        return [m for m in body["messages"] if isinstance(m, dict)]
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        return [{"role": "user", "content": raw_input}]
    if isinstance(raw_input, list):
        return [m for m in raw_input if isinstance(m, dict)]
    return []


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(messages_of(body)):
        if message.get("role", "user") == "user":
            return content_text(message.get("content"))
    return ""


def all_text(body: dict[str, Any]) -> str:
    parts = [content_text(m.get("content")) for m in messages_of(body)]
    system = body.get("system")
    if system is not None:
        parts.insert(0, content_text(system))
    return " ".join(parts)


def count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: whitespace-separated words, at least 1."""
    return max(1, len(text.split()))
