"""Fire-and-forget work with a bound: ingestion must never delay traffic nor grow memory without limit."""

from __future__ import annotations

import asyncio
import logging
from typing import Coroutine

from .failure_log import FailureLog

log = logging.getLogger("akto.connector")


class BackgroundTasks:
    """Keeps strong references to in-flight tasks (so they are not garbage collected), logs their
    failures, and drops new work once ``limit`` tasks are pending. ``dropped`` counts what was dropped."""

    def __init__(self, limit: int, failure_log: FailureLog | None = None) -> None:
        self.limit = limit
        #: Drops and failures come in storms under load: their lines are folded per interval.
        self.failure_log = failure_log or FailureLog(log, interval_s=0)
        self.dropped = 0
        self.failed = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[object, object, None], what: str) -> bool:
        """Start ``work`` in the background; False (and the coroutine closed) when over the limit."""
        if len(self._tasks) >= self.limit:
            work.close()
            self.dropped += 1
            self.failure_log.warning("dropped background work", "akto: dropped background %s (%d pending, %d dropped so far)",
                                     what, len(self._tasks), self.dropped)
            return False
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, what))
        return True

    def _done(self, task: asyncio.Task[None], what: str) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.failed += 1
            self.failure_log.warning("background failure", "akto: background %s failed: %s", what, exc)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for pending work, e.g. at shutdown; what is left is cancelled."""
        if not self._tasks:
            return
        done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
