"""``python -m harness.fakes.mcp --port P``: serve the fake MCP server on loopback."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from harness.fakes import FAKE_KEEP_ALIVE_S
from harness.fakes.mcp.app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.fakes.mcp", description="Fake MCP server (JSON-RPC on /mcp).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=1, timeout_keep_alive=FAKE_KEEP_ALIVE_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
