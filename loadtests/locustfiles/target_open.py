"""Any endpoint at a constant arrival rate (open model): ``locust -f target_open.py --target-url URL --arrival-rate 200``.

Options as in ``target.py``; each open-model user sends ``--arrival-rate`` requests per second on schedule and
measures each from its scheduled start (loadtests/open_model.py).
"""

from loadtests import plugin  # noqa: F401  (exact timings, budgets, reports, distributed merge)
from loadtests.open_model import OpenModelUser
from loadtests.services import target_locustfile, target_scenario

target_locustfile()  # --target-url, --body-template, --header, --prompt, --expect-status


class TargetOpenModel(OpenModelUser):
    connection_timeout = network_timeout = 30.0

    def on_start(self):
        self.scenarios = (target_scenario(self.environment.parsed_options),)
