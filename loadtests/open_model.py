"""The open model: requests at a constant arrival rate, latency measured from when each was *scheduled*.

Locust's users are a closed loop: a user sends its next request only after the previous one answered, so
when the system under test stalls, the users stop sending and the stall shows up as a handful of slow
samples instead of every request that would have arrived meanwhile (coordinated omission). Here, like
wrk2 and k6's arrival-rate executors, request *i* of a user is due at ``start + i / rate`` whatever happened
before; it is sent from its own greenlet, and its latency is ``answer time - due time``, so time spent
waiting behind a stall (or behind a load generator that fell behind) counts.

``--arrival-rate`` is requests per second *per open-model user*; ``--users`` open-model users send
``users x rate`` in total. Keep the rate within what one process drives (docs/benchmarks.md, Capacity).
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Sequence

import gevent
from gevent.pool import Pool
from locust import constant, task
from locust.user.users import LOCUST_STATE_STOPPING

from loadtests.keepalive import KeepAliveSafeUser
from loadtests.users import Scenario, send

#: In-flight requests one open-model user allows before it counts a scheduled request as missed.
DEFAULT_MAX_IN_FLIGHT = 2_000


class OpenModelUser(KeepAliveSafeUser):
    """Sends ``scenarios`` (weighted, interleaved) at ``arrival_rate`` per second, never waiting for answers."""

    abstract = True
    scenarios: Sequence[Scenario] = ()
    arrival_rate: float = 10.0
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    concurrency = 1_000  # FastHttpUser's connection pool: one connection per request in flight
    wait_time = constant(0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool = Pool(self.max_in_flight)
        self.missed = 0
        self.schedule_start: float | None = None  # perf_counter of request 0's due time
        self.scheduled = 0  # requests that fell due (sent or missed): request i was due at start + i / rate

    def _rate(self) -> float:
        options = self.environment.parsed_options
        rate = getattr(options, "arrival_rate", None) if options is not None else None
        return float(rate) if rate else self.arrival_rate

    @task
    def schedule(self) -> None:
        """Runs for the user's whole life: one request due every ``1 / rate`` s, each in its own greenlet."""
        rate = self._rate()
        if rate <= 0:
            raise ValueError(f"arrival rate must be > 0, got {rate}")
        order = [s for s in self.scenarios for _ in range(s.weight)]
        prepared = [(s, s.target.body(s.prompt), dict(s.target.headers)) for s in order]
        start = self.schedule_start = time.perf_counter()
        for index, (scenario, body, headers) in zip(itertools.count(), itertools.cycle(prepared)):
            due = start + index / rate
            wait = due - time.perf_counter()
            if wait > 0:
                gevent.sleep(wait)
            if self._state == LOCUST_STATE_STOPPING:  # a graceful stop: no new requests, in-flight ones finish
                return
            self.scheduled = index + 1
            if self._pool.full():  # never block the schedule: a request that cannot be sent is counted
                self.missed += 1
                continue
            self._pool.spawn(send, self, scenario, body, headers, due)

    def on_stop(self) -> None:
        """Requests in flight get one network timeout to be answered (and recorded), then are dropped."""
        self._pool.join(timeout=self.network_timeout)
        self._pool.kill(block=False)


def open_model_user(name: str, scenarios: Sequence[Scenario], *, rate: float, timeout_s: float,
                    weight: int = 1) -> type[OpenModelUser]:
    """An :class:`OpenModelUser` class for ``scenarios`` sharing one host (``--arrival-rate`` overrides ``rate``)."""
    hosts = {s.target.base_url for s in scenarios}
    if len(hosts) != 1:
        raise ValueError(f"user {name!r}: scenarios must share one host, got {sorted(hosts)}")
    attrs = {
        "host": hosts.pop(), "scenarios": tuple(scenarios), "arrival_rate": rate, "weight": weight,
        "connection_timeout": timeout_s, "network_timeout": timeout_s, "max_retries": 0,
        "insecure": False, "__module__": __name__,
    }
    return type(name, (OpenModelUser,), attrs)
