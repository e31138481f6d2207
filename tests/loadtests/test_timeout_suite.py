"""The timeout suite through a real connector: each request lands on the right side of the engine timeout.

A 2 s connector timeout (instead of the default 5 s) keeps the run short; the engine delays are 1.5 s and
2.5 s, and Akto's gateway gives up on the slow guardrails-service at 1,200 ms (its 3 s under 5 s, scaled).

Every bound is timed at the client, so it holds the host's own time too, and here other tests share the
two cores with six LiteLLM proxies and Locust. The host took up to 400 ms of its own around an engine call
in full test runs (a verdict at 800 ms reached the client at 1,098 ms; the gateway's at 600 ms, at
1,001 ms). So each side gets room the suite's defaults (250 ms late, delays 200 ms off the timeout) do not
give: 750 ms of lateness, delays 500 ms off the timeout, and 800 ms between the gateway's timeout and the
connector's. With a 1 s timeout those were 200 ms and 400 ms, and each failed a full run once. The lower
bounds (the connector really waited) and the statuses (which side of the timeout) need no margin.

Locust runs in its own process. The statuses come from the connector's registered ``answers``, the same
description the suite itself reads.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.connectors import registry

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

TIMEOUT_MS = 2000
DELTA_MS = 500
MARGIN_MS = 750
#: Akto's gateway timeout the suite derives for a 2 s connector timeout (3000 ms under 5 s, scaled).
GATEWAY_MS = 1200


# ``timed_load``: `make test` runs these after the parallel tests, one at a time (six LiteLLM proxies and
# Locust beside other tests would measure them too).
@pytest.mark.timed_load
@pytest.mark.parametrize("name", ["truefoundry", pytest.param("egress", marks=pytest.mark.mitm),
                                  pytest.param("litellm", marks=pytest.mark.litellm)])
def test_fail_modes_land_on_the_right_side_of_the_timeout(akto_engine, name: str) -> None:
    connector = registry.get(name)
    if connector.available():
        pytest.skip(connector.available())
    argv = [sys.executable, "-m", "loadtests", "timeout", "--connector", name, "--engine-url", akto_engine.url,
            "--timeout", str(TIMEOUT_MS // 1000), "--margin-ms", str(MARGIN_MS), "--delta-ms", str(DELTA_MS),
            "--users", "16", "--run-time", "6"]  # 16 users: one per scenario; 6 s: 3 timeouts each
    # LiteLLM starts six proxies (about 6 s each on an idle machine, minutes on a loaded one).
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=360 if name == "litellm" else 90,
                            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    answers = connector.answers
    below, late = TIMEOUT_MS - DELTA_MS, TIMEOUT_MS + MARGIN_MS
    gateway_late = min(GATEWAY_MS + MARGIN_MS, TIMEOUT_MS)  # and before the connector's timeout
    for mode, gave_up in (("fail_closed", answers.unreachable), ("fail_open", answers.passed)):
        assert f"PASS  {name}/{mode}/below [{answers.blocked}]: p0 >= {below} ms" in output  # the verdict came back
        assert f"PASS  {name}/{mode}/above [{gave_up}]: p0 >= {TIMEOUT_MS} ms" in output  # waited the full timeout
        assert f"PASS  {name}/{mode}/above [{gave_up}]: p100 <= {late} ms" in output  # and not much longer
        assert f"PASS  {name}/{mode}/down [{gave_up}]: p100 <= {MARGIN_MS} ms" in output
        assert f"PASS  {name}/{mode}/hang [{gave_up}]: p0 >= {TIMEOUT_MS} ms" in output  # a hang is a timeout
        assert f"PASS  {name}/{mode}/hang [{gave_up}]: p100 <= {late} ms" in output
        assert f"PASS  {name}/{mode}/garbage [{gave_up}]: p100 <= {MARGIN_MS} ms" in output  # not JSON: fail mode
        # Gateway fail-open on: its made-up allow at its timeout is an engine failure, decided by the fail mode
        # then, not at the connector's timeout; off: the gateway waits and the connector's timeout decides.
        assert f"PASS  {name}/{mode}/gateway-on [{gave_up}]: p0 >= {GATEWAY_MS} ms" in output
        assert f"PASS  {name}/{mode}/gateway-on [{gave_up}]: p100 <= {gateway_late} ms" in output
        assert f"PASS  {name}/{mode}/gateway-off [{gave_up}]: p0 >= {TIMEOUT_MS} ms" in output
        assert f"PASS  {name}/{mode}/gateway-off [{gave_up}]: p100 <= {late} ms" in output
    # The flaky engine (10% of verdict calls answer 500): fail_open lets every request through, fail_closed
    # refuses no more than its share allows.
    assert f"PASS  {name}/fail_open/flaky [{answers.passed}] (others <= 0%)" in output
    assert f"PASS  {name}/fail_closed/flaky [{answers.passed}] (others <= 30%)" in output
    assert "FAIL" not in output


def test_the_suite_offers_every_registered_connector() -> None:
    """``--connector`` choices come from the registry (in a subprocess: importing Locust patches the stdlib)."""
    result = subprocess.run([sys.executable, "-m", "loadtests", "timeout", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "{" + ",".join(registry.names()) + "}" in result.stdout
    assert registry.names() == ["egress", "litellm", "litellm-builtin", "truefoundry"]
