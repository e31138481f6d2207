"""The fake Akto engine under load, closed loop: ``locust -f engine.py [--host ENGINE_URL]``.

Without ``--host`` a fake engine is started on loopback (and stopped when Locust quits). Users send the
allow / block / redact mix (6:2:2, tags ``allow``, ``block``, ``redact``) to ``/api/http-proxy``, each verdict
checked. ``--delay-ms`` or ``--lognormal-median-ms``/``--lognormal-p99-ms`` add an engine fault in this run's
own namespace. Budgets, reports and distributed timings: ``--budget``, ``--akto-report``, ``--akto-csv``
(loadtests/README.md).
"""

from locust import constant, tag, task

from loadtests import plugin  # noqa: F401  (exact timings, budgets, reports, distributed merge)
from loadtests.engine_mix import engine_scenarios
from loadtests.keepalive import KeepAliveSafeUser
from loadtests.services import engine_locustfile
from loadtests.users import send

ALLOW, BLOCK, REDACT = engine_scenarios()


engine_locustfile("load-engine")  # --delay-ms / --lognormal-* options; engine (or --host) namespace at init


class EngineUser(KeepAliveSafeUser):
    """One LiteLLM-style guardrail check after another (closed loop)."""

    wait_time = constant(0)
    connection_timeout = network_timeout = 30.0
    max_retries = 0

    @tag("allow")
    @task(6)
    def allow(self):
        send(self, ALLOW, ALLOW.target.body(ALLOW.prompt), dict(ALLOW.target.headers))

    @tag("block")
    @task(2)
    def block(self):
        send(self, BLOCK, BLOCK.target.body(BLOCK.prompt), dict(BLOCK.target.headers))

    @tag("redact")
    @task(2)
    def redact(self):
        send(self, REDACT, REDACT.target.body(REDACT.prompt), dict(REDACT.target.headers))
