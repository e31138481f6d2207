"""Through a connector in its real host: ``locust -f connector.py --connector litellm --fail-mode fail_open``.

At start (``events.init``) the fake engine (or a namespace on the engine at ``--host``), a fake LLM and the
connector (any registered one: ``truefoundry``, ``litellm``, ``litellm-builtin``, ``egress``) are started on
loopback, all stopped when Locust quits. Users send what a client of that host sends: allow prompts (tag
``allow``, expect the connector's "passed" status) and block prompts (tag ``block``, expect its "blocked"
status). Runs on one machine (the connector's target is known only where it was started).
"""

from locust import constant, events, tag, task

from harness.connectors import registry
from harness.payloads import ALLOW_PROMPT, BLOCK_PROMPT
from loadtests import plugin  # noqa: F401  (exact timings, budgets, reports)
from loadtests.keepalive import KeepAliveSafeUser
from loadtests.services import add_connector_options, connector_target
from loadtests.users import Scenario, send

#: Filled at init: the connector's allow and block scenarios.
SCENARIOS: dict[str, Scenario] = {}


@events.init_command_line_parser.add_listener
def _options(parser, **_):
    add_connector_options(parser)


@events.init.add_listener
def _start(environment, **_):
    options = environment.parsed_options
    target = connector_target(environment, options.connector, options.fail_mode, options.guardrail_timeout)
    answers = registry.get(options.connector).answers
    environment.host = target.base_url
    SCENARIOS["allow"] = Scenario("allow", target, ALLOW_PROMPT, answers.passed)
    SCENARIOS["block"] = Scenario("block", target, BLOCK_PROMPT, answers.blocked)


class ConnectorUser(KeepAliveSafeUser):
    """A client of the connector's host, one request after another."""

    wait_time = constant(0)
    connection_timeout = network_timeout = 30.0
    max_retries = 0

    def _send(self, which):
        scenario = SCENARIOS[which]
        send(self, scenario, scenario.target.body(scenario.prompt), dict(scenario.target.headers))

    @tag("allow")
    @task(8)
    def allow(self):
        self._send("allow")

    @tag("block")
    @task(2)
    def block(self):
        self._send("block")
