"""The ceiling of this server stack: a raw ASGI app that reads the body and answers fixed verdict bytes.

Served by the same uvicorn + uvloop + httptools as the engine, it measures what the stack itself costs, so
the engine's throughput can be stated as a fraction of the best any app on this stack could do. The bytes
come from the file named by ``BENCH_RAW_BODY_FILE`` (the bench writes the engine's own answer there);
``BENCH_RAW_DELAY_MS`` adds an ``asyncio.sleep`` first (the ceiling for delay precision).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Awaitable, Callable

BODY_FILE_ENV = "BENCH_RAW_BODY_FILE"
DELAY_MS_ENV = "BENCH_RAW_DELAY_MS"

_body = Path(os.environ[BODY_FILE_ENV]).read_bytes() if os.environ.get(BODY_FILE_ENV) else b'{"success":true}'
_delay_s = int(os.environ.get(DELAY_MS_ENV) or 0) / 1000
_start = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_body)).encode())],
}
_reply = {"type": "http.response.body", "body": _body}


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], send: Callable[..., Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the request body like the engine must, then answer
        message = await receive()
        more = message.get("more_body", False)
    if _delay_s:
        await asyncio.sleep(_delay_s)
    await send(_start)
    await send(_reply)
