"""``litellm``: the reference hook in a real ``litellm`` proxy, configured exactly as the seed document shows
(two entries, or only ``akto-ingest`` for monitor-only), talking to the fake LLM and the engine. LiteLLM's
built-in guardrail (``litellm_builtin.py``) runs in the same host the same way."""

from __future__ import annotations

import os
import secrets
from typing import Any

from harness.connectors.base import (DEFAULT_TIMEOUT_S, Answers, ClientResponse, Connector, ConnectorConfig,
                                     ConnectorInstance, EngineEndpoint, LLMUpstream, Traffic)
from harness.connectors.http import OPENAI_PATHS, send_openai_chat
from harness.connectors.litellm_mcp import mcp_guardrail_entries, mcp_servers, send_mcp_tool_call
from harness.connectors.registry import register
from harness.fakes.mcp import FakeMCPServer
from harness.hosts.litellm_proxy import LiteLLMProxy, base_config, model_entry
from harness.payloads import Target, openai_chat_target
from harness.process import StartupError

REFERENCE_GUARDRAIL = "reference_impl.litellm.guardrail.AktoGuardrail"
#: Point the ``litellm`` connector at another guardrail class (your own hook) without editing anything.
GUARDRAIL_ENV = "AKTO_HARNESS_LITELLM_GUARDRAIL"
#: The model names clients ask for, per upstream provider (both served by the fake LLM).
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-sonnet-latest"}


def guardrail_entries(guardrail: str, config: ConnectorConfig, engine_url: str) -> list[dict[str, Any]]:
    """The seed document's two entries (fallback and timeout on ``akto-validate`` only, as it shows them),
    or just ``akto-ingest`` in monitor-only mode. Account and vxlan ids go on both entries: they say whose
    traffic it is. The API key comes from ``AKTO_API_KEY`` via ``os.environ/``."""
    ids = {"akto_account_id": config.account_id, "akto_vxlan_id": config.vxlan_id}
    common = {
        "guardrail": guardrail,
        "akto_base_url": engine_url,
        "akto_api_key": "os.environ/AKTO_API_KEY",
        "default_on": True,
        **{key: value for key, value in ids.items() if value is not None},
    }
    validate = {**common, "mode": "pre_call", "unreachable_fallback": config.fail_mode}
    if config.timeout_s is not None:
        validate["guardrail_timeout"] = config.timeout_s
    ingest = {**common, "mode": "post_call"}
    entries = [{"guardrail_name": "akto-ingest", "litellm_params": ingest}]
    if config.mode == "validate_and_ingest":
        entries.insert(0, {"guardrail_name": "akto-validate", "litellm_params": validate})
    if config.mcp:
        entries += mcp_guardrail_entries(common, config)
    return entries


def proxy_config(guardrail: str, config: ConnectorConfig, engine_url: str, llm_url: str,
                 tool_server_url: str | None = None) -> dict[str, Any]:
    models = [model_entry(name, llm_url, provider) for provider, name in DEFAULT_MODELS.items()]
    built = base_config(models, guardrail_entries(guardrail, config, engine_url))
    if tool_server_url is not None:
        built["mcp_servers"] = mcp_servers(tool_server_url)
    return built


class LiteLLMInstance(ConnectorInstance):
    def __init__(self, proxy: LiteLLMProxy, engine: Any, timeout_s: float, tool_server: FakeMCPServer | None = None) -> None:
        self.proxy = proxy
        self.engine = engine
        self.timeout_s = timeout_s
        self.tool_server = tool_server

    def send(self, traffic: Traffic) -> ClientResponse:
        if traffic.api == "mcp":
            return send_mcp_tool_call(f"{self.proxy.url}/mcp", traffic, headers=self.proxy.auth_headers)
        return send_openai_chat(
            f"{self.proxy.url}{OPENAI_PATHS[traffic.api]}",
            traffic,
            default_model=DEFAULT_MODELS[traffic.provider],
            headers=self.proxy.auth_headers,
        )

    @property
    def target(self) -> Target:
        return openai_chat_target(self.proxy.name, self.proxy.url, headers=self.proxy.auth_headers)

    def warm_up(self) -> None:
        """One throw-away request: LiteLLM sets up its router and clients lazily, so the first request of a
        fresh proxy takes a second or more, which would be charged to the first scenario's latency."""
        response = self.send(Traffic(prompt="warm-up request"))
        if response.status == 0:
            raise StartupError(f"{self.proxy.name}: the warm-up request failed: {response.error}\n{self.log_tail()}")

    def stop(self) -> None:
        try:
            self.proxy.stop()
        finally:
            if self.tool_server is not None:
                self.tool_server.stop()

    def log_tail(self, lines: int = 30) -> str:
        return self.proxy.log_tail(lines)


@register
class LiteLLMConnector(Connector):
    """The reference hook (``reference_impl.litellm.guardrail.AktoGuardrail``) in a real LiteLLM proxy."""

    name = "litellm"
    host = "a real litellm proxy (litellm[proxy] 1.106.2)"
    answers = Answers(blocked=403, unreachable=503)

    def guardrail(self) -> str:
        return os.environ.get(GUARDRAIL_ENV) or REFERENCE_GUARDRAIL

    def start(self, config: ConnectorConfig, engine: EngineEndpoint, llm: LLMUpstream) -> ConnectorInstance:
        tool_server = FakeMCPServer().start() if config.mcp else None
        try:
            proxy = LiteLLMProxy(
                proxy_config(self.guardrail(), config, engine.url, llm.url, tool_server and tool_server.url),
                env={"AKTO_API_KEY": "akto-test-" + secrets.token_urlsafe(16)},
                name=f"litellm-{self.name}",
                port=config.listen_port(0),  # listen_ports: (the proxy,)
                master_key=config.client_key,
            ).start()
        except BaseException:
            if tool_server is not None:
                tool_server.stop()
            raise
        return warmed_up(LiteLLMInstance(proxy, engine, float(config.timeout_s or DEFAULT_TIMEOUT_S), tool_server))


def warmed_up(instance: LiteLLMInstance) -> LiteLLMInstance:
    """``instance`` after its warm-up request, or stopped if that fails."""
    try:
        instance.warm_up()
    except BaseException:
        instance.stop()
        raise
    return instance
