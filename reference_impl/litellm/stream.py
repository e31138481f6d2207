"""Assembling a streamed chat completion into one response body for ingestion.

The stream itself is never held: the hook passes each chunk on and only feeds a copy of its text here.
"""

from __future__ import annotations

from typing import Any


class StreamCollector:
    """Concatenates ``choices[i].delta.content`` per choice, remembering ids, model and finish reasons."""

    def __init__(self) -> None:
        self.chunks = 0
        self._meta: dict[str, Any] = {}
        self._text: dict[int, list[str]] = {}
        self._finish: dict[int, str] = {}

    def add(self, chunk: Any) -> None:
        self.chunks += 1
        for field in ("id", "model", "created"):
            value = _get(chunk, field)
            if value is not None and field not in self._meta:
                self._meta[field] = value
        for choice in _get(chunk, "choices") or ():
            index = _get(choice, "index") or 0
            content = _get(_get(choice, "delta"), "content")
            if isinstance(content, str):
                self._text.setdefault(index, []).append(content)
            finish = _get(choice, "finish_reason")
            if finish:
                self._finish[index] = str(finish)

    def body(self) -> dict[str, Any]:
        """The stream as a non-streamed ``chat.completion`` body."""
        indexes = sorted(set(self._text) | set(self._finish)) or [0]
        choices = [
            {
                "index": index,
                "message": {"role": "assistant", "content": "".join(self._text.get(index, []))},
                "finish_reason": self._finish.get(index),
            }
            for index in indexes
        ]
        return {**self._meta, "object": "chat.completion", "choices": choices}


def _get(value: Any, name: str) -> Any:
    """Attribute or key access: LiteLLM hands out pydantic objects, tests may hand in dicts."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)
