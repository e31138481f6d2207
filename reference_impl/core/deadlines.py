"""The total deadlines of the engine calls now waiting, kept by one timer for all of them.

Why not ``asyncio.timeout`` per call: a timer per call (built, pushed on the loop's heap, cancelled at the
answer) was about 3% of mitmdump's CPU at 50 agents with an instant engine, and a host's engine calls almost
always answer long before their deadline. Here one timer sits at the earliest deadline; a call that ends
leaves it alone, and when it fires it expires the calls past their deadline and moves to the next one. A
call whose deadline is earlier than the timer by more than ``slack_s`` moves the timer; so a deadline
fires at most ``slack_s`` late.

Use: ``with deadlines.enter(timeout_s): await call()``. An expired call's task is cancelled and the
cancellation turned into ``TimeoutError`` when the ``with`` block ends, as ``asyncio.timeout`` does, so a
cancellation from outside is never swallowed. :meth:`Deadlines.cut_all` expires every waiting call at
once (the breaker opened).
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType


class Deadline:
    """One waiting call: its task, when it must be decided, and whether it was expired or cut."""

    __slots__ = ("owner", "task", "at", "cancelling", "cut", "expired_at")

    def __init__(self, owner: "Deadlines", task: asyncio.Task[object], at: float) -> None:
        self.owner = owner
        self.task = task
        self.at = at
        self.cancelling = task.cancelling()
        #: Expired early because the breaker opened, not by its own deadline.
        self.cut = False
        #: When it was expired (``time.monotonic()``; None while it is not): the moment the connector stopped
        #: waiting and the fail mode decided, before the host's loop gets round to the task (50 refusals at
        #: once take a while).
        self.expired_at: float | None = None

    def __enter__(self) -> "Deadline":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        """The call ended: an expiry's cancellation becomes ``TimeoutError`` (and only ours is taken back)."""
        self.owner._waiting.discard(self)
        if self.expired_at is not None and self.task.uncancel() <= self.cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc


class Deadlines:
    """The deadlines of one client's waiting calls (one event loop), with a single timer."""

    def __init__(self, slack_s: float = 0.02) -> None:
        self.slack_s = slack_s
        self._waiting: set[Deadline] = set()
        self._timer: asyncio.Handle | None = None
        #: When the timer fires (``loop.time()``). Kept here, not read from the handle: uvloop answers a
        #: ``call_at`` due within a millisecond with a plain ``Handle``, which has no ``when()``.
        self._timer_at = 0.0

    def enter(self, timeout_s: float) -> Deadline:
        """Start the current task's call, to be decided within ``timeout_s``."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("an engine call must run in a task")
        loop = task.get_loop()
        deadline = Deadline(self, task, loop.time() + timeout_s)
        self._waiting.add(deadline)
        timer = self._timer
        if timer is None or deadline.at < self._timer_at - self.slack_s:
            if timer is not None:
                timer.cancel()
            self._arm(loop, deadline.at)
        return deadline

    def cut_all(self) -> None:
        """Expire every call still waiting, now."""
        for deadline in self._waiting:
            if deadline.expired_at is None:
                deadline.cut = True
                self._expire(deadline)

    def _sweep(self) -> None:
        self._timer = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        earliest = None
        for deadline in self._waiting:
            if deadline.expired_at is not None:
                continue
            if deadline.at <= now:
                self._expire(deadline)
            elif earliest is None or deadline.at < earliest:
                earliest = deadline.at
        if earliest is not None:
            self._arm(loop, earliest)

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        self._timer, self._timer_at = loop.call_at(at, self._sweep), at

    @staticmethod
    def _expire(deadline: Deadline) -> None:
        deadline.expired_at = time.monotonic()
        deadline.task.cancel()
