"""Repeated failure lines, aggregated: at most one line per kind of failure per interval.

Why: during an engine outage every request failed with its own WARNING line (95 MB per connector instance in
9 minutes of faults, issue 11.10). The first failure of a kind is logged at once; the same kind again within
``interval_s`` is only counted, and the next line that is written says how many were folded into it.
"""

from __future__ import annotations

import logging
import time
from typing import Callable


class FailureLog:
    """A rate-limited logger for one connector instance, keyed by what failed (e.g. ``"request timeout"``)."""

    def __init__(self, logger: logging.Logger, *, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._folded: dict[str, int] = {}

    def log(self, level: int, key: str, message: str, *args: object) -> bool:
        """Write ``message % args`` unless ``key`` was written within the interval; True when written."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._folded[key] = self._folded.get(key, 0) + 1
            return False
        self._last[key] = now
        folded = self._folded.pop(key, 0)
        if folded:
            message += " (%d more like it in the last %gs)"
            args = (*args, folded, self.interval_s)
        self.logger.log(level, message, *args)
        return True

    def warning(self, key: str, message: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, message, *args)

    def error(self, key: str, message: str, *args: object) -> bool:
        return self.log(logging.ERROR, key, message, *args)
