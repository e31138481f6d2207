"""The timeout suite through a real connector: each request lands on the right side of the engine timeout.

A 1 s connector timeout (instead of the default 5 s) keeps the run short; the engine delays are 0.8 s and
1.2 s. The allowed lateness is 750 ms here rather than the suite's 250 ms, because other tests share the
two cores; the lower bounds (the connector really waited) and the statuses (which side of the timeout)
need no margin. Locust runs in its own process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def test_truefoundry_fail_modes_land_on_the_right_side_of_the_timeout(akto_engine) -> None:
    argv = [sys.executable, "-m", "loadtests", "timeout", "--connector", "truefoundry", "--engine-url",
            akto_engine.url, "--timeout", "1", "--margin-ms", "750", "--users", "6", "--run-time", "4"]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=75,
                            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for mode, above, down in (("fail_closed", "503", "503"), ("fail_open", "200", "200")):
        assert f"PASS  truefoundry/{mode}/below [400]: p0 >= 800 ms" in output  # the verdict came back: blocked
        assert f"PASS  truefoundry/{mode}/above [{above}]: p0 >= 1000 ms" in output  # waited the full timeout
        assert f"PASS  truefoundry/{mode}/above [{above}]: p100 <= 1750 ms" in output  # and not much longer
        assert f"PASS  truefoundry/{mode}/down [{down}]: p100 <= 750 ms" in output
    assert "FAIL" not in output
