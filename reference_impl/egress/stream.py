"""Guarding a streamed (SSE) response in batches of text, independent of the proxy that carries it.

Pure asyncio, no mitmproxy: the addon feeds the bytes it receives and forwards what these classes hand
back. Two modes (docs/egress.md, "Streaming"):

* :class:`AsyncStreamTap`: every byte is forwarded at once; each batch of text (``batch_chars``) and the
  rest at the end are sent for checking in the background. A block verdict is only reported: the client
  never waits and is never cut off.
* :class:`SyncStreamGate`: the bytes of a batch are held until that batch's verdict. Events without text
  (``message_start``, pings, usage, ``[DONE]``) flow at once unless text is already held before them,
  because order is kept. A block (or a failed check under fail_closed) releases nothing more of the stream
  and ends it with a provider-shaped error event; later upstream bytes are dropped.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Awaitable, Callable

from .sse import SseEvent, SseSplitter, error_event


@dataclass(frozen=True)
class StreamDecision:
    """The outcome of one batch check. ``kind`` names the error event type when it stops the stream."""

    allow: bool
    reason: str = ""
    kind: str = "guardrails_blocked"


CheckBatch = Callable[[str], Awaitable[StreamDecision]]


class StreamDecoder:
    """Undoes a ``gzip`` / ``deflate`` content-encoding chunk by chunk (other encodings are refused)."""

    SUPPORTED = ("gzip", "x-gzip", "deflate")

    def __init__(self, encoding: str) -> None:
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflate = None
        elif encoding in self.SUPPORTED:
            self._inflate = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
        else:
            raise ValueError(f"unsupported content-encoding {encoding!r}")

    def decode(self, data: bytes) -> bytes:
        return self._inflate.decompress(data) if self._inflate is not None else data

    def flush(self) -> bytes:
        return self._inflate.flush() if self._inflate is not None else b""


class AsyncStreamTap:
    """Forwards every chunk untouched and starts a background check per batch of text."""

    def __init__(self, start_check: Callable[[str], None], batch_chars: int) -> None:
        self._start_check = start_check
        self._batch_chars = batch_chars
        self._splitter = SseSplitter()
        self._text: list[str] = []
        self._size = 0
        self.batches = 0

    def feed(self, data: bytes) -> bytes:
        self._take(self._splitter.feed(data))
        return data

    def finish(self) -> None:
        self._take(self._splitter.finish())
        self._flush()

    def _take(self, events: list[SseEvent]) -> None:
        for event in events:
            if event.text:
                self._text.append(event.text)
                self._size += len(event.text)
                if self._size >= self._batch_chars:
                    self._flush()

    def _flush(self) -> None:
        if self._size:
            text = "".join(self._text)
            self._text.clear()
            self._size = 0
            self.batches += 1
            self._start_check(text)


class SyncStreamGate:
    """Holds each batch of events until its verdict; see the module docstring for the rules.

    Protocol: :meth:`feed` (or :meth:`finish` at the end) says whether a batch is waiting for a verdict;
    if so the caller awaits :meth:`settle` before it forwards :meth:`take`. Without a waiting batch,
    :meth:`take` can be called at once.
    """

    def __init__(self, check: CheckBatch, batch_chars: int, provider: str) -> None:
        self._check = check
        self._batch_chars = batch_chars
        self._provider = provider
        self._splitter = SseSplitter()
        self._open = bytearray()  # events of the batch being filled
        self._open_text: list[str] = []
        self._open_size = 0
        #: Closed segments in stream order: (bytes, text); empty text needs no verdict.
        self._queue: list[tuple[bytes, str]] = []
        self._released = bytearray()
        self.stopped: StreamDecision | None = None
        self.batches = 0

    def feed(self, data: bytes) -> bool:
        if self.stopped is None:
            for event in self._splitter.feed(data):
                self._add(event)
            self._release_free()
        return bool(self._queue)

    def finish(self) -> bool:
        if self.stopped is None:
            for event in self._splitter.finish():
                self._add(event)
            self._close()
            self._release_free()
        return bool(self._queue)

    async def settle(self) -> None:
        """Await the verdict of every waiting batch, in stream order; release it, or stop the stream."""
        while self._queue and self.stopped is None:
            raw, text = self._queue.pop(0)
            if text:
                self.batches += 1
                decision = await self._check(text)
                if not decision.allow:
                    self.stopped = decision
                    self._released += error_event(self._provider, decision.reason, kind=decision.kind)
                    break
            self._released += raw
        if self.stopped is not None:
            self._queue.clear()
            self._open.clear()

    def take(self) -> bytes:
        out = bytes(self._released)
        self._released.clear()
        return out

    def _add(self, event: SseEvent) -> None:
        self._open += event.raw
        if event.text:
            self._open_text.append(event.text)
            self._open_size += len(event.text)
            if self._open_size >= self._batch_chars:
                self._close()
        elif not self._open_size:
            self._close()  # nothing to judge before this event: a free segment

    def _close(self) -> None:
        if self._open:
            self._queue.append((bytes(self._open), "".join(self._open_text)))
        self._open.clear()
        self._open_text.clear()
        self._open_size = 0

    def _release_free(self) -> None:
        while self._queue and not self._queue[0][1]:
            self._released += self._queue.pop(0)[0]
