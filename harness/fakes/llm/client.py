"""A small synchronous client for the fake LLM's ``/__fake`` API: script it, read what it received."""

from __future__ import annotations

from typing import Any

import httpx

from harness.fakes.llm.script import InjectedError, Provider, RecordedRequest, Script
from harness.process import wait_until


class FakeLLMError(RuntimeError):
    """The fake refused a script call (the message carries its explanation, e.g. the invalid field)."""


class FakeLLMClient:
    """Scripts one fake LLM server. Every call has a bounded timeout; nothing goes through a proxy."""

    def __init__(self, url: str, *, verify: bool | str = True, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, verify=verify, timeout=timeout, trust_env=False)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise FakeLLMError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json()

    # --- script ------------------------------------------------------------------------------

    def script(self) -> Script:
        return Script.model_validate(self._call("GET", "/__fake/script"))

    def set_script(self, script: Script | None = None, **fields: Any) -> Script:
        """Replace the whole script (fields left out go back to their defaults)."""
        body = script.model_dump(mode="json", exclude_unset=True) if script is not None else {}
        body.update(_jsonable(fields))
        return Script.model_validate(self._call("PUT", "/__fake/script", json=body))

    def update_script(self, **fields: Any) -> Script:
        """Change only the given fields, e.g. ``update_script(first_byte_ms=200)``."""
        return Script.model_validate(self._call("PATCH", "/__fake/script", json=_jsonable(fields)))

    def fail(self, status: int = 500, *, count: int | None = None, message: str | None = None,
             error_type: str | None = None, retry_after_s: int | None = None) -> Script:
        """Answer the next ``count`` LLM calls (all, when ``None``) with a provider-shaped error."""
        error = InjectedError(status=status, count=count, type=error_type, retry_after_s=retry_after_s,
                              **({"message": message} if message is not None else {}))
        return self.update_script(error=error)

    def recover(self) -> Script:
        """Stop injecting errors."""
        return self.update_script(error=None)

    def reset(self) -> None:
        """Default script and an empty recording: the clean state each test starts from."""
        self._call("POST", "/__fake/reset")

    # --- recording ---------------------------------------------------------------------------

    def requests(self, *, provider: Provider | None = None, since: int | None = None) -> list[RecordedRequest]:
        params: dict[str, Any] = {}
        if provider:
            params["provider"] = provider
        if since is not None:
            params["since"] = since
        data = self._call("GET", "/__fake/requests", params=params)
        return [RecordedRequest.model_validate(item) for item in data["requests"]]

    def last_request(self, *, provider: Provider | None = None) -> RecordedRequest:
        items = self.requests(provider=provider)
        if not items:
            raise AssertionError(f"the fake LLM received no {provider or ''} request".replace("  ", " "))
        return items[-1]

    def clear_requests(self) -> None:
        self._call("DELETE", "/__fake/requests")

    def wait_for_requests(self, count: int, *, timeout: float = 10.0, provider: Provider | None = None) -> list[RecordedRequest]:
        """Wait (polling, with a deadline) until at least ``count`` requests are recorded; return them."""
        seen: list[RecordedRequest] = []

        def enough() -> bool:
            seen[:] = self.requests(provider=provider)
            return len(seen) >= count

        wait_until(enough, timeout=timeout, interval=0.02, what=f"{count} request(s) at the fake LLM")
        return seen

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "FakeLLMClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.model_dump(mode="json") if hasattr(v, "model_dump") else v) for k, v in fields.items()}
