"""The load-test gate decides the exit code both ways, from raw timings, in short bounded runs.

Each run is ``python -m loadtests engine`` in its own process (Locust monkey-patches the standard library,
so it never runs inside pytest), against the session's engine with a 50 ms ``fixed_delay`` in the suite's
own namespace: every request then takes at least 50 ms, so a 20 ms p99 budget cannot hold on any machine
and a 5 s one always does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_LIMIT_S = 25  # users stop after --run-time; this bounds the whole process anyway

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def run_engine_suite(engine_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "loadtests", "engine", "--engine-url", engine_url, "--users", "4",
            "--run-time", "3", "--delay-ms", "50", "--min-requests", "20", *args]
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_LIMIT_S,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


def test_a_budget_that_holds_exits_0(akto_engine) -> None:
    # 49 ms, not 50: event-loop timers may fire up to a clock tick (1 ms) early; 49.9 ms has been seen.
    result = run_engine_suite(akto_engine.url, "--budget-p99-ms", "5000", "--budget-min-ms", "49")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "PASS  *: p99 <= 5000 ms" in output
    assert "PASS  *: p0 >= 49 ms" in output  # every request really waited for the engine's delay
    assert "FAIL" not in output


def test_a_budget_that_cannot_hold_exits_1(akto_engine) -> None:
    result = run_engine_suite(akto_engine.url, "--budget-p99-ms", "20")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "FAIL  *: p99 <= 20 ms" in output
    assert "> 20 ms" in output
    # The users' verdict checks held: the failure is the budget, not a wrong answer.
    assert "failed allow requests" not in output and "failed block requests" not in output
