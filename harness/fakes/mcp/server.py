"""Run the fake MCP server as a real server in a child process on loopback."""

from __future__ import annotations

import os
import sys

from harness.fakes.mcp.client import FakeMCPClient
from harness.process import LOOPBACK, ManagedProcess, ServiceWithClient, http_ready, start_on_free_port


class FakeMCPServer(ServiceWithClient[FakeMCPClient]):
    """``python -m harness.fakes.mcp`` as a managed child process; a context manager."""

    def __init__(self, *, startup_timeout: float = 20.0, log_dir: str | os.PathLike[str] | None = None) -> None:
        self.startup_timeout = startup_timeout
        self.log_dir = log_dir
        self.port = 0
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """Base URL; the MCP endpoint is ``url + "/mcp"``."""
        return f"http://{LOOPBACK}:{self.port}"

    def new_client(self) -> FakeMCPClient:
        return FakeMCPClient(self.url)

    def start(self) -> "FakeMCPServer":
        def build(port: int) -> ManagedProcess:
            self.port = port
            argv = [sys.executable, "-m", "harness.fakes.mcp", "--port", str(port)]
            self.process = ManagedProcess("fake-mcp", argv, ready=http_ready(f"{self.url}/__fake/health"),
                                          startup_timeout=self.startup_timeout, log_dir=self.log_dir)
            return self.process

        start_on_free_port(build)
        return self
