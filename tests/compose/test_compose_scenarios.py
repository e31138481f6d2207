"""A smoke subset of the contract scenarios (scenarios/*.yaml) against the compose stack, from outside.

The same files and the same checks (``harness.scenarios.runner.run_scenario``) as the in-process runs, but
each connector is the one running in its container, reached on its published 127.0.0.1 port: allow, block
and an engine fault (HTTP 500) per connector. The containers' configuration is fixed by the compose file,
so each connector gets the fault scenario of its configured fail mode. Every connector of the stack calls
the engine's default namespace; the runner resets it before each scenario and finds each scenario's calls
by a reference of its own.
"""

from __future__ import annotations

from typing import Any

import pytest
from compose_stack import STACK_TEST_TIMEOUT_S, ComposeStack

from harness.connectors import registry
from harness.connectors.base import ClientResponse, Connector, ConnectorConfig, ConnectorInstance, Traffic
from harness.connectors.http import send_openai_chat
from harness.connectors.truefoundry import DEFAULT_RULES
from harness.engine import EngineNamespace
from harness.fakes.llm import FakeLLMClient
from harness.fakes.truefoundry_gateway.client import TfyGatewayClient
from harness.hosts.truefoundry_endpoint import make_token
from harness.payloads import Target, openai_chat_target, truefoundry_target
from harness.scenarios.model import Scenario, load_scenarios
from harness.scenarios.pytest_support import SCENARIO_DIR, check_result
from harness.scenarios.runner import run_scenario
from mock_akto.client import MockAktoClient

# One xdist worker for every test on the stack (under `make test -n 2` with a daemon running): one stack, not two.
pytestmark = [pytest.mark.compose, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(STACK_TEST_TIMEOUT_S),
              pytest.mark.xdist_group("compose-stack")]

MODEL = "gpt-4o-mini"
OPENAI_URL = "http://api.openai.com/v1/chat/completions"  # the egress container routes it to the fake LLM
#: connector -> (its fail mode in docker-compose.test.yaml / docker/config/litellm.yaml, engine timeout s)
CONTAINER_CONFIG = {"litellm": ("fail_closed", 5.0), "egress": ("fail_open", 3.0), "truefoundry": ("fail_open", 3.0)}
SMOKE = {connector: ["allow", "block", f"status-500-{fail_mode.replace('_', '-')}"]
         for connector, (fail_mode, _) in CONTAINER_CONFIG.items()}


class ContainerInstance(ConnectorInstance):
    """A connector already running in the stack; ``send`` is how its real clients reach it."""

    def __init__(self, connector: str, stack: ComposeStack, engine: EngineNamespace) -> None:
        self.connector = connector
        self.stack = stack
        self.engine = engine
        self.timeout_s = CONTAINER_CONFIG[connector][1]

    def send(self, traffic: Traffic) -> ClientResponse:
        if self.connector == "egress":  # the real provider URL through the proxy (plain HTTP in the stack)
            return send_openai_chat(OPENAI_URL, traffic, default_model=MODEL, proxy=self.stack.url("egress"),
                                    headers={"authorization": "Bearer sk-fake-provider-key"})
        if self.connector == "truefoundry":  # a gateway client; the gateway calls the endpoint
            return send_openai_chat(f"{self.stack.url('tfy-gateway')}/api/llm/chat/completions", traffic,
                                    default_model=MODEL, headers={"authorization": "Bearer tfy-client-key"})
        target = self.target
        return send_openai_chat(target.base_url + target.path, traffic, default_model=MODEL, headers=target.headers)

    @property
    def target(self) -> Target:
        """What a load test would send to this container (as the registered connector's ``target`` says)."""
        if self.connector == "litellm":
            return openai_chat_target("litellm", self.stack.url("litellm"),
                                      headers={"authorization": f"Bearer {self.stack.master_key}"})
        if self.connector == "egress":  # origin form with the provider's Host: mitmdump routes by the header
            return openai_chat_target("egress", self.stack.url("egress"), headers={
                "host": "api.openai.com", "authorization": "Bearer sk-fake-provider-key"})
        token = make_token(self.stack.tfy_jwt_secret, expires_in=3600)
        return truefoundry_target(f"{self.stack.url('truefoundry')}/api/http-proxy/truefoundry?sync=true",
                                  headers={"authorization": f"Bearer {token}"})

    def stop(self) -> None:
        """The stack fixture stops the containers."""

    def log_tail(self, lines: int = 30) -> str:
        return self.stack.logs(lines)


class InContainer(Connector):
    """A registered connector, judged by its own expectations, but already running in the stack."""

    host = "its container in docker-compose.test.yaml"

    def __init__(self, registered: Connector) -> None:
        self.registered = registered
        self.name = registered.name  # type: ignore[misc]  # per instance here, a class constant in connectors
        self.answers = registered.answers  # type: ignore[misc]

    @property
    def profile(self) -> str:
        return self.registered.profile

    def start(self, config: ConnectorConfig, engine: Any, llm: Any) -> ConnectorInstance:
        raise AssertionError("the stack's connectors run already")


class StackUpstream:
    """The fake LLM container, as the runner's LLM upstream."""

    def __init__(self, stack: ComposeStack) -> None:
        self.url = stack.url("fake-llm")
        self.client = FakeLLMClient(self.url)


class StackPool:
    """``run_scenario``'s instance pool over the running stack: one instance per connector, whatever the
    scenario's connector config (the smoke subset only holds scenarios matching the containers')."""

    def __init__(self, stack: ComposeStack, engine: EngineNamespace) -> None:
        self.llm = StackUpstream(stack)
        self.instances = {name: ContainerInstance(name, stack, engine) for name in CONTAINER_CONFIG}

    def get(self, connector: Connector, config: ConnectorConfig) -> ConnectorInstance:
        return self.instances[connector.name]


def register_truefoundry_guardrails(stack: ComposeStack) -> None:
    """Akto's documented TrueFoundry setup (an input and an output guardrail, sync, enforced) on the
    gateway: the endpoint on the compose network, a JWT signed with the stack's secret as Custom Bearer Auth."""
    token = make_token(stack.tfy_jwt_secret, expires_in=3600)
    inputs, outputs = DEFAULT_RULES["validate_and_ingest"]
    with TfyGatewayClient(stack.url("tfy-gateway")) as gateway:
        for name, hook in [*((n, "llm_input") for n in inputs), *((n, "llm_output") for n in outputs)]:
            gateway.add_guardrail({"name": name, "url": "http://truefoundry:8091/api/http-proxy/truefoundry?sync=true",
                                   "hook": hook, "enforcing_strategy": "enforce",
                                   "auth": {"type": "bearer", "token": token}})
        gateway.update_settings(input_guardrails=inputs, output_guardrails=outputs)


@pytest.fixture(scope="module")
def pool(stack: ComposeStack) -> StackPool:
    register_truefoundry_guardrails(stack)
    url = stack.url("mock-akto")
    default = EngineNamespace(engine_url=url, namespace="default", url=url, client=MockAktoClient(url, "default", admin_token=stack.akto_api_key))
    return StackPool(stack, default)


def smoke_params() -> list[Any]:
    by_name = {scenario.name: scenario for scenario in load_scenarios(SCENARIO_DIR)}
    return [pytest.param(by_name[name], connector, id=f"{connector}:{name}")
            for connector, names in SMOKE.items() for name in names]


@pytest.mark.parametrize("scenario, connector", smoke_params())
def test_scenario_through_the_container(scenario: Scenario, connector: str, pool: StackPool) -> None:
    fail_mode, _ = CONTAINER_CONFIG[connector]
    assert scenario.connector.fail_mode == fail_mode or not scenario.engine.faults, (
        f"{scenario.name} expects {scenario.connector.fail_mode}; the {connector} container is {fail_mode}")
    check_result(run_scenario(scenario, InContainer(registry.get(connector)), pool))  # type: ignore[arg-type]
