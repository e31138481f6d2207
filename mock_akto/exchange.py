"""One request/answer exchange on the wire: what faults act on.

The engine computes the normal :class:`Answer` first (policies, journal), then hands the
:class:`Exchange` to the matching fault, if any, which decides how (or whether) that answer reaches the
client. Without a fault the engine calls :meth:`Exchange.deliver` itself.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from .profiles import AktoProfile
from .protocol import RawSocket
from .types import Message, Receive, Scope, Send


JSON_TYPE = "application/json"


@dataclass
class Answer:
    """An HTTP answer before it is sent. ``json`` keeps the object so schema faults can bend it.

    ``chunks``, when set, is a big body as it came from a scan worker's pipe (:mod:`mock_akto.scan_worker`;
    ``body`` and ``json`` are then empty): sent chunk by chunk, never joined or parsed in the engine process
    (a 10 MB join or parse holds the GIL for tens of ms) unless a fault must read it (:meth:`whole`).
    """

    status: int = 200
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None
    chunks: list[bytes] | None = None

    @classmethod
    def of_json(cls, obj: Any, status: int = 200) -> "Answer":
        return cls(status=status, body=orjson.dumps(obj), json=obj)

    @property
    def size(self) -> int:
        """The body's length in bytes."""
        return len(self.body) if self.chunks is None else sum(map(len, self.chunks))

    def copy(self) -> "Answer":
        """An independent copy (faults may change an answer; a memoised one must stay as computed)."""
        return Answer(status=self.status, body=self.body, content_type=self.content_type,
                      headers=list(self.headers), json=self.json, chunks=self.chunks)

    def whole(self) -> "Answer":
        """This answer with its body in one piece and its JSON parsed: for a fault that reads or bends them.
        The join and parse cost the event loop milliseconds per MB, so only a fault's path pays them."""
        if self.chunks is None:
            return self
        body = b"".join(self.chunks)
        try:
            obj = orjson.loads(body) if self.content_type == JSON_TYPE else None
        except orjson.JSONDecodeError:
            obj = None
        return Answer(status=self.status, body=body, content_type=self.content_type, headers=list(self.headers),
                      json=obj)

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers of the ASGI ``http.response.start`` message."""
        headers = [(b"content-type", self.content_type.encode("latin-1")),
                   (b"content-length", str(self.size).encode())]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        return headers

    def with_json(self, obj: Any) -> "Answer":
        """The same answer (status, extra headers) carrying another JSON object: for schema faults."""
        return Answer(status=self.status, body=orjson.dumps(obj), content_type=JSON_TYPE,
                      headers=list(self.headers), json=obj)

    def raw_head(self, content_length: int | None = None) -> bytes:
        """The status line and headers as bytes, for faults that write to the socket themselves."""
        length = self.size if content_length is None else content_length
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}", f"content-type: {self.content_type}",
                 f"content-length: {length}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send_chunks(send: Send, chunks: list[bytes]) -> None:
    """A body as ASGI ``more_body`` messages, one per chunk (the server applies the socket's backpressure
    between them)."""
    last = len(chunks) - 1
    for index, chunk in enumerate(chunks):
        await send({"type": "http.response.body", "body": chunk, "more_body": index < last})
    if last < 0:
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Exchange:
    """The live exchange: ASGI channels, the computed answer and the raw socket.

    ``started`` is when the engine received the call (``time.perf_counter()`` seconds: when the server
    parsed its first bytes, :func:`mock_akto.protocol.arrived_at`): delays count from it, so the engine's
    own work and the wait for a busy event loop are inside a delay, not added to it.
    ``status_sent`` is the status of the answer once its head was handed to the server (None while
    nothing was sent, and after a socket-level fault), for the journal.

    ``messages``, when given, are the ASGI start and body messages of ``answer`` already built (a memoised
    reply): delivering that same answer sends them as they are. Faults never change an answer in place;
    they put another one in ``answer``, which is then built afresh.
    """

    scope: Scope
    receive: Receive
    send: Send
    answer: Answer
    started: float = field(default_factory=time.perf_counter)
    messages: tuple[Message, Message] | None = None
    status_sent: int | None = field(default=None, init=False)
    #: The Akto profile of the gateway between this call and guardrails-service (None: no gateway, e.g.
    #: ``/api/validate/*`` called directly, or no guardrails flag): what ``slow_guardrails`` obeys.
    gateway: AktoProfile | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._messages_of = self.answer  # the answer ``messages`` were built for

    @property
    def raw(self) -> RawSocket:
        return RawSocket(self.scope, self.receive)

    async def deliver(self, answer: Answer | None = None) -> None:
        """Send ``answer`` (default: the computed one) as one ASGI response."""
        answer = answer or self.answer
        self.status_sent = answer.status
        if self.messages is not None and answer is self._messages_of:
            start, body = self.messages
        else:
            start = {"type": "http.response.start", "status": answer.status, "headers": answer.asgi_headers()}
            body = {"type": "http.response.body", "body": answer.body}
        await self.send(start)
        if answer.chunks is None:
            await self.send(body)
        else:
            await send_chunks(self.send, answer.chunks)

    async def deliver_in_chunks(self, chunks: int, total_seconds: float, answer: Answer | None = None) -> None:
        """Send the answer's body in ``chunks`` pieces spread over ``total_seconds`` (a trickle)."""
        answer = answer or self.answer
        body = answer.body
        chunks = max(1, min(chunks, len(body) or 1))
        size = -(-len(body) // chunks)
        pause = total_seconds / chunks
        self.status_sent = answer.status
        await self.send({"type": "http.response.start", "status": answer.status, "headers": answer.asgi_headers()})
        for index in range(chunks):
            await asyncio.sleep(pause)
            piece = body[index * size:(index + 1) * size]
            await self.send({"type": "http.response.body", "body": piece, "more_body": index < chunks - 1})

    async def wait_disconnect(self, max_seconds: float) -> None:
        """Hold the request open until the client gives up or ``max_seconds`` pass (then close)."""
        try:
            async with asyncio.timeout(max_seconds):
                while (await self.receive())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            raw = self.raw
            raw.close()
            await raw.wait_closed()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            413: "Payload Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
