"""A fake MCP server (JSON-RPC over Streamable HTTP on ``/mcp``) that a connector's host calls tools on.

    with FakeMCPServer() as mcp:
        mcp.client.update_script(reply="42 results")     # what every tools/call answers
        ...  # point the host's MCP server entry at mcp.url + "/mcp"
        assert mcp.client.requests()[-1].json_body["params"]["name"] == "lookup"
"""

from harness.fakes.mcp.app import TOOL_NAME, create_app
from harness.fakes.mcp.client import FakeMCPClient
from harness.fakes.mcp.server import FakeMCPServer

__all__ = ["FakeMCPClient", "FakeMCPServer", "TOOL_NAME", "create_app"]
