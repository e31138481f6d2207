"""MCP tool calls through a LiteLLM proxy: the proxy side (a fake MCP server in ``mcp_servers``, Akto
entries in the ``pre_mcp_call`` / ``post_mcp_call`` modes) and the client side (JSON-RPC on ``/mcp``).

What the installed LiteLLM (1.106.2) does, checked in its source and on a running proxy: ``/mcp`` is a
Streamable HTTP MCP endpoint (the ``mcp`` SDK's session manager, stateless without a session id, answers
as server-sent events); tools of a configured server are named ``<server>-<tool>``; guardrail entries in
mode ``pre_mcp_call`` run before the upstream tool is called, ``post_mcp_call`` on its result; a guardrail
that raises turns the answer into a JSON-RPC result with ``isError: true`` and the reason as its text (HTTP
200). Only guardrail classes that declare those modes load in them: LiteLLM's built-in ``akto`` does, the
reference hook (``pre_call`` / ``post_call`` only) does not.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import httpx

from harness.connectors.base import ClientResponse, ConnectorConfig, Traffic
from harness.connectors.http import CLIENT_TIMEOUT_S, tls_context
from harness.fakes.mcp import TOOL_NAME

#: The fake MCP server's name in the proxy's ``mcp_servers`` (so the client calls ``fake_mcp-lookup``).
MCP_SERVER_NAME = "fake_mcp"
MCP_TOOL = f"{MCP_SERVER_NAME}-{TOOL_NAME}"
#: LiteLLM's guardrail modes for MCP tool calls: before the tool runs, and on its result.
MCP_MODES = ("pre_mcp_call", "during_mcp_call", "post_mcp_call")
PROTOCOL_VERSION = "2025-06-18"


def mcp_guardrail_entries(common: Mapping[str, Any], config: ConnectorConfig) -> list[dict[str, Any]]:
    """``akto-mcp-validate`` (``pre_mcp_call``, with the fail mode and timeout) and ``akto-mcp-ingest``
    (``post_mcp_call``), like the two LLM entries; monitor-only keeps only the latter."""
    validate = {**common, "mode": "pre_mcp_call", "unreachable_fallback": config.fail_mode}
    if config.timeout_s is not None:
        validate["guardrail_timeout"] = config.timeout_s
    entries = [{"guardrail_name": "akto-mcp-ingest", "litellm_params": {**common, "mode": "post_mcp_call"}}]
    if config.mode == "validate_and_ingest":
        entries.insert(0, {"guardrail_name": "akto-mcp-validate", "litellm_params": validate})
    return entries


def mcp_servers(tool_server_url: str) -> dict[str, Any]:
    """The proxy config's ``mcp_servers`` section: the fake MCP server over Streamable HTTP."""
    return {MCP_SERVER_NAME: {"url": f"{tool_server_url}/mcp", "transport": "http"}}


def tool_arguments(traffic: Traffic) -> dict[str, Any]:
    """The tool's arguments: the last user message (it carries the scenario's reference) as ``query``."""
    messages = traffic.chat_messages()
    users = [m for m in messages if m.get("role") == "user"] or messages
    content = users[-1].get("content")
    if not isinstance(content, str):
        content = "".join(part.get("text", "") for part in content or () if isinstance(part, dict))
    return {"query": content}


def rpc_message(response: httpx.Response) -> str:
    """The JSON-RPC message of an answer sent as JSON or as server-sent events (the last ``data:``)."""
    if "text/event-stream" not in response.headers.get("content-type", ""):
        return response.text
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    return data[-1] if data else ""


def send_mcp_tool_call(url: str, traffic: Traffic, *, headers: Mapping[str, str]) -> ClientResponse:
    """What an MCP client does against ``url`` (the host's ``/mcp``): ``initialize``, ``tools/list``, then
    ``tools/call`` of the fake tool. The response (status, time, body) is the ``tools/call``'s; ``body`` is its
    JSON-RPC message, so ``body: {result.isError: true}`` checks read it."""
    base = {"accept": "application/json, text/event-stream", "content-type": "application/json", **headers, **traffic.headers}
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT_S, verify=tls_context(), trust_env=False) as client:
            init = client.post(url, headers=base, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "akto-harness", "version": "1"}}})
            session = {"mcp-session-id": init.headers["mcp-session-id"]} if "mcp-session-id" in init.headers else {}
            setup = [init,
                     client.post(url, headers={**base, **session}, json={"jsonrpc": "2.0", "method": "notifications/initialized"}),
                     client.post(url, headers={**base, **session}, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"})]
            failed = next((r for r in setup if r.status_code >= 400), None)
            if failed is not None:
                return ClientResponse(status=failed.status_code, headers=dict(failed.headers), body=failed.text, elapsed_ms=0.0,
                                      error=f"MCP set-up failed: {failed.request.content[:80]!r} -> {failed.status_code}")
            started = time.perf_counter()
            call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": MCP_TOOL, "arguments": tool_arguments(traffic)}}
            response = client.post(url, headers={**base, **session}, json=call)
            elapsed = (time.perf_counter() - started) * 1000
            return ClientResponse(status=response.status_code, headers={k.lower(): v for k, v in response.headers.items()},
                                  body=rpc_message(response), elapsed_ms=elapsed, extra={"raw": response.text})
    except httpx.HTTPError as exc:
        return ClientResponse(status=0, headers={}, body="", elapsed_ms=0.0, error=f"{type(exc).__name__}: {exc}")

