"""The fake Akto engine at a constant arrival rate (open model): ``locust -f engine_open.py --arrival-rate 200``.

Each open-model user sends ``--arrival-rate`` requests per second on schedule whatever the engine does, and
measures each from its scheduled start (no coordinated omission: loadtests/open_model.py). Total rate is
users x arrival rate. Engine, faults, budgets and reports as in ``engine.py``.
"""

from locust import events

from loadtests import plugin  # noqa: F401  (exact timings, budgets, reports, distributed merge)
from loadtests.engine_mix import engine_scenarios
from loadtests.services import add_engine_options, start_engine
from loadtests.open_model import OpenModelUser


@events.init_command_line_parser.add_listener
def _options(parser, **_):
    add_engine_options(parser)


@events.init.add_listener
def _start(environment, **_):
    start_engine(environment, "load-engine-open")


class EngineOpenModel(OpenModelUser):
    """allow / block / redact 6:2:2, interleaved, on schedule."""

    scenarios = tuple(engine_scenarios())
    connection_timeout = network_timeout = 30.0
