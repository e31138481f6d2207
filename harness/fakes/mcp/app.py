"""The fake MCP server as one Starlette app: JSON-RPC 2.0 on ``POST /mcp`` plus a ``/__fake`` script API.

It answers what a Streamable HTTP MCP client (LiteLLM's proxy uses the ``mcp`` SDK's) sends:
``initialize``, ``notifications/*`` (202, no body), ``ping``, ``tools/list`` (one tool, ``lookup``) and
``tools/call`` (the scripted reply as text content). Answers are plain ``application/json``, which the
transport allows; ``GET /mcp`` (a server-to-client event stream) is refused with 405, as servers without
one do. Only ``tools/call`` requests are recorded: "was the tool called, with what" is what tests ask.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: The one tool the fake serves: ``lookup(query: str)``.
TOOL_NAME = "lookup"
DEFAULT_REPLY = "Hello from fake-mcp"
PROTOCOL_VERSION = "2025-06-18"
MAX_BODY = 1024 * 1024
MAX_RECORDED = 1000

TOOL = {
    "name": TOOL_NAME,
    "description": "Looks a query up (a test double: answers the scripted reply).",
    "inputSchema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}


class ToolScript(BaseModel):
    """What every ``tools/call`` answers until told otherwise."""

    model_config = ConfigDict(extra="forbid")

    #: The tool result's text. ``None``: "Hello from fake-mcp".
    reply: str | None = None


class RecordedCall(BaseModel):
    """One ``tools/call`` the fake received (the same fields tests read on the fake LLM's recordings)."""

    seq: int
    at: float
    method: str
    path: str
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = None
    body_text: str | None = None
    status: int = 200

    @property
    def model(self) -> str | None:
        """The tool name (tools have no model; ``llm_received.model`` checks compare against this)."""
        params = self.json_body.get("params") if isinstance(self.json_body, dict) else None
        return params.get("name") if isinstance(params, dict) else None


class FakeMCPState:
    def __init__(self) -> None:
        self.script = ToolScript()
        self.calls: list[RecordedCall] = []
        self.seq = 0

    def record(self, request: Request, body: Any) -> None:
        self.seq += 1
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.calls.append(RecordedCall(seq=self.seq, at=time.time(), method=request.method, path=request.url.path,
                                       headers=headers, json_body=body))
        del self.calls[:-MAX_RECORDED]


def _rpc_result(rpc_id: Any, result: Any) -> JSONResponse:
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "result": result})


def _rpc_error(rpc_id: Any, code: int, message: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"jsonrpc": "2.0", "id": rpc_id, "error": {"code": code, "message": message}}, status_code=status)


def create_app(state: FakeMCPState | None = None) -> Starlette:
    state = state or FakeMCPState()

    async def mcp(request: Request) -> Response:
        if request.method != "POST":
            return Response(status_code=405, headers={"allow": "POST"})
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _rpc_error(None, -32600, f"request body above {MAX_BODY} bytes", status=413)
        try:
            message = json.loads(raw)
        except ValueError:
            return _rpc_error(None, -32700, "parse error: the body is not JSON", status=400)
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
            return _rpc_error(None, -32600, "invalid request: one JSON-RPC 2.0 request object expected", status=400)
        method, rpc_id = message["method"], message.get("id")
        if "id" not in message:  # a notification (notifications/initialized, cancelled, ...)
            return Response(status_code=202)
        if method == "initialize":
            return _rpc_result(rpc_id, {"protocolVersion": (message.get("params") or {}).get("protocolVersion", PROTOCOL_VERSION),
                                        "capabilities": {"tools": {"listChanged": False}},
                                        "serverInfo": {"name": "fake-mcp", "version": "1.0"}})
        if method == "ping":
            return _rpc_result(rpc_id, {})
        if method == "tools/list":
            return _rpc_result(rpc_id, {"tools": [TOOL]})
        if method == "tools/call":
            params = message.get("params") or {}
            if not isinstance(params, dict) or params.get("name") != TOOL_NAME:
                return _rpc_error(rpc_id, -32602, f"unknown tool {params.get('name') if isinstance(params, dict) else params!r}")
            state.record(request, message)
            reply = state.script.reply if state.script.reply is not None else DEFAULT_REPLY
            return _rpc_result(rpc_id, {"content": [{"type": "text", "text": reply}], "isError": False})
        return _rpc_error(rpc_id, -32601, f"method not found: {method}")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def script_route(request: Request) -> Response:
        if request.method == "PATCH":
            try:
                changes = await request.json()
                state.script = ToolScript.model_validate(state.script.model_dump() | changes)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)[:2000]}, status_code=422)
        return JSONResponse(state.script.model_dump())

    async def requests_route(request: Request) -> Response:
        if request.method == "DELETE":
            state.calls.clear()
        return JSONResponse({"requests": [call.model_dump() for call in state.calls]})

    async def reset(request: Request) -> Response:
        state.script, state.calls[:] = ToolScript(), []
        return JSONResponse({"status": "reset"})

    return Starlette(routes=[
        Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]),
        Route("/__fake/health", health, methods=["GET"]),
        Route("/__fake/script", script_route, methods=["GET", "PATCH"]),
        Route("/__fake/requests", requests_route, methods=["GET", "DELETE"]),
        Route("/__fake/reset", reset, methods=["POST"]),
    ])
