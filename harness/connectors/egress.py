"""``egress``: an Akto addon in a real ``mitmdump``; the client calls the real provider URLs through it.

The addon is ours (``reference_impl/egress/addon.py``) unless ``AKTO_HARNESS_EGRESS_ADDON`` names another
file (Akto's published ``akto_guardrails.py``, or yours): it is configured only through the environment
variables both read (``AKTO_URL``, ``AKTO_UNREACHABLE_FALLBACK``, ``AKTO_TIMEOUT_MS``, ...). A scenario's
request goes client -> mitmdump (TLS intercepted with the proxy's CA) -> the fake LLM, which
:mod:`harness.hosts.mitm_route` reaches over plain HTTP after the addon has seen the flow.

What differs from the LiteLLM connectors is the contract of Akto's egress addon (contracts section 2):
one engine call per phase (request: ``guardrails`` + ``ingest_data``; response: ``response_guardrails`` +
``ingest_data``), blocks answered ``403 {"error": reason}``; the scenarios say so under ``expect: egress``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from harness.connectors.base import (Answers, ClientResponse, Connector, ConnectorConfig, ConnectorInstance,
                                     EngineEndpoint, LLMUpstream, Traffic)
from harness.connectors.http import CLIENT_TIMEOUT_S, OPENAI_PATHS, send_openai_chat
from harness.connectors.registry import register
from harness.hosts.mitmdump import EGRESS_ADDON, ROUTE_ADDON, MitmDump, mitmdump_binary
from harness.payloads import Target, openai_chat_target

EGRESS_ADDON_ENV = "AKTO_HARNESS_EGRESS_ADDON"
#: The addon's own default (Akto's addon has no timeout setting: 15 s per call).
EGRESS_DEFAULT_TIMEOUT_S = 5.0
OPENAI_HOST = "api.openai.com"
ANTHROPIC_MESSAGES = "https://api.anthropic.com/v1/messages"
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-sonnet-latest"}
#: Provider keys the client sends; they must reach the provider and never the engine.
OPENAI_KEY = "sk-scenario-openai-key"
ANTHROPIC_KEY = "sk-ant-scenario-key"


def addon_path() -> Path:
    return Path(os.environ.get(EGRESS_ADDON_ENV) or EGRESS_ADDON)


def addon_env(config: ConnectorConfig, engine_url: str) -> dict[str, str]:
    """The connector config as the environment variables egress addons read."""
    env = {"AKTO_URL": engine_url, "AKTO_UNREACHABLE_FALLBACK": config.fail_mode}
    if config.timeout_s is not None:
        env["AKTO_TIMEOUT_MS"] = str(config.timeout_s * 1000)
    if config.account_id is not None:
        env["AKTO_ACCOUNT_ID"] = config.account_id
    if config.vxlan_id is not None:
        env["AKTO_VXLAN_ID"] = config.vxlan_id
    if config.stream_mode is not None:
        env["AKTO_GUARDRAILS_MODE"] = config.stream_mode
    return env


class EgressInstance(ConnectorInstance):
    def __init__(self, mitm: MitmDump, engine: Any, timeout_s: float) -> None:
        self.mitm = mitm
        self.engine = engine
        self.timeout_s = timeout_s

    def send(self, traffic: Traffic) -> ClientResponse:
        if traffic.provider == "anthropic":
            return send_anthropic_messages(traffic, proxy=self.mitm.proxy_url, verify=str(self.mitm.ca_cert))
        return send_openai_chat(
            f"https://{OPENAI_HOST}{OPENAI_PATHS[traffic.api]}", traffic, default_model=DEFAULT_MODELS["openai"], headers={"authorization": f"Bearer {OPENAI_KEY}"},
            verify=str(self.mitm.ca_cert), proxy=self.mitm.proxy_url,
        )

    @property
    def target(self) -> Target:
        """The proxy itself, asked in origin form with the provider's ``Host`` (plain HTTP): load generators
        such as Locust's FastHttpUser cannot use a forward proxy, and mitmdump takes the host from the header."""
        return openai_chat_target("egress", self.mitm.proxy_url, headers={
            "host": OPENAI_HOST, "authorization": f"Bearer {OPENAI_KEY}"})

    def stop(self) -> None:
        self.mitm.stop()

    def log_tail(self, lines: int = 30) -> str:
        return self.mitm.log_tail(lines)


@register
class EgressConnector(Connector):
    name = "egress"
    host = "a real mitmdump (mitmproxy 11.0.2, its own .venv-mitm) as the client's HTTPS_PROXY"
    #: The addon answers a block with 403 and a failed engine under fail_closed with 503.
    answers = Answers(blocked=403, unreachable=503)

    def available(self) -> str | None:
        try:
            mitmdump_binary()
        except FileNotFoundError as exc:
            return str(exc)
        return None if self.addon_file().is_file() else f"egress addon not found: {self.addon_file()}"

    def addon_file(self) -> Path:
        """The addon under test (conformance targets name their own file)."""
        return addon_path()

    def extra_env(self, config: ConnectorConfig, engine_url: str) -> dict[str, str]:
        """More environment for the addon (a conformance target's own settings)."""
        return {}

    def start(self, config: ConnectorConfig, engine: EngineEndpoint, llm: LLMUpstream) -> ConnectorInstance:
        if config.mode != "validate_and_ingest":
            raise ValueError(f"the egress addon has no {config.mode} mode: give the scenario `expect: {{egress: {{skip: ...}}}}`")
        upstream = llm.url.removesuffix("/")
        routes = ",".join(f"{host}={upstream}" for host in ("api.openai.com", "api.anthropic.com"))
        mitm = MitmDump(
            [self.addon_file(), ROUTE_ADDON],
            # lazy: the plain-HTTP fake is reached by re-targeting the flow, so nothing may dial the real host.
            options={"route_map": routes, "connection_strategy": "lazy"},
            env={**addon_env(config, engine.url), **self.extra_env(config, engine.url)},
            port=config.listen_port(0),  # listen_ports: (the proxy,)
        ).start()
        return EgressInstance(mitm, engine, float(config.timeout_s or EGRESS_DEFAULT_TIMEOUT_S))


def send_anthropic_messages(traffic: Traffic, *, proxy: str, verify: str) -> ClientResponse:
    """POST an Anthropic Messages request to the real URL through the proxy; streams read to the end."""
    body: dict[str, Any] = {"model": traffic.model or DEFAULT_MODELS["anthropic"], "max_tokens": 256,
                            "messages": traffic.chat_messages()}
    if traffic.stream:
        body["stream"] = True
    headers = {"content-type": "application/json", "x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01",
               **traffic.headers}
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT_S, verify=verify, proxy=proxy, trust_env=False) as client:
            with client.stream("POST", ANTHROPIC_MESSAGES, json=body, headers=headers) as response:
                raw = response.read().decode(errors="replace")
                is_sse = "text/event-stream" in response.headers.get("content-type", "")
                return ClientResponse(
                    status=response.status_code,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    body=raw,
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                    stream_text=anthropic_stream_text(raw) if is_sse else None,
                )
    except httpx.HTTPError as exc:
        return ClientResponse(status=0, headers={}, body="", elapsed_ms=(time.perf_counter() - started) * 1000,
                              error=f"{type(exc).__name__}: {exc}")


def anthropic_stream_text(raw: str) -> str:
    """Concatenated ``text_delta`` texts of an Anthropic SSE stream."""
    pieces: list[str] = []
    for line in raw.splitlines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:].strip())
        except ValueError:
            continue
        delta = event.get("delta") if isinstance(event, dict) else None
        if isinstance(delta, dict) and delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
            pieces.append(delta["text"])
    return "".join(pieces)
