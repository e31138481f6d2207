"""A circuit breaker over the engine client: while the engine is known to be stalled, decide at once.

Why: under load, every request that reaches a stalled engine waits the whole timeout, and the host fills
up with waiting requests. Once the engine has shown it is stalled, the fail mode can decide at once.

What counts: only timeouts (the failures that cost a request its deadline). A refused connection, a 5xx or
a garbled answer is decided at once anyway, and a 401/403 is a configuration error, never an outage. The
breaker opens after ``failures`` timeouts in a row that all ended within one ``window_s`` (the engine
timeout): that many calls overlapping in time means a stall under load, not one slow call now and then.
Open, it fails calls at once; after ``backoff_s`` (doubling up to ``max_backoff_s``) one call goes through
as a probe (half-open); an answer from the engine closes it, another timeout opens it again. Each state
change is logged once.

Opening also tells ``on_open`` (the engine client), which decides every call still waiting on the engine at
once: under load, 50 calls started together and each would otherwise wait out its own timeout, and a host
that answers them one after another would finish the last long after the timeout.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from enum import Enum
from typing import Callable

log = logging.getLogger("akto.connector")


class BreakerState(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """State shared by every flow of one connector instance (one event loop: no locks needed)."""

    def __init__(self, *, failures: int, window_s: float, backoff_s: float = 1.0, max_backoff_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, on_open: Callable[[], None] | None = None) -> None:
        self.failures = failures
        self.window_s = window_s
        self.first_backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self.state = BreakerState.CLOSED
        self.backoff_s = backoff_s
        self.opened_at = 0.0
        self.short_circuited = 0
        self._recent: deque[float] = deque(maxlen=max(failures, 1))
        self._probing = False
        self._on_open = on_open

    @property
    def enabled(self) -> bool:
        return self.failures > 0

    def allow(self) -> bool:
        """True when a call may go to the engine (closed, or this call is the half-open probe)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and self._clock() - self.opened_at >= self.backoff_s:
            self._change(BreakerState.HALF_OPEN, f"probing the engine after {self.backoff_s:g}s")
        if self.state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        self.short_circuited += 1
        return False

    def retry_in(self) -> float:
        return max(0.0, self.backoff_s - (self._clock() - self.opened_at))

    def on_answer(self) -> None:
        """The engine answered (any HTTP answer, even an error): it is not stalled."""
        self._recent.clear()
        if self.state is not BreakerState.CLOSED:
            self._probing = False
            self.backoff_s = self.first_backoff_s
            self._change(BreakerState.CLOSED, f"engine answered again ({self.short_circuited} calls decided at once)")
            self.short_circuited = 0

    def on_timeout(self) -> None:
        now = self._clock()
        if self.state is BreakerState.HALF_OPEN:
            self._probing = False
            self.backoff_s = min(self.backoff_s * 2, self.max_backoff_s)
            self._open(now, f"the probe timed out; next probe in {self.backoff_s:g}s")
            return
        if not self.enabled or self.state is BreakerState.OPEN:
            return
        self._recent.append(now)
        if len(self._recent) == self.failures and now - self._recent[0] <= self.window_s:
            self._open(now, f"{self.failures} engine calls in a row timed out within {self.window_s:g}s; "
                            f"deciding by the fail mode at once, next probe in {self.backoff_s:g}s")

    def on_other_failure(self) -> None:
        """A fast failure (refused, reset, 5xx, garbled): not a stall, but a failed probe all the same."""
        if self.state is BreakerState.HALF_OPEN:
            self._probing = False
            self.backoff_s = min(self.backoff_s * 2, self.max_backoff_s)
            self._open(self._clock(), f"the probe failed; next probe in {self.backoff_s:g}s")

    def abandon(self) -> None:
        """The call was cancelled before any outcome (its client went away): let another call probe."""
        self._probing = False

    def _open(self, now: float, why: str) -> None:
        self.opened_at = now
        self._recent.clear()
        self._change(BreakerState.OPEN, why)
        if self._on_open is not None:
            self._on_open()

    def _change(self, state: BreakerState, why: str) -> None:
        if state is not self.state:
            self.state = state
            log.warning("akto: engine circuit %s: %s", state.value, why)
