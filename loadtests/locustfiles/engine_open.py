"""The fake Akto engine at a constant arrival rate (open model): ``locust -f engine_open.py --arrival-rate 200``.

Each open-model user sends ``--arrival-rate`` requests per second on schedule whatever the engine does, and
measures each from its scheduled start (no coordinated omission: loadtests/open_model.py). Total rate is
users x arrival rate. Engine, faults, budgets and reports as in ``engine.py``.
"""

from loadtests import plugin  # noqa: F401  (exact timings, budgets, reports, distributed merge)
from loadtests.engine_mix import engine_scenarios
from loadtests.services import engine_locustfile
from loadtests.open_model import OpenModelUser


engine_locustfile("load-engine-open")  # --delay-ms / --lognormal-* options; engine (or --host) namespace at init


class EngineOpenModel(OpenModelUser):
    """allow / block / redact 6:2:2, interleaved, on schedule."""

    scenarios = tuple(engine_scenarios())
    connection_timeout = network_timeout = 30.0
