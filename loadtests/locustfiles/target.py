"""Any endpoint: ``locust -f target.py --target-url URL [--body-template FILE] [--header 'k: v'] ...``.

The body template is a JSON file with a ``{{prompt}}`` slot (an OpenAI chat request by default); every answer
must have ``--expect-status``. Works on one machine and with ``--master``/``--worker`` (Locust passes these
options on to the workers; the template file must exist on each of them).
"""

from locust import FastHttpUser, constant, events, task

from harness.payloads import ALLOW_PROMPT
from loadtests import plugin  # noqa: F401  (exact timings, budgets, reports, distributed merge)
from loadtests.targets import custom_target
from loadtests.users import Scenario, send


@events.init_command_line_parser.add_listener
def _options(parser, **_):
    group = parser.add_argument_group("target", "any URL with a body template")
    group.add_argument("--target-url", default="", help="the full URL requests go to")
    group.add_argument("--body-template", default="", help="JSON file with a {{prompt}} slot")
    group.add_argument("--header", action="append", default=[], help="'name: value', repeatable")
    group.add_argument("--prompt", default=ALLOW_PROMPT)
    group.add_argument("--expect-status", type=int, default=200)


def scenario_from(options) -> Scenario:
    headers = {k.strip(): v.strip() for k, v in (h.split(":", 1) for h in options.header or [])}
    target = custom_target(options.target_url, options.body_template or None, headers)
    return Scenario("target", target, options.prompt, options.expect_status)


@events.init.add_listener
def _check(environment, **_):
    options = environment.parsed_options
    if options is not None and options.target_url:  # fail at start on a bad URL or template, not per request
        environment.host = scenario_from(options).target.base_url


class TargetUser(FastHttpUser):
    wait_time = constant(0)
    connection_timeout = network_timeout = 30.0
    max_retries = 0

    def on_start(self):
        self.scenario = scenario_from(self.environment.parsed_options)
        self.body = self.scenario.target.body(self.scenario.prompt)
        self.headers = dict(self.scenario.target.headers)

    @task
    def target(self):
        send(self, self.scenario, self.body, self.headers)
