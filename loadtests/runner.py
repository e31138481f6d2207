"""Run Locust as a library: no web UI, bounded by user count and run time, stopping by itself.

The run ends after ``run_time_s``; requests already in flight get ``stop_timeout`` seconds to finish (set
it to the users' network timeout: every request is bounded, so the stop is too). Then the ``quitting``
event fires, as Locust's own CLI does, and the percentile gate sets the exit code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import gevent
from locust import FastHttpUser
from locust.env import Environment
from rich.table import Table

from harness.timing import console
from loadtests.gate import Budget, PercentileGate
from loadtests.recorder import RawTimings


@dataclass
class RunResult:
    exit_code: int
    raw: RawTimings
    gate: PercentileGate | None
    environment: Environment


def run_locust(
    user_classes: Sequence[type[FastHttpUser]],
    *,
    users: int,
    run_time_s: float,
    budgets: Sequence[Budget] = (),
    spawn_rate: float | None = None,
    stop_timeout_s: float = 30.0,
    report: bool = True,
) -> RunResult:
    """Run the users for ``run_time_s`` and return the gate's exit code (0 without budgets) and the raw timings.

    User classes with a ``fixed_count`` get exactly that many users; ``users`` is the total."""
    if users < 1 or run_time_s <= 0:
        raise ValueError("users must be >= 1 and run_time_s > 0")
    environment = Environment(user_classes=list(user_classes), stop_timeout=stop_timeout_s)
    raw = RawTimings().attach(environment)
    gate = PercentileGate(budgets, raw).attach(environment) if budgets else None
    runner = environment.create_local_runner()
    runner.start(users, spawn_rate=spawn_rate or users)
    stopper = gevent.spawn_later(run_time_s, runner.quit)
    hard_limit = run_time_s + stop_timeout_s + 30.0
    runner.greenlet.join(timeout=hard_limit)
    if len(runner.greenlet):  # still running past the hard limit: stop it now (bounded, never hangs)
        runner.quit()
    stopper.kill(block=False)
    if report:
        print_report(raw, environment)
    environment.events.quitting.fire(environment=environment, reverse=True)
    code = environment.process_exit_code
    if gate is None:
        code = 0  # nothing to gate: the caller reads the timings
    return RunResult(exit_code=1 if code is None else code, raw=raw, gate=gate, environment=environment)


def print_report(raw: RawTimings, environment: Environment) -> None:
    """Raw percentiles per request name and outcome, with Locust's own (rounded) p99 beside them."""
    table = Table(title="raw per-request timings (exact) vs Locust's rounded stats", title_justify="left")
    for header in ("request", "outcome", "n", "min ms", "p50 ms", "p99 ms", "max ms", "Locust p99 ms"):
        table.add_column(header, justify="left" if header in ("request", "outcome") else "right")
    for (name, outcome), timings in sorted(raw.by_outcome.items()):
        s = timings.summary()
        entry = next((e for (n, _), e in environment.stats.entries.items() if n == name), None)
        locust_p99 = f"{entry.get_response_time_percentile(0.99):.0f}" if entry and entry.num_requests else "-"
        table.add_row(name, outcome, str(s.count), f"{s.min_ms:.1f}", f"{s.p50:.1f}", f"{s.p99:.1f}",
                      f"{s.max_ms:.1f}", locust_p99)
    console.print(table)
    for name, count in sorted(raw.failures.items()):
        console.print(f"[yellow]{count} failed {name} requests[/yellow]")
    errors = environment.stats.errors
    for error in list(errors.values())[:10]:
        console.print(f"  {error.occurrences} x {error.name}: {error.error}")
