"""The load-test suites: engine direct, guardrail timeout budgets through a connector, any target.

Every suite builds scenarios (what to send, what must come back), budgets (what the raw timings must
satisfy) and runs Locust bounded by ``--users`` and ``--run-time``; the exit code is the gate's.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Iterable, Iterator

import httpx

from harness.connectors import Connector, ConnectorConfig, ConnectorInstance, registry
from harness.engine import EngineNamespace, EngineProcess
from harness.fakes.llm import FakeLLMServer
from harness.payloads import ALLOW_PROMPT, BLOCK_PROMPT
from mock_akto.profiles import (DEFAULT_GUARDRAILS_CLIENT_TIMEOUT_MS, DEFAULT_PROFILE,
                                MIN_GUARDRAILS_CLIENT_TIMEOUT_MS)
from loadtests.engine_mix import engine_scenarios
from loadtests.gate import Budget
from loadtests.host_logs import print_connector_log_lines
from loadtests.runner import run_locust
from loadtests.targets import Target, custom_target
from loadtests.users import Scenario, user_class

#: Markers the timeout suite's fault rules match on (``body_contains``): the prompt picks the engine delay.
SLOW_BELOW = "LOADTEST-SLOW-BELOW"
SLOW_ABOVE = "LOADTEST-SLOW-ABOVE"
HANG = "LOADTEST-HANG"
GARBAGE = "LOADTEST-GARBAGE"
FLAKY = "LOADTEST-FLAKY"
GATEWAY_ON = "LOADTEST-GATEWAY-ON"
GATEWAY_OFF = "LOADTEST-GATEWAY-OFF"
#: The flaky engine: this share of verdict calls get HTTP 500 (seeded, so a run is repeatable).
FLAKY_SHARE = 0.1
#: The engine profile where Akto's gateway waits for a slow guardrails-service (its fail-open off).
GATEWAY_OFF_PROFILE = "gateway-fail-open-off"
#: The connector timeout Akto's default ``GUARDRAILS_CLIENT_TIMEOUT_MS`` (3000 ms) sits under.
_DEFAULT_CONNECTOR_TIMEOUT_MS = 5000


def gateway_client_timeout_ms(timeout_s: float) -> int:
    """Akto's gateway timeout for a connector timeout: its default 3000 ms under the usual 5 s, scaled in
    proportion for shorter ones (600 ms under 1 s), never under the gateway's minimum of 500 ms."""
    scaled = round(timeout_s * 1000 * DEFAULT_GUARDRAILS_CLIENT_TIMEOUT_MS / _DEFAULT_CONNECTOR_TIMEOUT_MS)
    return max(MIN_GUARDRAILS_CLIENT_TIMEOUT_MS, scaled)


@contextmanager
def engine_url(args: argparse.Namespace) -> Iterator[str]:
    """``--engine-url`` when given, else a fresh engine process for the duration of the suite."""
    if args.engine_url:
        yield args.engine_url.rstrip("/")
        return
    with EngineProcess() as engine:
        assert engine.url is not None
        yield engine.url


# ------------------------------------------------------------------------------------------------ engine


def run_engine_suite(args: argparse.Namespace) -> int:
    """Engine direct: an allow / block / redact mix (6:2:2), each verdict checked, p99 budget on all."""
    with engine_url(args) as url:
        namespace = EngineNamespace.open(url, "loadtest-engine")
        try:
            if args.delay_ms:
                namespace.client.add_fault({"type": "fixed_delay", "ms": args.delay_ms})
            scenarios = engine_scenarios(namespace.url)
            timeout_s = max(10.0, 3 * (args.delay_ms or 0) / 1000)
            users = [user_class("EngineMix", scenarios, timeout_s=timeout_s)]
            budgets = [Budget("*", 99.0, max_ms=args.budget_p99_ms, min_count=args.min_requests)]
            if args.budget_min_ms is not None:
                budgets.append(Budget("*", 0.0, min_ms=args.budget_min_ms, min_count=args.min_requests))
            result = run_locust(users, users=args.users, run_time_s=args.run_time, budgets=budgets,
                                stop_timeout_s=timeout_s)
            return result.exit_code
        finally:
            namespace.close()


# ------------------------------------------------------------------------------------------------ timeout


def timeout_scenarios(connector: Connector, targets: dict[tuple[str, str], Target], *, timeout_s: float,
                      delta_ms: int, margin_ms: int, gateway_ms: int) -> tuple[list[Scenario], list[Budget]]:
    """Per fail mode: a delay below the timeout, one above it, a hanging engine, a garbage answer (not JSON),
    a down engine, a guardrails-service slower than the timeout behind Akto's gateway with its fail-open on
    (it answers a made-up allow at ``gateway_ms``) and off (it waits), each with its budgets; and a flaky
    engine whose budget is the error rate the mode allows.

    Every prompt is a block prompt, so the status tells which side of the timeout a request fell on: the
    verdict arrived (blocked), or the connector gave up (503 under fail_closed, passed under fail_open).
    The gateway's made-up verdict is an engine failure to the connector (docs/connectors.md, "Fail-mode
    edge cases"), so it gets the same statuses, but at the gateway's timeout, before the connector's.
    """
    timeout_ms = timeout_s * 1000
    scenarios: list[Scenario] = []
    budgets: list[Budget] = []
    for mode in ("fail_closed", "fail_open"):
        answers = connector.answers
        gave_up = answers.unreachable if mode == "fail_closed" else answers.passed
        cases = [
            # name, engine namespace, prompt marker, expected status, min ms, max ms
            ("below", "slow", SLOW_BELOW, answers.blocked, timeout_ms - delta_ms, timeout_ms + margin_ms),
            ("above", "slow", SLOW_ABOVE, gave_up, timeout_ms, timeout_ms + margin_ms),
            ("hang", "slow", HANG, gave_up, timeout_ms, timeout_ms + margin_ms),
            ("garbage", "slow", GARBAGE, gave_up, None, margin_ms),
            ("down", "down", "", gave_up, None, margin_ms),
            # decided by the gateway at its timeout: at most the margin later, and never at the connector's
            ("gateway-on", "slow", GATEWAY_ON, gave_up, gateway_ms, min(gateway_ms + margin_ms, timeout_ms)),
            ("gateway-off", "gateway-off", GATEWAY_OFF, gave_up, timeout_ms, timeout_ms + margin_ms),
        ]
        for case, namespace, marker, status, low, high in cases:
            name = f"{connector.name}/{mode}/{case}"
            prompt = f"{marker} {BLOCK_PROMPT}".strip()
            scenarios.append(Scenario(name, targets[(mode, namespace)], prompt, status))
            budgets.append(Budget(name, 100.0, max_ms=high, outcome=str(status)))
            if low is not None:
                budgets.append(Budget(name, 0.0, min_ms=low, outcome=str(status)))
        # The flaky engine (10% of verdict calls answer 500), allow prompts: fail_open passes every one;
        # fail_closed refuses about that share (at most 3 times it: short runs), and never anything else.
        name = f"{connector.name}/{mode}/flaky"
        also = (answers.unreachable,) if mode == "fail_closed" else ()
        scenarios.append(Scenario(name, targets[(mode, "slow")], f"{FLAKY} {ALLOW_PROMPT}", answers.passed,
                                  also_ok=also))
        allowed_share = 3 * FLAKY_SHARE if mode == "fail_closed" else 0.0  # slack for short runs
        budgets.append(Budget(name, 100.0, max_ms=margin_ms, outcome=str(answers.passed),
                              max_other_outcomes=None, max_other_share=allowed_share, min_count=10))
    return scenarios, budgets


def start_instances(connector: Connector, namespaces: dict[str, EngineNamespace], timeout_s: int,
                    stack: ExitStack) -> dict[tuple[str, str], ConnectorInstance]:
    """One connector instance per (fail mode, engine namespace), started side by side from the registry's
    description (a LiteLLM proxy takes seconds), all forwarding to one fake LLM; stopped with ``stack``."""
    unavailable = connector.available()
    if unavailable:
        raise SystemExit(f"{connector.name} cannot run here: {unavailable}")
    llm = stack.enter_context(FakeLLMServer())
    keys = [(mode, ns) for mode in ("fail_closed", "fail_open") for ns in namespaces]
    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        futures = {key: pool.submit(connector.start, ConnectorConfig(fail_mode=key[0], timeout_s=timeout_s),
                                    namespaces[key[1]], llm) for key in keys}
    instances: dict[tuple[str, str], ConnectorInstance] = {}
    failures: list[BaseException] = []
    for key, future in futures.items():
        try:
            instance = future.result()
        except BaseException as exc:  # every started instance must still be stopped
            failures.append(exc)
            continue
        stack.callback(instance.stop)
        instances[key] = instance
    if failures:
        raise failures[0]
    return instances


def warm_up(targets: Iterable[Target], *, timeout_s: float, requests: int = 3) -> None:
    """A few unmeasured allow requests per instance: hosts such as LiteLLM do lazy work on their first
    requests (seconds on a busy machine), which is start-up cost, not guardrail latency."""
    with httpx.Client(timeout=timeout_s, trust_env=False) as client:
        for target in targets:
            for _ in range(requests):
                client.request(target.method, target.url, content=target.body(ALLOW_PROMPT),
                               headers=dict(target.headers))


def run_timeout_suite(args: argparse.Namespace) -> int:
    """Guardrail latency budgets around the connector's engine timeout, in both fail modes."""
    connector = registry.get(args.connector)
    if args.timeout != int(args.timeout) or args.timeout < 1:
        raise SystemExit("connector engine timeouts are whole seconds (LiteLLM's guardrail_timeout): --timeout 1, 2, 5...")
    timeout_s, delta, margin = int(args.timeout), args.delta_ms, args.margin_ms
    gateway_ms = gateway_client_timeout_ms(timeout_s) if args.gateway_timeout_ms is None else args.gateway_timeout_ms
    if not MIN_GUARDRAILS_CLIENT_TIMEOUT_MS <= gateway_ms < timeout_s * 1000:
        raise SystemExit(f"--gateway-timeout-ms must be at least {MIN_GUARDRAILS_CLIENT_TIMEOUT_MS} (Akto's "
                         f"minimum) and below the connector's timeout ({timeout_s * 1000} ms)")
    with engine_url(args) as url, ExitStack() as stack:
        # Three namespaces, each with one instance per fail mode: "slow" plays Akto today (profile current,
        # gateway fail-open on at ``gateway_ms``; the other faults mean the same under every profile),
        # "gateway-off" the gateway that waits (a profile is per namespace; the same client timeout, so the
        # fail-open switch is the only difference), "down" refuses connections.
        slow = EngineNamespace.open(url, "loadtest-slow")
        stack.callback(slow.close)
        gateway_off = EngineNamespace.open(url, "loadtest-gateway-off")
        stack.callback(gateway_off.close)
        down = EngineNamespace.open(url, "loadtest-down")
        stack.callback(down.close)
        slow.client.set_akto_profile(DEFAULT_PROFILE, guardrails_client_timeout_ms=gateway_ms)
        gateway_off.client.set_akto_profile(GATEWAY_OFF_PROFILE, guardrails_client_timeout_ms=gateway_ms)
        # Only the verdict calls (request guardrails on) are slowed: a connector's ingestion call of the
        # same conversation is not what the timeout is about.
        for marker, ms in ((SLOW_BELOW, timeout_s * 1000 - delta), (SLOW_ABOVE, timeout_s * 1000 + delta)):
            slow.client.add_fault({"type": "fixed_delay", "ms": int(ms)},
                                  match={"body_contains": marker, "direction": "request"})
        slow.client.add_fault({"type": "hang"}, match={"body_contains": HANG, "direction": "request"})
        slow.client.add_fault("non_json_body", match={"body_contains": GARBAGE, "direction": "request"})
        slow.client.add_fault({"type": "status", "status": 500}, match={"body_contains": FLAKY, "direction": "request"},
                              probability=FLAKY_SHARE, seed=15)
        # guardrails-service behind the gateway slower than the connector's timeout, in both profiles.
        for namespace, marker in ((slow, GATEWAY_ON), (gateway_off, GATEWAY_OFF)):
            namespace.client.add_fault({"type": "slow_guardrails", "ms": timeout_s * 1000 + delta},
                                       match={"body_contains": marker, "direction": "request"})
        down.client.add_fault("down")
        namespaces = {"slow": slow, "gateway-off": gateway_off, "down": down}
        instances = start_instances(connector, namespaces, timeout_s, stack)
        targets = {key: instance.target for key, instance in instances.items()}
        warm_up(targets.values(), timeout_s=3 * timeout_s + 5)
        scenarios, budgets = timeout_scenarios(connector, targets, timeout_s=timeout_s, delta_ms=delta,
                                               margin_ms=margin, gateway_ms=gateway_ms)
        if args.users < len(scenarios):
            raise SystemExit(f"--users must be at least {len(scenarios)} (one per scenario) for this suite")
        network_timeout = 3 * timeout_s + 5
        users = [user_class(s.name.replace("/", "_"), [s], timeout_s=network_timeout, wait_s=args.wait)
                 for s in scenarios]
        result = run_locust(users, users=args.users, run_time_s=args.run_time, budgets=budgets,
                            stop_timeout_s=network_timeout)
        if result.exit_code:
            print_connector_log_lines(instances)
        return result.exit_code


# ------------------------------------------------------------------------------------------------ target


def run_target_suite(args: argparse.Namespace) -> int:
    """Any endpoint: a URL and a body template; every answer must have ``--expect-status``."""
    headers = dict(h.split(":", 1) for h in args.header or [])
    target = custom_target(args.target_url, args.body_template, {k.strip(): v.strip() for k, v in headers.items()})
    scenario = Scenario("target", target, args.prompt, args.expect_status)
    users = [user_class("Target", [scenario], timeout_s=args.network_timeout)]
    budgets = [Budget("target", 99.0, max_ms=args.budget_p99_ms, min_count=args.min_requests)]
    result = run_locust(users, users=args.users, run_time_s=args.run_time, budgets=budgets,
                        stop_timeout_s=args.network_timeout)
    return result.exit_code
