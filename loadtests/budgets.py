"""Budget files: what each request name (and status) must satisfy, written in YAML, checked on exact timings.

```yaml
budgets:
  - name: allow            # a request name as Locust shows it, or "*" for every request
    status: 200            # optional: only requests with this outcome ("200", "503", "error:ConnectionRefusedError")
    p50: 20                # milliseconds; any of p50, p90, p99, p99.9, max
    p99: 100
    error_rate: 0.01       # at most this share of the selected requests failed (Locust's failure)
    min_count: 100         # fewer samples than this is a failure, never a pass
    between: [4800, 5250]  # every selected request took between A and B ms
```

Every number is checked against :class:`loadtests.recorder.RawTimings` (exact values, or HDR within 0.1% when a
run is too large to keep every value, or when workers shipped histograms), never Locust's rounded stats.
A bad file gets one error per problem naming its line and field (:class:`BudgetFileError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from rich.table import Table

from loadtests.recorder import ALL, RawTimings
from loadtests.yaml_lines import YamlError, line_of, load_with_lines

Ms = Annotated[float, Field(ge=0)]

#: Budget keys that bound a percentile, and the percentile each one means (``max`` is p100).
PERCENTILE_KEYS: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9, "max": 100.0}


class BudgetFileError(ValueError):
    """A budget file that cannot be used; the message names the file, the line and the field."""


class RequestBudget(BaseModel):
    """The budget of one request name (``*`` = all), optionally of one status only."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = ALL
    status: str | None = None
    p50: Ms | None = None
    p90: Ms | None = None
    p99: Ms | None = None
    p99_9: Ms | None = Field(None, alias="p99.9")
    max: Ms | None = None
    error_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    min_count: Annotated[int, Field(ge=0)] = 1
    between: tuple[Ms, Ms] | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _something_to_check(self) -> "RequestBudget":
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError(f"between: {self.between[0]:g} is above {self.between[1]:g}")
        if not self.limits() and self.error_rate is None and self.between is None:
            raise ValueError("nothing to check: give p50/p90/p99/p99.9/max, error_rate or between")
        return self

    def limits(self) -> dict[str, float]:
        """The percentile bounds that are set, by the key the user wrote."""
        values = {"p50": self.p50, "p90": self.p90, "p99": self.p99, "p99.9": self.p99_9, "max": self.max}
        return {key: value for key, value in values.items() if value is not None}

    @property
    def label(self) -> str:
        return self.name + (f" [{self.status}]" if self.status else "")


class BudgetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budgets: Annotated[list[RequestBudget], Field(min_length=1)]


def load_budgets(path: str | Path) -> list[RequestBudget]:
    """Read and validate a budget file; :class:`BudgetFileError` names the line and field of each problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BudgetFileError(f"{path}: cannot read the budget file: {exc.strerror or exc}") from None
    try:
        data, lines = load_with_lines(text, str(path))
    except YamlError as exc:
        raise BudgetFileError(str(exc)) from None
    try:
        return BudgetFile.model_validate(data).budgets
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = tuple(error["loc"])
            line = line_of(location, lines)
            field = ".".join(str(part) for part in location) or "(document)"
            problems.append(f"{path}:{line or 1}: {field}: {error['msg']}")
        raise BudgetFileError("bad budget file\n  " + "\n  ".join(problems)) from None


@dataclass(frozen=True)
class Check:
    """One line of the budget table: a bound, what was measured, whether it held."""

    budget: str
    metric: str
    limit: str
    measured: str
    held: bool


def check(budget: RequestBudget, raw: RawTimings) -> list[Check]:
    """Every bound of one budget against the recorded timings (too few samples fails every bound)."""
    timings = raw.timings(budget.name, budget.status)
    rows = [Check(budget.label, "count", f">= {budget.min_count}", str(timings.count),
                  timings.count >= budget.min_count)]
    if timings.count == 0:
        return rows
    summary = timings.summary(p for p in PERCENTILE_KEYS.values() if p < 100.0)
    for key, limit in budget.limits().items():
        value = summary.max_ms if key == "max" else summary.percentiles_ms[PERCENTILE_KEYS[key]]
        rows.append(Check(budget.label, key, f"<= {limit:g} ms", f"{value:.1f} ms", value <= limit))
    if budget.between is not None:
        low, high = budget.between
        rows.append(Check(budget.label, "every request", f"{low:g}..{high:g} ms",
                          f"{summary.min_ms:.1f}..{summary.max_ms:.1f} ms",
                          low <= summary.min_ms and summary.max_ms <= high))
    if budget.error_rate is not None:
        failed = raw.failed(budget.name, budget.status)
        rate = failed / timings.count
        rows.append(Check(budget.label, "error rate", f"<= {budget.error_rate:.2%}",
                          f"{rate:.2%} ({failed}/{timings.count})", rate <= budget.error_rate))
    return rows


def check_all(budgets: list[RequestBudget], raw: RawTimings) -> list[Check]:
    return [row for budget in budgets for row in check(budget, raw)]


def table(rows: list[Check]) -> Table:
    """What held and what broke, one bound per line (printed at the end of a run, and in the HTML report)."""
    out = Table(title="budgets (exact timings)", title_justify="left")
    for header in ("request", "bound", "limit", "measured", "result"):
        out.add_column(header, justify="right" if header in ("limit", "measured") else "left")
    for row in rows:
        out.add_row(row.budget, row.metric, row.limit, row.measured,
                    "[green]held[/green]" if row.held else "[red]BROKE[/red]")
    return out
