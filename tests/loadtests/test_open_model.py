"""The open model measures what the closed loop omits (coordinated omission), proven against the engine.

Each test runs ``python -m loadtests.compare_models`` in its own process (Locust monkey-patches the standard
library) against the session's engine: Locust's closed loop and the open model side by side, same engine
namespace, same fault, each corrected by its own overhead, measured at the same time by a twin of each model
against a reference namespace (a fixed delay of the median, or no fault).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# ``timed_load``: `make test` runs these after the parallel tests, one at a time: a timing run beside other
# tests on two cores would measure them too.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(90), pytest.mark.timed_load]


def compare(engine_url: str, tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "models.json"
    argv = [sys.executable, "-m", "loadtests.compare_models", "--engine-url", engine_url, "--json", str(out), *args]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=75,
                            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert not any(report["failed"].values()), report
    assert report["open_missed"] == 0, report
    return report


def within(measured: float, expected: float, tolerance: float = 0.05) -> bool:
    return abs(measured - expected) <= tolerance * expected


def test_without_stalls_both_models_report_the_configured_lognormal_percentiles(akto_engine, tmp_path) -> None:
    # lognormal_delay: median 300 ms, p99 420 ms. ~1,600 samples per model put the sampling error of the
    # p99 near 1.4% (sigma 0.145), well inside the 5% asked; at 300 ms, the few-ms hiccups of a shared
    # machine (other tests on the same two cores) stay a small share of the values compared.
    report = compare(akto_engine.url, tmp_path, "--lognormal", "300,420", "--closed-users", "30", "--rate", "80",
                     "--run-time", "20")
    for model in ("closed", "open"):
        measured = report[model]
        assert measured["count"] >= 1000, report
        assert within(measured["p50_ms"], 300.0), (model, report)
        # The p99 is corrected by the overhead's p50 only; its tail, measured at the same time by the twin
        # against a fixed 300 ms, may add on top when the other tests load the cores (a full run read
        # 448.9 ms against 441 with the p50 alone). Never below: the delay itself cannot get shorter.
        reference = report["reference"][model]
        overhead_tail = reference["p99_ms"] - reference["p50_ms"]
        assert 0.95 * 420.0 <= measured["p99_ms"] <= 1.05 * 420.0 + overhead_tail, (model, overhead_tail, report)


def test_a_periodic_stall_is_in_the_open_models_p99_and_missing_from_the_closed_loops(akto_engine, tmp_path) -> None:
    # Every 10 s (first at 4 s) every call is held 1 s, for 1 s: two stalls in a 20 s run, about 10% of the
    # open model's schedule falls in one.
    report = compare(akto_engine.url, tmp_path, "--stall-every", "10", "--stall-offset", "4", "--stall-ms", "1000",
                     "--closed-users", "4", "--rate", "100", "--run-time", "20")
    expected = report["expected_open_p99_ms"]
    assert len(report["stall_windows_s"]) >= 2, report
    assert expected > 900, report  # the schedule put more than 1% of requests in a stall
    # The open model's p99 is the stall, as the schedule says it must be: never under it, and over it only by
    # the burst the stall's end releases (about 100 answers at once through the engine and one Locust
    # process, counted from their scheduled starts). Expected 1,000 ms: read 1,003 quiet, 1,023 beside two
    # CPU hogs, 1,120 and 1,302 in full runs beside the other worker's LiteLLM proxies. A request that met
    # the stall twice (a retry) would read 2,000.
    assert 0.95 * expected <= report["open"]["p99_ms"] <= 1.5 * expected, report
    assert 0.05 <= report["open_share_over_half_stall"] <= 0.15, report
    # The closed loop saw the stalls (a few users each waited a full second) yet its p99 omits them: its
    # users stopped sending while the engine stalled, so the slow samples are a few among thousands.
    assert report["closed_over_half_stall"] >= 2, report
    assert report["closed"]["p99_ms"] < 0.2 * expected, report
