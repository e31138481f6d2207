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

A request is decided late when its budget runs more than :data:`DECISION_MARGIN_S` into the red. A call is
charged the wall time until the connector stopped waiting: its deadline expired or the breaker cut it (both
run on the host's event loop, so a loop too busy to run them when due shows here, and the engine client says
so in the log), or its answer was read. What the host does with a decision afterwards (LiteLLM answering 50
refusals one after another) is the host's time, not the decision's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

#: How far past its timeout a request may be decided (issue 12: "within the timeout + 250 ms"): the time
#: a host's busy event loop takes to run a decision that is due. Later than that, the log says so.
DECISION_MARGIN_S = 0.25


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

    @property
    def late_by_s(self) -> float:
        """How long after its deadline the request's last engine wait ended (0 when in time)."""
        return max(-self.left_s, 0.0)
