"""The fake MCP server (harness/fakes/mcp) over a real loopback socket: the JSON-RPC a Streamable HTTP
client sends, the script and recording the scenario runner uses, and bad input as a bounded JSON-RPC error."""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import pytest

from harness.fakes.mcp import TOOL_NAME, FakeMCPServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def mcp() -> Iterator[FakeMCPServer]:
    with FakeMCPServer() as server:
        yield server


def rpc(server: FakeMCPServer, body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/mcp", json=body, timeout=5, trust_env=False)


def test_a_client_session_lists_and_calls_the_tool_and_the_call_is_recorded(mcp: FakeMCPServer) -> None:
    mcp.client.reset()
    init = rpc(mcp, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}})
    assert init.json()["result"]["capabilities"] == {"tools": {"listChanged": False}}
    assert rpc(mcp, {"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
    assert [t["name"] for t in rpc(mcp, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).json()["result"]["tools"]] == [TOOL_NAME]
    mcp.client.update_script(reply="42 results")
    call = rpc(mcp, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": TOOL_NAME, "arguments": {"query": "q"}}})
    assert call.json() == {"jsonrpc": "2.0", "id": 3, "result": {"content": [{"type": "text", "text": "42 results"}], "isError": False}}
    [recorded] = mcp.client.requests()
    assert recorded.json_body["params"]["arguments"] == {"query": "q"} and recorded.model == TOOL_NAME
    mcp.client.reset()
    assert mcp.client.requests() == []


@pytest.mark.parametrize(("body", "status", "code"), [
    ("not json", 400, -32700),
    ([1, 2], 400, -32600),
    ({"jsonrpc": "2.0", "id": 1, "method": "resources/list"}, 200, -32601),
    ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "rm-rf"}}, 200, -32602),
])
def test_bad_requests_get_a_json_rpc_error_and_are_not_recorded(mcp: FakeMCPServer, body: Any, status: int, code: int) -> None:
    mcp.client.reset()
    content = body.encode() if isinstance(body, str) else None
    response = httpx.post(f"{mcp.url}/mcp", content=content, json=None if content else body, timeout=5, trust_env=False)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert mcp.client.requests() == []


def test_no_server_to_client_stream_and_a_bounded_body(mcp: FakeMCPServer) -> None:
    assert httpx.get(f"{mcp.url}/mcp", timeout=5, trust_env=False).status_code == 405
    big = httpx.post(f"{mcp.url}/mcp", content=b"x" * (1024 * 1024 + 1), timeout=5, trust_env=False)
    assert big.status_code == 413
