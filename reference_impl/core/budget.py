"""One engine-time budget per request, shared by all its phases (request check, response check, batches).

Why: a request whose first engine call timed out must not wait the whole timeout again in its response
phase (issue 12: 10.04 s for a 5 s timeout). The budget is engine time, not wall time: the upstream LLM may
take a minute between the phases, and that is not the engine's to spend. Once a call of the request has
failed, the fail mode has decided for the request, and later phases decide at once the same way.

The budget starts when the host has the whole request (``arrived_at``, where the host says so), not when
the connector's hook first runs: under load the host queues requests before its hooks run (50 agents at
once: 40-130 ms here), and that queue is part of the wait the caller sees. The queue counted is at most
half the timeout: the engine always keeps at least half of it, so a stale stamp (a replayed or loaded
flow) or a hopelessly backed-up host never leaves the engine no time at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class RequestBudget:
    """Seconds of engine waiting left for one request; ``failed`` once one of its calls failed."""

    left_s: float
    failed: bool = False

    @property
    def spent(self) -> bool:
        return self.failed or self.left_s <= 0

    @classmethod
    def since(cls, seconds: float, arrived_at: float | None) -> "RequestBudget":
        """``seconds`` of engine waiting, less the time since ``arrived_at`` (a ``time.time()`` stamp) that
        the request already queued in the host (at most half of ``seconds``); all of it when not known."""
        queued = 0.0 if arrived_at is None else min(max(time.time() - arrived_at, 0.0), seconds / 2)
        return cls(seconds - queued)

    def charge(self, seconds: float) -> None:
        self.left_s -= seconds
