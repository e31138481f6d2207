"""Budget files: every bound checked on exact timings, and a bad file named by line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import resources
from loadtests.budgets import BudgetFileError, check_all, load_budgets
from loadtests.recorder import RawTimings


class Answer:
    def __init__(self, status: int) -> None:
        self.status_code = status


def recorded(*samples: tuple[str, int, float, bool]) -> RawTimings:
    raw = RawTimings()
    for name, status, ms, failed in samples:
        raw.on_request(name=name, response_time=ms, response=Answer(status),
                       exception=RuntimeError("wrong verdict") if failed else None)
    return raw


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budget.yaml"
    path.write_text(text)
    return path


def test_each_bound_holds_or_breaks_on_exact_values(tmp_path) -> None:
    raw = recorded(*[("allow", 200, float(ms), False) for ms in range(1, 101)], ("allow", 503, 5100.0, True))
    budgets = load_budgets(write(tmp_path, """
budgets:
  - name: allow
    status: 200
    p50: 50
    p99: 98.9
    p99.9: 100
    max: 100
    min_count: 100
    between: [1, 100]
  - name: allow
    error_rate: 0.005
  - name: allow
    status: 503
    between: [5000, 5250]
    min_count: 2
"""))
    rows = {(c.budget, c.metric): c for c in check_all(budgets, raw)}
    assert rows[("allow [200]", "p50")].held and rows[("allow [200]", "p50")].measured == "50.0 ms"
    assert not rows[("allow [200]", "p99")].held  # exact p99 of 1..100 is 99, not 98.9
    assert rows[("allow [200]", "p99.9")].held and rows[("allow [200]", "max")].held
    assert rows[("allow [200]", "every request")].held and rows[("allow [200]", "count")].held
    assert not rows[("allow", "error rate")].held  # 1 failed of 101 > 0.5%
    assert rows[("allow [503]", "every request")].held
    assert not rows[("allow [503]", "count")].held  # one sample, two asked: never a pass on too few


def test_no_samples_breaks_the_count_and_nothing_else_is_claimed(tmp_path) -> None:
    budgets = load_budgets(write(tmp_path, "budgets:\n  - name: nothing\n    p99: 10\n"))
    [row] = check_all(budgets, RawTimings())
    assert (row.metric, row.held) == ("count", False)


@pytest.mark.parametrize(("text", "expected"), [
    ("budgets:\n  - name: allow\n    p99: 10\n    p95: 5\n", "budget.yaml:4: budgets.0.p95: Extra inputs are not permitted"),
    ("budgets:\n  - name: allow\n\n    p99: fast\n", "budget.yaml:4: budgets.0.p99: Input should be a valid number"),
    ("budgets:\n  - name: a\n    p50: 1\n  - name: b\n    between: [300, 100]\n", "budget.yaml:4: budgets.1: Value error, between: 300 is above 100"),
    ("budgets:\n  - name: allow\n    status: 200\n", "budget.yaml:2: budgets.0: Value error, nothing to check"),
    ("budgets:\n  - name: allow\n    error_rate: 2\n", "budget.yaml:3: budgets.0.error_rate: Input should be less than or equal to 1"),
    ("budgets: []\n", "budget.yaml:1: budgets: List should have at least 1 item"),
    ("budgets:\n  - name: [unclosed\n", "budget.yaml:3: not valid YAML"),
])
def test_a_bad_budget_file_is_refused_naming_the_line_and_field(tmp_path, text: str, expected: str) -> None:
    with pytest.raises(BudgetFileError) as caught:
        load_budgets(write(tmp_path, text))
    assert expected in str(caught.value)


def test_a_missing_budget_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(BudgetFileError, match="cannot read the budget file"):
        load_budgets(tmp_path / "nope.yaml")


def test_the_shipped_example_budgets_are_valid() -> None:
    examples = resources.loadtest_examples()
    assert {"engine-budget.yaml", "timeout-budget.yaml"} <= set(examples)
    for path in examples.values():
        assert load_budgets(path)
