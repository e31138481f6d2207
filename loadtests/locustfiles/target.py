"""Any endpoint: ``locust -f target.py --target-url URL [--body-template FILE] [--header 'k: v'] ...``.

The body template is a JSON file with a ``{{prompt}}`` slot (an OpenAI chat request by default); every answer
must have ``--expect-status``. Works on one machine and with ``--master``/``--worker`` (Locust passes these
options on to the workers; the template file must exist on each of them).
"""

from locust import constant, task

from loadtests import plugin  # noqa: F401  (exact timings, budgets, reports, distributed merge)
from loadtests.keepalive import KeepAliveSafeUser
from loadtests.services import target_locustfile, target_scenario
from loadtests.users import send

target_locustfile()  # --target-url, --body-template, --header, --prompt, --expect-status


class TargetUser(KeepAliveSafeUser):
    wait_time = constant(0)
    connection_timeout = network_timeout = 30.0
    max_retries = 0

    def on_start(self):
        self.scenario = target_scenario(self.environment.parsed_options)
        self.body = self.scenario.target.body(self.scenario.prompt)
        self.headers = dict(self.scenario.target.headers)

    @task
    def target(self):
        send(self, self.scenario, self.body, self.headers)
