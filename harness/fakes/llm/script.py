"""What the fake LLM is told to do (the script) and what it saw (the recording).

Both are plain pydantic models so the server, its ``/__fake`` API and the Python client share one shape,
and a bad script is refused with a message naming the field instead of being half-applied.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Provider = Literal["openai.chat", "openai.responses", "openai.models", "anthropic.messages", "unknown"]

DEFAULT_MAX_RECORDED = 1000


class InjectedError(BaseModel):
    """Answer with a provider-shaped error instead of a completion (e.g. 429 or 500)."""

    model_config = ConfigDict(extra="forbid")

    status: int = Field(500, ge=400, le=599)
    message: str = "injected failure from the fake LLM"
    #: The provider's error ``type``; derived from ``status`` when left out (429 -> rate limit, ...).
    type: str | None = None
    #: Fail this many requests, then recover. ``None``: fail until the script changes.
    count: int | None = Field(None, ge=1)
    #: Sent as a ``Retry-After`` header when set (SDKs honour it between retries).
    retry_after_s: int | None = Field(None, ge=0, le=3600)


class Script(BaseModel):
    """How the fake answers every LLM call until told otherwise. Defaults: a short deterministic reply."""

    model_config = ConfigDict(extra="forbid")

    #: Reply text. ``None``: "Hello from fake-openai" / "Hello from fake-anthropic".
    reply: str | None = None
    #: Reply with the last user message instead (so whatever the connector forwarded comes back).
    echo: bool = False
    #: Stream the reply in pieces of this many characters ...
    stream_chunk_chars: int | None = Field(None, ge=1)
    #: ... or in this many (near-)equal pieces. Neither: one piece per word, like tokens.
    stream_chunks: int | None = Field(None, ge=1, le=100_000)
    #: Wait before the first byte of the answer (status line included).
    first_byte_ms: int = Field(0, ge=0, le=600_000)
    #: Wait between streamed events.
    chunk_interval_ms: int = Field(0, ge=0, le=60_000)
    #: Cut a stream (connection closed, no final event) after this many content pieces.
    abort_stream_after: int | None = Field(None, ge=0)
    error: InjectedError | None = None
    #: What ``GET /v1/models`` lists.
    models: list[str] = Field(default_factory=lambda: ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-latest"])

    @model_validator(mode="after")
    def _one_chunking_rule(self) -> "Script":
        if self.stream_chunk_chars is not None and self.stream_chunks is not None:
            raise ValueError("set stream_chunk_chars or stream_chunks, not both")
        if self.echo and self.reply is not None:
            raise ValueError("set reply or echo, not both")
        return self

    def pieces(self, text: str) -> list[str]:
        """Split ``text`` into the streamed content pieces (joined, they are ``text`` again)."""
        if not text:
            return []
        if self.stream_chunk_chars is not None:
            size = self.stream_chunk_chars
            return [text[i : i + size] for i in range(0, len(text), size)]
        if self.stream_chunks is not None:
            count = min(self.stream_chunks, len(text))
            bounds = [round(i * len(text) / count) for i in range(count + 1)]
            return [text[bounds[i] : bounds[i + 1]] for i in range(count)]
        return _word_pieces(text)


def _word_pieces(text: str) -> list[str]:
    """'Hello from fake' -> ['Hello', ' from', ' fake']: roughly how providers stream tokens."""
    pieces: list[str] = []
    current = ""
    for char in text:
        if char == " " and current.strip():
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces


class RecordedRequest(BaseModel):
    """One request the fake received, as tests need it: was the LLM called, with what."""

    seq: int
    at: float
    method: str
    path: str
    query: str = ""
    provider: Provider
    stream: bool = False
    #: Lower-cased names. Kept verbatim: this is an in-memory test fixture on loopback, never logged.
    headers: dict[str, str] = Field(default_factory=dict)
    #: The JSON body, or ``None`` when there was none or it was not JSON (then see ``body_text``).
    json_body: Any = None
    body_text: str | None = None
    #: The status the fake answered with.
    status: int = 200

    @property
    def model(self) -> str | None:
        return self.json_body.get("model") if isinstance(self.json_body, dict) else None


class Recorder:
    """A bounded ring buffer of requests: a long test run cannot grow it without limit."""

    def __init__(self, max_size: int = DEFAULT_MAX_RECORDED) -> None:
        self._items: deque[RecordedRequest] = deque(maxlen=max_size)
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add(self, item: RecordedRequest) -> None:
        self._items.append(item)

    def items(self) -> list[RecordedRequest]:
        return list(self._items)

    @property
    def total(self) -> int:
        """How many requests arrived since start (recordings dropped by the ring included)."""
        return self._seq

    def clear(self) -> None:
        self._items.clear()


def now() -> float:
    return time.time()
