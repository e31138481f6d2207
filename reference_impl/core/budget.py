"""One engine-time budget per request, shared by all its phases (request check, response check, batches).

Why: a request whose first engine call timed out must not wait the whole timeout again in its response
phase (issue 12: 10.04 s for a 5 s timeout). The budget is engine time, not wall time: the upstream LLM may
take a minute between the phases, and that is not the engine's to spend. Once a call of the request has
failed, the fail mode has decided for the request, and later phases decide at once the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RequestBudget:
    """Seconds of engine waiting left for one request; ``failed`` once one of its calls failed."""

    left_s: float
    failed: bool = False

    @property
    def spent(self) -> bool:
        return self.failed or self.left_s <= 0

    def charge(self, seconds: float) -> None:
        self.left_s -= seconds
