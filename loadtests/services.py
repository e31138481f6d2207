"""What a shipped locustfile starts before its users run, and stops when Locust quits.

Called from the locustfiles' ``events.init`` listeners: the fake engine (or a namespace on one given with
``--host``), a connector in its real host with a fake LLM behind it. Only the process that sends load needs
them on a single machine; with ``--master``/``--worker`` the master starts them and passes the URL to the
workers as ``host`` (Locust does that itself), so workers start nothing.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from locust import events
from locust.runners import WorkerRunner

from harness.connectors import ConnectorConfig, registry
from harness.engine import EngineNamespace, EngineProcess
from harness.fakes.llm import FakeLLMServer
from harness.payloads import ALLOW_PROMPT, Target
from harness.timing import console
from loadtests.targets import custom_target
from loadtests.users import Scenario

if TYPE_CHECKING:
    from locust.env import Environment

#: Everything started for this run, stopped (in reverse order) when Locust quits.
_started = ExitStack()


@events.quitting.add_listener
def _stop_everything(**_: Any) -> None:
    _started.close()


def engine_namespace(engine_url: str | None, hint: str) -> EngineNamespace:
    """A namespace of its own on the engine at ``engine_url`` (or on a fresh engine process), closed at quit."""
    engine_url = (engine_url or "").rstrip("/")
    if not engine_url:
        engine = _started.enter_context(EngineProcess())
        assert engine.url is not None
        engine_url = engine.url
        console.print(f"started the fake engine at {engine_url}")
    namespace = EngineNamespace.open(engine_url, hint)
    _started.callback(namespace.close)
    return namespace


def apply_engine_faults(namespace: EngineNamespace, options: Any) -> None:
    """``--delay-ms`` (fixed_delay) and ``--lognormal-median-ms``/``--lognormal-p99-ms`` on verdict calls."""
    if getattr(options, "delay_ms", 0):
        namespace.client.add_fault({"type": "fixed_delay", "ms": int(options.delay_ms)})
    median, p99 = getattr(options, "lognormal_median_ms", 0), getattr(options, "lognormal_p99_ms", 0)
    if median or p99:
        if not (0 < median < p99):
            raise SystemExit("--lognormal-median-ms and --lognormal-p99-ms go together, median < p99")
        namespace.client.add_fault({"type": "lognormal_delay", "median_ms": median, "p99_ms": p99})


def connector_target(environment: Environment, name: str, fail_mode: str, timeout_s: int) -> Target:
    """Start ``name`` (a registered connector) in its real host against a fresh engine namespace and a fake
    LLM; returns where clients send (its ``Target``)."""
    connector = registry.get(name)
    unavailable = connector.available()
    if unavailable:
        raise SystemExit(f"{name} cannot run here: {unavailable}")
    namespace = engine_namespace(environment.host, f"load-{name}")  # --host names the engine here
    llm = _started.enter_context(FakeLLMServer())
    instance = connector.start(ConnectorConfig(fail_mode=fail_mode, timeout_s=timeout_s), namespace, llm)
    _started.callback(instance.stop)
    console.print(f"started {name} ({connector.host}, {fail_mode}, {timeout_s} s timeout) at {instance.target.url}")
    return instance.target


# ------------------------------------------------------------------------------------------------ options


def add_engine_options(parser: Any) -> None:
    group = parser.add_argument_group("engine faults", "applied to this run's own engine namespace")
    group.add_argument("--delay-ms", type=int, default=0, help="fixed_delay on every verdict call")
    group.add_argument("--lognormal-median-ms", type=int, default=0, help="lognormal_delay median (with --lognormal-p99-ms)")
    group.add_argument("--lognormal-p99-ms", type=int, default=0, help="lognormal_delay p99")


def start_engine(environment: Environment, hint: str) -> None:
    """The engine file's init: on a local run or the master, a namespace (on ``--host`` or a fresh engine)
    with the asked faults, and the users' host set to it (Locust passes it on to workers)."""
    if isinstance(environment.runner, WorkerRunner):
        return
    namespace = engine_namespace(environment.host, hint)
    apply_engine_faults(namespace, environment.parsed_options)
    environment.host = namespace.url


def add_connector_options(parser: Any) -> None:
    group = parser.add_argument_group("connector", "started in its real host, with a fake LLM behind it")
    group.add_argument("--connector", default="truefoundry", help=f"a registered connector: {', '.join(registry.names())}")
    group.add_argument("--fail-mode", default="fail_closed", choices=("fail_closed", "fail_open"))
    group.add_argument("--guardrail-timeout", type=int, default=5, help="the connector's engine timeout, whole s")


def engine_locustfile(hint: str) -> None:
    """What an engine locustfile registers: the fault options, and on init a namespace with those faults."""
    events.init_command_line_parser.add_listener(lambda parser, **_: add_engine_options(parser))
    events.init.add_listener(lambda environment, **_: start_engine(environment, hint))


def add_target_options(parser: Any) -> None:
    group = parser.add_argument_group("target", "any URL with a body template")
    group.add_argument("--target-url", default="", help="the full URL requests go to")
    group.add_argument("--body-template", default="", help="JSON file with a {{prompt}} slot")
    group.add_argument("--header", action="append", default=[], help="'name: value', repeatable")
    group.add_argument("--prompt", default=ALLOW_PROMPT)
    group.add_argument("--expect-status", type=int, default=200)


def target_scenario(options: Any) -> Scenario:
    """The ``--target-url`` scenario: URL, body template, headers, prompt and expected status."""
    headers = {k.strip(): v.strip() for k, v in (h.split(":", 1) for h in options.header or [])}
    target = custom_target(options.target_url, options.body_template or None, headers)
    return Scenario("target", target, options.prompt, options.expect_status)


def target_locustfile() -> None:
    """What a target locustfile registers: its options, and at init the users' host from ``--target-url``
    (a bad URL or template fails at start, not per request; workers get the host from the master)."""
    events.init_command_line_parser.add_listener(lambda parser, **_: add_target_options(parser))

    def check(environment: Environment, **_: Any) -> None:
        options = environment.parsed_options
        if options is not None and options.target_url:
            environment.host = target_scenario(options).target.base_url

    events.init.add_listener(check)
