"""``truefoundry``: Akto's reference endpoint (``python -m reference_impl.truefoundry``, its own uvicorn
process) called as a custom guardrail by the TrueFoundry gateway simulator (``python -m harness.fakes.truefoundry_gateway``,
its own process), in front of the fake LLM. A scenario's request goes client -> gateway -> endpoint ->
engine, and gateway -> fake LLM.

Guardrails are chosen per request the way TrueFoundry does it, with the ``X-TFY-GUARDRAILS`` header
(``traffic.headers`` in a scenario). Names follow a small grammar; the adapter registers each on first use:

    akto/<hook>-<sync>-<strategy>[-<option>...]
      hook      input | output
      sync      sync (?sync=true) | async (?sync=false) | nosync (no sync in the URL)
      strategy  enforce | ebioe (Enforce But Ignore On Error) | audit
      options   legacy    judged under the legacy gateway contract (2xx = pass)
                verdict   ?answer=verdict: the endpoint answers TrueFoundry's verdict contract
                stream    ?streaming=true
                badtoken  a JWT signed with a key the endpoint does not know; notoken: no Authorization
                raw       the token as a raw Authorization header (default: Custom Bearer Auth)
                t<N>      gateway timeout of N seconds (default 10, TrueFoundry's)

Without the header the connector mode decides: ``validate_and_ingest`` is Akto's documented setup
(``akto/input-sync-enforce`` + ``akto/output-sync-enforce``); ``monitor_only`` is ``akto/output-async-audit``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from harness.connectors.base import (Answers, ClientResponse, Connector, ConnectorConfig, ConnectorInstance,
                                     EngineEndpoint, LLMUpstream, Traffic)
from harness.connectors.http import send_openai_chat
from harness.connectors.registry import register
from harness.fakes.truefoundry_gateway.client import DEFAULT_MODEL, TfyGatewayServer
from harness.fakes.truefoundry_gateway.guardrails import GuardrailConfig
from harness.hosts.truefoundry_endpoint import TEST_JWT_SECRET, TrueFoundryEndpoint, make_token
from harness.payloads import Target, truefoundry_target

#: Akto's own engine-call timeout, the endpoint's default when a scenario sets none.
ENDPOINT_DEFAULT_TIMEOUT_S = 3.0
GUARDRAILS_HEADER = "x-tfy-guardrails"
STRATEGIES = {"enforce": "enforce", "ebioe": "enforce_but_ignore_on_error", "audit": "audit"}
DEFAULT_RULES = {
    "validate_and_ingest": (["akto/input-sync-enforce"], ["akto/output-sync-enforce"]),
    "monitor_only": ([], ["akto/output-async-audit"]),
}
_NAME = re.compile(r"^akto/(?P<hook>input|output)-(?P<sync>sync|async|nosync)-(?P<strategy>enforce|ebioe|audit)"
                   r"(?P<options>(-(legacy|verdict|stream|badtoken|notoken|raw|t\d+(\.\d+)?))*)$")
WRONG_KEY = "a-key-the-truefoundry-endpoint-does-not-know-0123456789"


def guardrail_config(name: str, endpoint: TrueFoundryEndpoint, token: str) -> GuardrailConfig:
    """The guardrail a grammar name stands for (ValueError naming the grammar otherwise)."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not akto/<input|output>-<sync|async|nosync>-<enforce|ebioe|audit>[-options]")
    options = [o for o in match["options"].split("-") if o]
    query: dict[str, str | bool] = {}
    if match["sync"] != "nosync":
        query["sync"] = match["sync"] == "sync"
    if "verdict" in options:
        query["answer"] = "verdict"
    if "stream" in options:
        query["streaming"] = True
    fields: dict[str, Any] = {}
    if "badtoken" in options:
        token = make_token(WRONG_KEY)
    if "notoken" in options:
        pass
    elif "raw" in options:
        fields["headers"] = {"Authorization": token}
    else:
        fields["auth"] = {"type": "bearer", "token": token}
    timeouts = [float(o[1:]) for o in options if o.startswith("t")]
    if timeouts:
        fields["timeout_s"] = timeouts[-1]
    if "legacy" in options:
        fields["contract"] = "legacy"
    return GuardrailConfig(name=name, url=endpoint.guardrail_url(**query), hook=f"llm_{match['hook']}",
                           enforcing_strategy=STRATEGIES[match["strategy"]], **fields)


class TrueFoundryInstance(ConnectorInstance):
    def __init__(self, endpoint: TrueFoundryEndpoint, gateway: TfyGatewayServer, engine: Any, timeout_s: float) -> None:
        self.endpoint = endpoint
        self.gateway = gateway
        self.engine = engine
        self.timeout_s = timeout_s
        self.token = make_token(TEST_JWT_SECRET, expires_in=24 * 3600)
        self._registered: set[str] = set()

    def ensure(self, names: list[str]) -> None:
        """Register the named guardrails with the gateway (once each)."""
        for name in names:
            if name not in self._registered:
                self.gateway.client.add_guardrail(guardrail_config(name, self.endpoint, self.token))
                self._registered.add(name)

    def send(self, traffic: Traffic) -> ClientResponse:
        if traffic.api != "chat" or traffic.provider != "openai":
            raise ValueError("the TrueFoundry gateway simulator serves OpenAI chat completions only")
        selection = {k.lower(): v for k, v in traffic.headers.items()}.get(GUARDRAILS_HEADER)
        if selection is not None:
            chosen = json.loads(selection)
            self.ensure([*chosen.get("llm_input_guardrails", []), *chosen.get("llm_output_guardrails", [])])
        return send_openai_chat(f"{self.gateway.url}/api/llm/chat/completions", traffic, default_model=DEFAULT_MODEL,
                                headers={"authorization": "Bearer tfy-sim-client-key"})

    @property
    def target(self) -> Target:
        """The endpoint as the TrueFoundry gateway calls it (input hook, its bearer token): a load test
        measures the guardrail, not the gateway simulator in front of it."""
        return truefoundry_target(self.endpoint.guardrail_url(), headers={"authorization": f"Bearer {self.token}"})

    def stop(self) -> None:
        self.gateway.stop()
        self.endpoint.stop()

    def log_tail(self, lines: int = 30) -> str:
        return (f"--- endpoint\n{self.endpoint.process.log_tail(lines) if self.endpoint.process else ''}\n"
                f"--- gateway\n{self.gateway.log_tail(lines)}")


@register
class TrueFoundryConnector(Connector):
    """Akto's TrueFoundry endpoint behind the TrueFoundry gateway simulator."""

    name = "truefoundry"
    host = "uvicorn (ASGI) behind the TrueFoundry gateway simulator"
    #: The endpoint answers a block with 400 ``actionErrors`` and an unreachable engine under fail_closed with 503.
    answers = Answers(blocked=400, unreachable=503)

    def start(self, config: ConnectorConfig, engine: EngineEndpoint, llm: LLMUpstream) -> ConnectorInstance:
        timeout = float(config.timeout_s) if config.timeout_s is not None else ENDPOINT_DEFAULT_TIMEOUT_S
        # listen_ports: (the gateway simulator clients call, the Akto endpoint it calls)
        endpoint = self.start_endpoint(config, engine, timeout)
        try:
            gateway = TfyGatewayServer(llm.url + "/v1", port=config.listen_port(0)).start()
        except BaseException:
            endpoint.stop()
            raise
        instance = TrueFoundryInstance(endpoint, gateway, self.instance_engine(engine), timeout)
        try:
            inputs, outputs = DEFAULT_RULES[config.mode]
            instance.ensure([*inputs, *outputs])
            gateway.client.update_settings(input_guardrails=inputs, output_guardrails=outputs)
        except BaseException:
            instance.stop()
            raise
        return instance

    def start_endpoint(self, config: ConnectorConfig, engine: EngineEndpoint, timeout: float) -> TrueFoundryEndpoint:
        """The guardrail endpoint the gateway calls (conformance targets start their own)."""
        return TrueFoundryEndpoint(engine.url, fail_mode=config.fail_mode, timeout=timeout,
                                   account_id=config.account_id, vxlan_id=config.vxlan_id,
                                   breaker_failures=config.breaker_failures, port=config.listen_port(1)).start()

    def instance_engine(self, engine: EngineEndpoint) -> Any:
        """The engine namespace the scenarios script and read (the one the endpoint calls)."""
        return engine
