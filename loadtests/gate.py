"""A percentile gate that decides the load test's exit code from raw timings.

Locust exits 1 as soon as any request failed and has no percentile check of its own. The gate listens to
``events.quitting`` and sets ``environment.process_exit_code`` itself: 0 when every budget holds, 1 when any
does not. Budgets read :class:`loadtests.recorder.RawTimings` (exact values), never Locust's rounded stats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from harness.timing import Timings, console
from loadtests.recorder import ALL, RawTimings

if TYPE_CHECKING:  # importing locust monkey-patches the standard library: only where Locust runs
    from locust.env import Environment


@dataclass(frozen=True)
class Budget:
    """What one request name (``*`` = all) must satisfy over the run.

    ``max_ms``/``min_ms`` bound the ``percentile`` (``min_ms`` proves a request really waited, e.g. for the
    engine's 4.8 s delay); ``outcome`` restricts the timings to one status (``"503"``) and, with
    ``max_other_outcomes``, also limits how many requests had any other outcome (``max_other_share``: which
    share of them); ``max_failures`` limits the
    requests the user marked failed (a wrong verdict, a wrong status); ``min_count`` refuses a verdict on
    too few samples (an empty run must not pass).
    """

    name: str = ALL
    percentile: float = 99.0
    max_ms: float | None = None
    min_ms: float | None = None
    outcome: str | None = None
    max_other_outcomes: int | None = 0
    max_other_share: float | None = None
    max_failures: int | None = 0
    min_count: int = 1

    def describe(self) -> str:
        where = self.name + (f" [{self.outcome}]" if self.outcome else "")
        if self.max_other_share is not None:
            where += f" (others <= {self.max_other_share:.0%})"
        bounds = " and ".join(
            b for b in (f">= {self.min_ms:g} ms" if self.min_ms is not None else "",
                        f"<= {self.max_ms:g} ms" if self.max_ms is not None else "") if b
        )
        return f"{where}: p{self.percentile:g} {bounds or '(any)'}"


@dataclass(frozen=True)
class Verdict:
    budget: Budget
    ok: bool
    detail: str


def evaluate(budget: Budget, raw: RawTimings) -> Verdict:
    """Check one budget against the raw timings (exact percentiles: the gate must see the timeout's side)."""
    timings: Timings = raw.timings(budget.name, budget.outcome)
    problems: list[str] = []
    if timings.count < budget.min_count:
        return Verdict(budget, False, f"only {timings.count} samples (need {budget.min_count})")
    value = timings.exact_ms(budget.percentile) if timings.all_exact else timings.hdr_ms(budget.percentile)
    if budget.max_ms is not None and value > budget.max_ms:
        problems.append(f"p{budget.percentile:g} {value:.1f} ms > {budget.max_ms:g} ms")
    if budget.min_ms is not None and value < budget.min_ms:
        problems.append(f"p{budget.percentile:g} {value:.1f} ms < {budget.min_ms:g} ms")
    others = 0
    if budget.outcome is not None:
        others = sum(n for (name, outcome), n in raw.outcomes.items()
                     if (budget.name in (ALL, name)) and outcome != budget.outcome)
        if budget.max_other_outcomes is not None and others > budget.max_other_outcomes:
            seen = {o: n for (name, o), n in raw.outcomes.items() if budget.name in (ALL, name)}
            problems.append(f"{others} requests with another outcome than {budget.outcome} ({seen})")
        total = timings.count + others
        if budget.max_other_share is not None and others > budget.max_other_share * total:
            problems.append(f"{others}/{total} requests with another outcome than {budget.outcome} "
                            f"(allowed {budget.max_other_share:.0%})")
    failures = sum(n for name, n in raw.failures.items() if budget.name in (ALL, name))
    if budget.max_failures is not None and failures > budget.max_failures:
        problems.append(f"{failures} failed requests (allowed {budget.max_failures})")
    detail = f"n={timings.count}, p{budget.percentile:g}={value:.1f} ms, max={timings.summary().max_ms:.1f} ms"
    return Verdict(budget, not problems, detail + ("; " + "; ".join(problems) if problems else ""))


class PercentileGate:
    """Attach to an environment: on quitting, evaluate every budget and set the process exit code."""

    def __init__(self, budgets: Sequence[Budget], raw: RawTimings) -> None:
        if not budgets:
            raise ValueError("a gate needs at least one budget")
        self.budgets = list(budgets)
        self.raw = raw
        self.verdicts: list[Verdict] = []

    def attach(self, environment: Environment) -> "PercentileGate":
        environment.events.quitting.add_listener(self.on_quitting)
        return self

    def on_quitting(self, environment: Environment, **_: Any) -> None:
        self.verdicts = [evaluate(b, self.raw) for b in self.budgets]
        for v in self.verdicts:
            mark = "[green]PASS[/green]" if v.ok else "[red]FAIL[/red]"
            console.print(f"{mark}  {v.budget.describe()}  ({v.detail})")
        environment.process_exit_code = 0 if self.passed else 1

    @property
    def passed(self) -> bool:
        return bool(self.verdicts) and all(v.ok for v in self.verdicts)
