"""Run the TrueFoundry gateway simulator as a child process and drive it from tests.

    with TfyGatewayServer(llm_url=fake_llm.url + "/v1") as gateway:
        gateway.client.set_guardrails([GuardrailConfig(name="akto/input", url=..., hook="llm_input")])
        response = gateway.client.chat("hello", input_guardrails=["akto/input"])
        exchange = gateway.client.last_exchange()   # every guardrail call, the model call, the status
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Mapping, Sequence

import httpx

from harness.process import LOOPBACK, ManagedProcess, ServiceWithClient, http_ready, start_on_free_port
from harness.fakes.truefoundry_gateway.guardrails import GuardrailConfig

DEFAULT_MODEL = "openai-main/gpt-4o-mini"


class TfyGatewayError(RuntimeError):
    """The simulator refused an admin call (the message carries its explanation)."""


class TfyGatewayClient:
    """Admin API and chat calls against one running simulator. Every call has a bounded timeout."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"/__tfy{path}", **kwargs)
        if response.status_code >= 400:
            raise TfyGatewayError(f"{method} /__tfy{path} -> {response.status_code}: {response.text}")
        return response.json()

    # --- configuration ----------------------------------------------------------------------

    def set_guardrails(self, guardrails: Iterable[GuardrailConfig | Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Replace the guardrail registry (secrets are sent to the simulator, shown back masked)."""
        return self._admin("PUT", "/guardrails", content=json.dumps([_config_json(g) for g in guardrails]))

    def add_guardrail(self, guardrail: GuardrailConfig | Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._admin("POST", "/guardrails", content=json.dumps(_config_json(guardrail)))

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        """e.g. ``update_settings(contract="legacy", parallel_input_validation=False)``."""
        return self._admin("PATCH", "/settings", json=changes)

    def settings(self) -> dict[str, Any]:
        return self._admin("GET", "/settings")

    def reset(self) -> None:
        """Startup settings, no guardrails, empty journal: the clean state each test starts from."""
        self._admin("POST", "/reset")

    # --- what happened ----------------------------------------------------------------------

    def exchanges(self, since: int = 0) -> list[dict[str, Any]]:
        return self._admin("GET", "/exchanges", params={"since": since})["exchanges"]

    def last_exchange(self) -> dict[str, Any]:
        items = self.exchanges()
        if not items:
            raise AssertionError("the gateway simulator received no chat request")
        return items[-1]

    # --- traffic ----------------------------------------------------------------------------

    def chat(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        model: str = DEFAULT_MODEL,
        input_guardrails: Sequence[str] | None = None,
        output_guardrails: Sequence[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        stream: bool = False,
        timeout: float | None = None,
        **extra: Any,
    ) -> httpx.Response:
        """One chat completion through the gateway. Guardrail lists given here go in ``X-TFY-GUARDRAILS``."""
        if messages is None:
            messages = [{"role": "user", "content": prompt or ""}]
        headers: dict[str, str] = {"authorization": "Bearer tfy-sim-client-key"}
        if input_guardrails is not None or output_guardrails is not None:
            headers["x-tfy-guardrails"] = json.dumps({"llm_input_guardrails": list(input_guardrails or []),
                                                      "llm_output_guardrails": list(output_guardrails or [])})
        if metadata is not None:
            headers["x-tfy-metadata"] = json.dumps(dict(metadata))
        body = {"model": model, "messages": list(messages), "stream": stream, **extra}
        kwargs: dict[str, Any] = {"json": body, "headers": headers}
        if timeout is not None:
            kwargs["timeout"] = timeout
        return self._http.post("/api/llm/chat/completions", **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "TfyGatewayClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _config_json(guardrail: GuardrailConfig | Mapping[str, Any]) -> dict[str, Any]:
    """A config as JSON *with* its secrets (``model_dump`` would mask them)."""
    config = guardrail if isinstance(guardrail, GuardrailConfig) else GuardrailConfig.model_validate(dict(guardrail))
    data = config.model_dump(mode="json")
    data["headers"] = dict(config.headers)
    auth = data["auth"]
    for secret in ("token", "password"):
        value = getattr(config.auth, secret)
        auth[secret] = value.get_secret_value() if value is not None else None
    return data


class TfyGatewayServer(ServiceWithClient[TfyGatewayClient]):
    """``python -m harness.fakes.truefoundry_gateway`` as a managed child process on loopback; a context manager."""

    def __init__(self, llm_url: str, *, contract: str = "current", startup_timeout: float = 20.0,
                 log_dir: str | None = None, port: int = 0) -> None:
        self.llm_url = llm_url
        self.fixed_port = port  # 0: a free one
        self.contract = contract
        self.startup_timeout = startup_timeout
        self.log_dir = log_dir
        self.port = 0
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def new_client(self) -> TfyGatewayClient:
        return TfyGatewayClient(self.url)

    def start(self) -> "TfyGatewayServer":
        def build(port: int) -> ManagedProcess:
            self.port = port
            argv = [sys.executable, "-m", "harness.fakes.truefoundry_gateway", "--port", str(port), "--llm-url", self.llm_url,
                    "--contract", self.contract]
            self.process = ManagedProcess("tfy-gateway", argv, ready=http_ready(f"{self.url}/__tfy/health"),
                                          startup_timeout=self.startup_timeout, log_dir=self.log_dir)
            return self.process

        start_on_free_port(build, port=self.fixed_port)
        return self
