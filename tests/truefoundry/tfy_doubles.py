"""A scripted HTTP server on loopback for the TrueFoundry tests: it answers what the test says and records
what it received (headers included). It stands in for a third-party custom guardrail (to drive the gateway
simulator through every answer the contract knows) and, once, for the engine (to see the exact headers the
endpoint sends). It runs uvicorn in a thread; its delays are server behaviour, never synchronisation.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import uvicorn

from harness.process import LOOPBACK, free_port, wait_until


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)  # JSON-encoded unless bytes
    delay_s: float = 0.0
    content_type: str = "application/json"
    #: Answer only once this many calls have arrived (bounded by 5 s, then 504): proves calls run in parallel.
    barrier: int = 0
    #: Answer only once this returns true (polled off the event loop, bounded by 5 s, then 504).
    gate: Callable[[], bool] | None = None

    def encoded(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


@dataclass
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: Any


class ScriptedServer:
    """``answers[path]`` (exact path) or ``default`` decides each answer; ``received`` lists every call."""

    def __init__(self) -> None:
        self.default = Answer()
        self.answers: dict[str, Answer] = {}
        self.received: list[Received] = []
        self._arrived = asyncio.Event()
        self.port = free_port()
        config = uvicorn.Config(self._app, host=LOOPBACK, port=self.port, log_level="warning", access_log=False, interface="asgi3",
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="scripted-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def reset(self) -> None:
        self.default = Answer()
        self.answers.clear()
        self.received.clear()

    def answer(self, path: str | None = None, **fields: Any) -> None:
        if path is None:
            self.default = Answer(**fields)
        else:
            self.answers[path] = Answer(**fields)

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.received.append(Received(scope["path"], scope["query_string"].decode(), headers, body))
        self._arrived.set()
        self._arrived = asyncio.Event()
        answer = self.answers.get(scope["path"], self.default)
        if answer.barrier:
            try:
                async with asyncio.timeout(5):
                    while len(self.received) < answer.barrier:
                        await self._arrived.wait()
            except TimeoutError:
                answer = Answer(status=504, body={"error": "barrier not reached: calls did not run in parallel"})
        if answer.gate is not None:
            try:
                async with asyncio.timeout(5):
                    while not await asyncio.to_thread(answer.gate):
                        await asyncio.sleep(0.02)
            except TimeoutError:
                answer = Answer(status=504, body={"error": "gate condition not reached"})
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        payload = answer.encoded()
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [(b"content-type", answer.content_type.encode()), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    def start(self) -> "ScriptedServer":
        self._thread.start()
        wait_until(lambda: self._server.started, timeout=10, what="scripted server started")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def __enter__(self) -> "ScriptedServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
