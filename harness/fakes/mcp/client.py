"""A small synchronous client for the fake MCP server's ``/__fake`` API (the fake LLM client's surface
the scenario runner uses: ``reset``, ``update_script(reply=...)``, ``requests()``)."""

from __future__ import annotations

from typing import Any

import httpx

from harness.fakes.mcp.app import RecordedCall, ToolScript


class FakeMCPClient:
    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def update_script(self, **fields: Any) -> ToolScript:
        return ToolScript.model_validate(self._call("PATCH", "/__fake/script", json=fields))

    def reset(self) -> None:
        self._call("POST", "/__fake/reset")

    def requests(self) -> list[RecordedCall]:
        """The ``tools/call`` requests received, oldest first."""
        return [RecordedCall.model_validate(item) for item in self._call("GET", "/__fake/requests")["requests"]]

    def close(self) -> None:
        self._http.close()
