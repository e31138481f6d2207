"""Raw per-request timings from Locust's request event, kept beside Locust's own (rounded) stats.

Locust's ``request`` event carries the response time as an unrounded float; Locust rounds it only when it
files it into its stats buckets (to 100 ms between 1 s and 10 s). We listen to the event and keep every
timing in a :class:`harness.timing.Timings` (HDR histogram + exact list) per request name and per outcome, so
a gate can tell 4.95 s from 5.05 s.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from harness.timing import Timings

if TYPE_CHECKING:  # importing locust monkey-patches the standard library: only where Locust runs
    from locust.env import Environment

ALL = "*"


def outcome_of(response: Any, exception: BaseException | None) -> str:
    """``"200"``, ``"503"``... for an HTTP answer; ``"error:<Class>"`` when no answer came (reset, timeout)."""
    status = getattr(response, "status_code", None)
    if status:  # FastHttpUser reports 0 when the connection failed before any status line
        return str(status)
    return f"error:{type(exception).__name__}" if exception is not None else "error:no-response"


class RawTimings:
    """Every request's exact response time, by request name, by (name, outcome), overall and per second.

    ``per_second`` keys are wall-clock seconds (``int(time.time())``) when the answer came, so timelines
    recorded by several worker processes line up on the master.
    """

    def __init__(self) -> None:
        self.by_name: dict[str, Timings] = {}
        self.by_outcome: dict[tuple[str, str], Timings] = {}
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.failures: Counter[str] = Counter()
        self.failures_by_outcome: Counter[tuple[str, str]] = Counter()
        self.per_second: dict[int, Timings] = {}
        self.total = Timings(name=ALL)

    def attach(self, environment: Environment) -> "RawTimings":
        environment.events.request.add_listener(self.on_request)
        return self

    def on_request(self, *, name: str, response_time: float, response: Any = None,
                   exception: BaseException | None = None, **_: Any) -> None:
        outcome = outcome_of(response, exception)
        self.outcomes[(name, outcome)] += 1
        if exception is not None:
            self.failures[name] += 1
            self.failures_by_outcome[(name, outcome)] += 1
        by_name = self.by_name.get(name)
        if by_name is None:  # not setdefault: a Timings allocates a histogram, only make one per key
            by_name = self.by_name[name] = Timings(name=name)
        by_outcome = self.by_outcome.get((name, outcome))
        if by_outcome is None:
            by_outcome = self.by_outcome[(name, outcome)] = Timings(name=f"{name} [{outcome}]")
        second = int(time.time())
        this_second = self.per_second.get(second)
        if this_second is None:
            this_second = self.per_second[second] = Timings(name=str(second))
        for timings in (self.total, by_name, by_outcome, this_second):
            timings.record_ms(response_time)

    def timings(self, name: str = ALL, outcome: str | None = None) -> Timings:
        """The timings of one request name (``*`` = all), optionally only those with one outcome."""
        if outcome is None:
            return self.total if name == ALL else self.by_name.get(name, Timings(name=name))
        if name == ALL:
            merged = Timings(name=f"* [{outcome}]")
            for (_, o), t in self.by_outcome.items():
                if o == outcome:
                    merged.merge(t)
            return merged
        return self.by_outcome.get((name, outcome), Timings(name=f"{name} [{outcome}]"))

    def count(self, name: str = ALL, outcome: str | None = None) -> int:
        return self.timings(name, outcome).count

    def failed(self, name: str = ALL, outcome: str | None = None) -> int:
        """How many of the selected requests Locust counted as failed (a wrong status or body, no answer)."""
        return sum(n for (n_name, n_outcome), n in self.failures_by_outcome.items()
                   if name in (ALL, n_name) and outcome in (None, n_outcome))
