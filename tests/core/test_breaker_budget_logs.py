"""The circuit breaker, the per-request budget and the folded failure log, on a fake clock."""

from __future__ import annotations

import logging

import pytest

from reference_impl.core.breaker import BreakerState, CircuitBreaker
from reference_impl.core.budget import RequestBudget
from reference_impl.core.failure_log import FailureLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, failures: int = 3) -> CircuitBreaker:
    return CircuitBreaker(failures=failures, window_s=1.0, backoff_s=2.0, max_backoff_s=8.0, clock=clock)


def test_opens_after_timeouts_that_overlap_in_time() -> None:
    clock = Clock()
    cb = breaker(clock)
    for _ in range(3):
        assert cb.allow()
        cb.on_timeout()
    assert cb.state is BreakerState.OPEN
    assert not cb.allow() and cb.short_circuited == 1


def test_spread_out_timeouts_never_open_it() -> None:
    """One slow call now and then (sequential, each a whole timeout apart) is not a stall under load."""
    clock = Clock()
    cb = breaker(clock)
    for _ in range(10):
        cb.on_timeout()
        clock.now += 1.5
    assert cb.state is BreakerState.CLOSED


def test_an_answer_resets_the_count() -> None:
    clock = Clock()
    cb = breaker(clock)
    cb.on_timeout(); cb.on_timeout(); cb.on_answer(); cb.on_timeout(); cb.on_timeout()
    assert cb.state is BreakerState.CLOSED


def test_half_open_lets_one_probe_through_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    cb = breaker(clock)
    caplog.set_level(logging.WARNING, "akto.connector")
    for _ in range(3):
        cb.on_timeout()
    clock.now += 2.0
    assert cb.allow() and cb.state is BreakerState.HALF_OPEN  # the probe
    assert not cb.allow()  # everyone else still decided at once
    cb.on_timeout()  # the probe failed: open again, twice the wait
    assert cb.state is BreakerState.OPEN and cb.backoff_s == 4.0
    clock.now += 3.9
    assert not cb.allow()
    clock.now += 0.1
    assert cb.allow()
    cb.on_answer()
    assert cb.state is BreakerState.CLOSED and cb.backoff_s == 2.0 and cb.allow()
    changes = [r.getMessage().split(":")[1].strip() for r in caplog.records if "engine circuit" in r.getMessage()]
    assert changes == ["engine circuit open", "engine circuit half_open", "engine circuit open",
                       "engine circuit half_open", "engine circuit closed"]  # one line per change, none per call


def test_a_fast_failed_probe_reopens_and_a_cancelled_probe_frees_the_slot() -> None:
    clock = Clock()
    cb = breaker(clock)
    for _ in range(3):
        cb.on_timeout()
    clock.now += 2.0
    assert cb.allow()
    cb.abandon()
    assert cb.allow()  # another call may probe
    cb.on_other_failure()
    assert cb.state is BreakerState.OPEN and cb.backoff_s == 4.0


def test_zero_failures_disables_it() -> None:
    cb = breaker(Clock(), failures=0)
    for _ in range(20):
        cb.on_timeout()
    assert cb.state is BreakerState.CLOSED and cb.allow()


def test_budget_is_spent_by_time_or_by_a_failure() -> None:
    budget = RequestBudget(1.0)
    budget.charge(0.4)
    assert not budget.spent and budget.left_s == pytest.approx(0.6)
    budget.charge(0.7)
    assert budget.spent
    assert RequestBudget(5.0, failed=True).spent


def test_failure_log_folds_repeats_per_key(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    flog = FailureLog(logging.getLogger("akto.test"), interval_s=10, clock=clock)
    caplog.set_level(logging.WARNING, "akto.test")
    for _ in range(1000):
        flog.warning("request timeout", "failed: %s", "timeout")
    flog.warning("request unreachable", "failed: %s", "unreachable")
    clock.now += 10
    flog.warning("request timeout", "failed: %s", "timeout")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["failed: timeout", "failed: unreachable", "failed: timeout (999 more like it in the last 10s)"]
