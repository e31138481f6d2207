"""Running one scenario against one connector instance: set the engine up, send, check.

Instances are cached per (connector, config) in an :class:`InstancePool` because starting a host can take
seconds (a LiteLLM proxy ~6 s). Each instance owns one engine namespace (its own listener URL), reset before
every scenario, so instances on different xdist workers never see each other's traffic.
"""

from __future__ import annotations

import secrets
import string
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from harness.connectors.base import Connector, ConnectorInstance, LLMUpstream, ToolUpstream
from harness.engine import EngineNamespace
from harness.scenarios.checks import Observed, check_all
from harness.scenarios.model import ConnectorConfig, Expectation, Scenario

Outcome = Literal["passed", "failed", "skipped", "xfailed", "xpassed", "error"]


@dataclass
class ScenarioResult:
    scenario: str
    connector: str
    outcome: Outcome
    #: Failed checks (for ``xfailed``: the known gaps observed).
    problems: list[str] = field(default_factory=list)
    #: Skip or xfail reason.
    reason: str = ""
    elapsed_ms: float = 0.0
    status: int | None = None
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome in ("passed", "skipped", "xfailed")

    def summary(self) -> str:
        head = f"{self.scenario} on {self.connector}: {self.outcome}"
        if self.reason:
            head += f" ({self.reason})"
        return "\n  ".join([head, *self.problems])


class InstancePool:
    """Running connector instances by (connector name, config), each with its own engine namespace.

    ``prestart`` starts an instance in a background thread (one at a time), so a host the next scenarios
    need comes up while the current ones wait on the engine; ``get`` then waits for that start.
    """

    def __init__(self, engine_url: str, llm: LLMUpstream) -> None:
        self.engine_url = engine_url
        self.llm = llm
        self._instances: dict[tuple[str, ConnectorConfig], ConnectorInstance] = {}
        self._starting: dict[tuple[str, ConnectorConfig], Future[ConnectorInstance]] = {}
        self._background: ThreadPoolExecutor | None = None

    def _start(self, connector: Connector, config: ConnectorConfig) -> ConnectorInstance:
        namespace = EngineNamespace.open(self.engine_url, connector.name)
        try:
            return connector.start(config, namespace, self.llm)
        except BaseException:
            namespace.close()
            raise

    def get(self, connector: Connector, config: ConnectorConfig) -> ConnectorInstance:
        key = (connector.name, config)
        if key not in self._instances:
            starting = self._starting.pop(key, None)
            self._instances[key] = starting.result() if starting is not None else self._start(connector, config)
        return self._instances[key]

    def prestart(self, connector: Connector, config: ConnectorConfig) -> None:
        """Start the instance in the background unless it runs or is starting; a failed start is raised by
        the ``get`` that needs it, so the error lands on the scenario that uses the host."""
        key = (connector.name, config)
        if key in self._instances or key in self._starting:
            return
        if self._background is None:
            self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prestart")
        self._starting[key] = self._background.submit(self._start, connector, config)

    def close(self) -> None:
        """Stop every instance (those started in the background too), all at once: hosts take a moment each."""
        if self._background is not None:
            self._background.shutdown(wait=True, cancel_futures=True)  # a start under way finishes, queued ones never begin
            self._background = None
        started = [f.result() for f in self._starting.values() if not f.cancelled() and f.exception() is None]
        instances = [*self._instances.values(), *started]
        self._starting.clear()
        self._instances.clear()
        if instances:
            with ThreadPoolExecutor(max_workers=len(instances), thread_name_prefix="stop") as stopping:
                list(stopping.map(_stop, instances))


def _stop(instance: ConnectorInstance) -> None:
    try:
        instance.stop()
    finally:
        instance.engine.close()


def new_reference() -> str:
    """Letters only: digits could look like a phone number or a card to the engine's PII detectors."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(12))


def upstream(scenario: Scenario, instance: ConnectorInstance, llm: LLMUpstream) -> LLMUpstream | ToolUpstream:
    """Where the connector forwards the scenario's traffic: the fake LLM, or for ``api: mcp`` the fake MCP
    server the instance's host calls tools on."""
    if scenario.traffic.api != "mcp":
        return llm
    if instance.tool_server is None:
        raise NotMCPCapable(f"this {type(instance).__name__} carries no MCP tool calls (no fake MCP server)")
    return instance.tool_server


class NotMCPCapable(RuntimeError):
    """An ``api: mcp`` scenario ran on an instance without a tool server (mark it skip for that connector)."""


def prepare(scenario: Scenario, instance: ConnectorInstance, llm: LLMUpstream | ToolUpstream) -> None:
    """Reset the instance's namespace and the upstream (the fake LLM or MCP server), then load the scenario's
    policies, Akto profile and faults."""
    client = instance.engine.client
    client.reset()
    policies = scenario.engine.policies
    if isinstance(policies, str):
        client.load_preset(policies)
    elif policies is not None:
        client.set_policies(policies)
    profile = scenario.engine.akto_profile  # always set: the engine may start from another --akto-profile
    client.set_akto_profile(profile.name, guardrails_client_timeout_ms=profile.guardrails_client_timeout_ms)
    for rule in scenario.engine.faults:
        client.add_fault(rule)
    llm.client.reset()
    if scenario.traffic.llm_reply is not None:
        llm.client.update_script(reply=scenario.traffic.llm_reply)


def run_scenario(scenario: Scenario, connector: Connector, pool: InstancePool,
                 expected: Expectation | None = None) -> ScenarioResult:
    """Run ``scenario`` on ``connector``'s instance for the scenario's connector config; never raises for a
    failed expectation (the result says what failed). ``expected``: a conformance profile's expectation
    (default: the catalogue's for the connector's profile)."""
    expected = expected or scenario.expect.for_connector(connector.profile)
    if expected.skip:
        return ScenarioResult(scenario.name, connector.name, "skipped", reason=expected.skip)
    unavailable = connector.available()
    if unavailable:
        return ScenarioResult(scenario.name, connector.name, "skipped", reason=unavailable)
    instance = pool.get(connector, scenario.connector)
    target = upstream(scenario, instance, pool.llm)
    prepare(scenario, instance, target)
    reference = new_reference()
    started = time.perf_counter()
    response = instance.send(scenario.traffic.tagged(reference))
    seen = Observed(response, reference, instance.timeout_s, instance.engine.client, target.client)
    problems = check_all(expected, seen)
    instance.engine.client.clear_faults()  # a hang must not outlive its scenario
    elapsed = (time.perf_counter() - started) * 1000
    if expected.xfail:
        outcome: Outcome = "xfailed" if problems else "xpassed"
        reason = expected.xfail
    else:
        outcome, reason = ("failed" if problems else "passed"), ""
    return ScenarioResult(
        scenario.name, connector.name, outcome, problems=problems, reason=reason, elapsed_ms=elapsed,
        status=response.status, log_tail=instance.log_tail() if outcome in ("failed", "xpassed") else "",
    )
