"""A tiny test-only server that computes an allow answer and lets one fault break it.

It exists so the fault catalogue and rule book can be tested over real sockets before (and apart from)
the engine. Run as ``python fault_server.py --port N``; it binds 127.0.0.1 only.

- ``GET /health``: 200.
- ``POST /__rules`` (a FaultRule as JSON), ``GET /__rules``, ``DELETE /__rules``: its one RuleBook.
- anything else: the body may be ``{"fault": {...}, "text": "..."}``. The answer is the Akto success
  body with an allow verdict echoing ``text``; the given fault, else the rule book's pick, delivers it.
"""

from __future__ import annotations

import argparse
from typing import Any, MutableMapping
from urllib.parse import parse_qsl

import orjson
import uvicorn
from pydantic import ValidationError

import akto_wire as wire
from mock_akto.exchange import Answer, Exchange
from mock_akto.faults import parse_fault
from mock_akto.protocol import TransportExposingProtocol
from mock_akto.rules import CallInfo, FaultRule, RuleBook
from mock_akto.types import Receive, Send

#: Extra header on the computed answer, so tests can see which faults keep it.
MARK_HEADER = ("x-fault-server", "1")

RULES = RuleBook()


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    body = await read_body(receive)
    path, method = scope["path"], scope["method"]
    if path == "/health":
        await Exchange(scope, receive, send, Answer(body=b"ok", content_type="text/plain")).deliver()
        return
    exchange = Exchange(scope, receive, send, Answer())
    try:
        if path == "/__rules":
            await admin_rules(exchange, method, body)
            return
        request = orjson.loads(body) if body else {}
        fault = parse_fault(request["fault"]) if request.get("fault") else None
    except (ValidationError, ValueError) as error:
        await exchange.deliver(Answer.of_json({"error": str(error)}, status=422))
        return
    if fault is None:
        query = dict(parse_qsl(scope["query_string"].decode()))
        flags = wire.Flags.resolve(query, request)
        fault = RULES.pick(CallInfo(path=path, method=method, flags=flags, connector=flags.akto_connector,
                                    body_text=body.decode(errors="replace")))
    verdict = wire.Verdict.allow(str(request.get("text", "hello"))).to_wire()
    exchange.answer = Answer.of_json(wire.success_body(verdict))
    exchange.answer.headers.append(MARK_HEADER)
    if fault is None:
        await exchange.deliver()
    else:
        await fault.apply(exchange)


async def admin_rules(exchange: Exchange, method: str, body: bytes) -> None:
    if method == "POST":
        rule = RULES.add(FaultRule.model_validate_json(body))
        await exchange.deliver(Answer.of_json(rule.model_dump(mode="json")))
    elif method == "DELETE":
        RULES.clear()
        await exchange.deliver(Answer.of_json({"cleared": True}))
    else:
        await exchange.deliver(Answer.of_json([rule.model_dump(mode="json") for rule in RULES.list()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, http=TransportExposingProtocol, lifespan="off",
                log_level="warning", access_log=False, backlog=2048)


if __name__ == "__main__":
    main()
