"""The raw-timing tools the benchmarks and the load-test gate stand on: exact where it matters."""

from __future__ import annotations

import asyncio

import pytest

from bench._common import Variant, interleave, print_comparison, round_orders
from bench.load import closed_loop, open_loop
from harness.timing import Timings, exact_percentile
from loadtests.gate import Budget, evaluate
from loadtests.recorder import RawTimings


def test_exact_percentile_is_nearest_rank_of_observed_values() -> None:
    values = sorted(range(1, 101))
    assert exact_percentile(values, 50) == 50
    assert exact_percentile(values, 99) == 99
    assert exact_percentile(values, 100) == 100
    assert exact_percentile(values, 0) == 1
    assert exact_percentile([7.5], 99) == 7.5


def test_exact_percentile_refuses_empty_input_and_bad_percentiles() -> None:
    with pytest.raises(ValueError, match="no samples"):
        exact_percentile([], 99)
    with pytest.raises(ValueError, match="0..100"):
        exact_percentile([1.0], 101)


def test_timings_tell_both_sides_of_a_5s_timeout_apart() -> None:
    """Locust files 4,951 ms and 5,049 ms both under 5,000; the raw timings must not."""
    timings = Timings()
    timings.record_ms(4_951.0)
    timings.record_ms(5_049.0)
    assert timings.exact_ms(0) == pytest.approx(4_951.0)
    assert timings.exact_ms(100) == pytest.approx(5_049.0)
    assert timings.hdr_ms(100) == pytest.approx(5_049.0, rel=1e-3)  # HDR: within 0.1%
    assert timings.fraction_over_ms(5_000.0) == 0.5


def test_timings_summary_merge_and_hdr_fallback() -> None:
    a, b = Timings(keep_exact=3), Timings()
    for ms in (1.0, 2.0, 3.0):
        a.record_ms(ms)
    for ms in (10.0, 20.0):
        b.record_ms(ms)
    b.record_error()
    a.merge(b)
    assert a.count == 5 and a.errors == 1
    assert not a.all_exact  # only 3 exact samples kept: percentiles come from the histogram
    summary = a.summary()
    assert summary.exact is False
    assert summary.max_ms == pytest.approx(20.0, rel=1e-3)
    assert a.fraction_over_ms(5.0) == pytest.approx(0.4)  # from the histogram: 10 and 20 of 5 samples
    with pytest.raises(ValueError, match="no samples"):
        Timings(name="empty").summary()


def test_round_orders_rotate_so_every_variant_leads_equally() -> None:
    orders = list(round_orders(["a", "b", "c"], 3))
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert sorted(o[0] for o in orders) == ["a", "b", "c"]


def test_interleave_runs_variants_in_alternating_rounds_and_drops_warmup() -> None:
    calls: list[str] = []

    def variant(name: str, ms: float) -> Variant:
        def run() -> Timings:
            calls.append(name)
            t = Timings(name=name)
            t.record_ms(ms)
            return t
        return Variant(name, run)

    results = interleave([variant("a", 1.0), variant("b", 2.0)], rounds=2, warmup_rounds=1)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert results["a"].count == 2 and results["b"].count == 2  # the warm-up round is not counted
    rows = print_comparison(results, baseline="a", title="test")
    assert [r["variant"] for r in rows] == ["a", "b"]
    assert rows[1]["p50_ms"] == pytest.approx(2.0)


def test_closed_and_open_loop_count_every_request_and_error() -> None:
    seen = 0

    async def call() -> None:
        nonlocal seen
        seen += 1
        if seen % 5 == 0:
            raise RuntimeError("a failed request")

    closed = asyncio.run(closed_loop(call, requests=50, concurrency=4))
    assert closed.count == 40 and closed.errors == 10 and closed.wall_s > 0
    opened = asyncio.run(open_loop(call, rate=200, duration_s=0.1))
    assert opened.count + opened.errors == 20


def _raw(samples: dict[tuple[str, str], list[float]], failures: dict[str, int] | None = None) -> RawTimings:
    raw = RawTimings()

    class Response:
        def __init__(self, status: int) -> None:
            self.status_code = status

    for (name, outcome), values in samples.items():
        for ms in values:
            raw.on_request(name=name, response_time=ms, response=Response(int(outcome)))
    for name, n in (failures or {}).items():
        raw.failures[name] += n
    return raw


def test_gate_budget_on_exact_values_either_side_of_the_timeout() -> None:
    raw = _raw({("closed/above", "503"): [5_010.0, 5_120.0, 5_240.0]})
    assert evaluate(Budget("closed/above", 100, max_ms=5_250, outcome="503"), raw).ok
    assert evaluate(Budget("closed/above", 0, min_ms=5_000, outcome="503"), raw).ok
    late = evaluate(Budget("closed/above", 100, max_ms=5_200, outcome="503"), raw)
    assert not late.ok and "5240.0 ms > 5200 ms" in late.detail


def test_gate_fails_on_wrong_outcomes_failures_and_empty_runs() -> None:
    raw = _raw({("open/above", "200"): [5_100.0], ("open/above", "503"): [5_100.0]}, failures={"open/above": 1})
    verdict = evaluate(Budget("open/above", 100, max_ms=6_000, outcome="200"), raw)
    assert not verdict.ok
    assert "another outcome" in verdict.detail and "failed requests" in verdict.detail
    empty = evaluate(Budget("nothing", 99, max_ms=1.0), raw)
    assert not empty.ok and "only 0 samples" in empty.detail
