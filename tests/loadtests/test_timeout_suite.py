"""The timeout suite through a real connector: each request lands on the right side of the engine timeout.

A 1 s connector timeout (instead of the default 5 s) keeps the run short; the engine delays are 0.6 s and
1.4 s, and Akto's gateway gives up on the slow guardrails-service at 600 ms (its 3 s under 5 s, scaled).

Other tests share the two cores, so both sides get room the suite's defaults (250 ms late, delays 200 ms
off the timeout) do not give: the allowed lateness is 750 ms, and the delays are 400 ms off the timeout.
The timeout counts from the host's arrival stamp, and six LiteLLM proxies beside Locust took up to 300 ms
of their own around an engine call here (in one CI run, 200 ms was too tight for one "below" request of
eight). The lower bounds (the connector really waited) and the statuses (which side of the timeout) need
no margin, and the gateway's answer must still come before the connector's own timeout.

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


@pytest.mark.parametrize("name", ["truefoundry", pytest.param("egress", marks=pytest.mark.mitm),
                                  pytest.param("litellm", marks=pytest.mark.litellm)])
def test_fail_modes_land_on_the_right_side_of_the_timeout(akto_engine, name: str) -> None:
    connector = registry.get(name)
    if connector.available():
        pytest.skip(connector.available())
    argv = [sys.executable, "-m", "loadtests", "timeout", "--connector", name, "--engine-url", akto_engine.url,
            "--timeout", "1", "--margin-ms", "750", "--delta-ms", "400",
            "--users", "16", "--run-time", "4"]  # 16 users: one per scenario
    # LiteLLM starts six proxies (about 6 s each on an idle machine, minutes on a loaded one).
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=360 if name == "litellm" else 75,
                            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    answers = connector.answers
    for mode, gave_up in (("fail_closed", answers.unreachable), ("fail_open", answers.passed)):
        assert f"PASS  {name}/{mode}/below [{answers.blocked}]: p0 >= 600 ms" in output  # the verdict came back
        assert f"PASS  {name}/{mode}/above [{gave_up}]: p0 >= 1000 ms" in output  # waited the full timeout
        assert f"PASS  {name}/{mode}/above [{gave_up}]: p100 <= 1750 ms" in output  # and not much longer
        assert f"PASS  {name}/{mode}/down [{gave_up}]: p100 <= 750 ms" in output
        assert f"PASS  {name}/{mode}/hang [{gave_up}]: p0 >= 1000 ms" in output  # a hang is a timeout
        assert f"PASS  {name}/{mode}/hang [{gave_up}]: p100 <= 1750 ms" in output
        assert f"PASS  {name}/{mode}/garbage [{gave_up}]: p100 <= 750 ms" in output  # not JSON: the fail mode
        # Gateway fail-open on: its made-up allow at 600 ms is an engine failure, decided by the fail mode
        # then, not at the connector's timeout; off: the gateway waits and the connector's timeout decides.
        assert f"PASS  {name}/{mode}/gateway-on [{gave_up}]: p0 >= 600 ms" in output
        assert f"PASS  {name}/{mode}/gateway-on [{gave_up}]: p100 <= 1000 ms" in output
        assert f"PASS  {name}/{mode}/gateway-off [{gave_up}]: p0 >= 1000 ms" in output
        assert f"PASS  {name}/{mode}/gateway-off [{gave_up}]: p100 <= 1750 ms" in output
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
