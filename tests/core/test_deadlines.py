"""One timer for every waiting engine call's deadline (core/deadlines.py): each call is decided within its
own deadline plus the slack, an earlier deadline moves the timer, a cancellation from outside is never
turned into a timeout, and cutting ends every waiting call at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from reference_impl.core.deadlines import Deadlines

pytestmark = pytest.mark.timeout(30)


async def _wait(deadlines: Deadlines, timeout_s: float) -> tuple[str, float]:
    started = time.monotonic()
    try:
        with deadlines.enter(timeout_s):
            await asyncio.sleep(30)
    except TimeoutError:
        # the expiry's cancellation was taken back: an outer timeout or TaskGroup still sees a clean task
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        return "timeout", time.monotonic() - started
    return "answered", time.monotonic() - started


def test_each_call_is_decided_at_its_own_deadline_even_when_entered_after_a_later_one() -> None:
    async def run() -> list[tuple[str, float]]:
        deadlines = Deadlines(slack_s=0.02)
        late = asyncio.create_task(_wait(deadlines, 1.0))
        await asyncio.sleep(0)  # the 1 s call holds the timer first
        early = asyncio.create_task(_wait(deadlines, 0.2))
        return [await early, await late]

    (early_kind, early_s), (late_kind, late_s) = asyncio.run(run())
    assert early_kind == late_kind == "timeout"
    assert 0.19 <= early_s < 0.2 + 0.15, early_s
    assert 0.99 <= late_s < 1.0 + 0.15, late_s


def test_an_answer_before_the_deadline_is_kept_and_nothing_expires_later() -> None:
    async def run() -> tuple[str, bool]:
        deadlines = Deadlines()
        with deadlines.enter(0.1):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the timer fires with nobody waiting: this task must not be cancelled
        return "answered", asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    assert asyncio.run(run()) == ("answered", True)


def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def run() -> None:
        deadlines = Deadlines()
        task = asyncio.create_task(_wait(deadlines, 5.0))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())


def test_cut_all_ends_every_waiting_call_now() -> None:
    async def run() -> list[tuple[str, float]]:
        deadlines = Deadlines()
        calls = [asyncio.create_task(_wait(deadlines, 10.0)) for _ in range(5)]
        await asyncio.sleep(0.1)
        deadlines.cut_all()
        return await asyncio.gather(*calls)

    results = asyncio.run(run())
    assert [kind for kind, _ in results] == ["timeout"] * 5
    assert all(seconds < 1.0 for _, seconds in results), results


def test_a_timer_due_at_once_under_uvloop_does_not_break_the_next_call() -> None:
    """uvloop answers a ``call_at`` due within a millisecond with a plain ``Handle`` (no ``when()``): the next
    call used to read it and raise AttributeError, which LiteLLM's proxy (on uvloop) answered 400."""
    uvloop = pytest.importorskip("uvloop")

    async def run() -> list[tuple[str, float]]:
        deadlines = Deadlines()
        due_now = asyncio.create_task(_wait(deadlines, 0.0))
        await asyncio.sleep(0)  # it enters first: the timer is due at once
        return [await _wait(deadlines, 0.2), await due_now]

    (next_kind, next_s), (now_kind, _) = uvloop.run(run())
    assert next_kind == now_kind == "timeout"
    assert 0.19 <= next_s < 0.2 + 0.15, next_s
