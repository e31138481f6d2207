"""Our Locust users never reuse a connection idle longer than ``max_idle_s`` (loadtests/keepalive.py).

Against a server that keeps idle connections forever, Locust's plain FastHttpUser reuses the idle one, and
ours opens a new one: what keeps a run from writing a request on a connection the server is closing (the
keep-alive race that once failed 3 of 2,000 open-model requests on CI). The probe runs in its own process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("keepalive_probe.py")

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def ports() -> dict[str, dict[str, list[str]]]:
    result = subprocess.run([sys.executable, str(PROBE)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=45,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_back_to_back_requests_share_a_connection(ports) -> None:  # noqa: ANN001
    first, second, _ = ports["ours"]["sequential"]
    assert first == second, ports


def test_a_connection_idle_past_max_idle_is_not_reused(ports) -> None:  # noqa: ANN001
    first, _, after_pause = ports["ours"]["sequential"]
    assert after_pause != first, ports
    # The control: Locust's own user does reuse it, so the probe's pause really left it idle and open.
    plain_first, _, plain_after_pause = ports["plain"]["sequential"]
    assert plain_after_pause == plain_first, ports


def test_dropped_connections_free_their_slots(ports) -> None:  # noqa: ANN001
    """Two slots: after the pause both concurrent requests are answered, each on a new connection."""
    seen_before = set(ports["ours"]["sequential"])
    concurrent = ports["ours"]["concurrent"]
    assert len(set(concurrent)) == 2 and not set(concurrent) & seen_before, ports
