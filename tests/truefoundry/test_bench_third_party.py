"""``bench truefoundry_overhead --third-party TARGET.yaml`` measures a user's guardrail endpoint beside ours.

The "third party" here is our own reference endpoint, started from a conformance target file's ``command``
against the bench's engine (as a user's would be): it must show up in every loop with no errors, and its CPU
per request must be read from the process the bench started. Unpinned and short: other tests run beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.hosts.truefoundry_endpoint import TEST_JWT_SECRET

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_a_third_party_endpoint_is_measured_beside_ours(tmp_path: Path) -> None:
    target = tmp_path / "third.yaml"
    target.write_text(yaml.safe_dump({
        "name": "reference-as-third-party",
        "guardrail_url": "http://127.0.0.1:{port}/api/http-proxy/truefoundry",
        "command": [sys.executable, "-m", "reference_impl.truefoundry", "--port", "{port}", "--akto-url", "{engine_url}",
                    "--fail-mode", "{fail_mode}", "--timeout", "{timeout_s}"],
        "env": {"AKTO_TFY_JWT_SECRET": TEST_JWT_SECRET},
    }))
    out = tmp_path / "bench.json"
    argv = [sys.executable, "-m", "bench", "truefoundry_overhead", "--requests", "30", "--rounds", "1",
            "--throughput-requests", "200", "--engine-delay-ms", "50", "--no-stall", "--no-pin", "--third-party", str(target),
            "--json", str(out)]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=150,
                            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    for loop in (report["latency"], report["throughput"], report["delayed_throughput"]["50"]):
        names = json.dumps(loop)
        assert "third-party" in names and "endpoint" in names, loop
    assert report["cpu_us_per_request"]["third-party"] > 0, report["cpu_us_per_request"]
    assert "0 errors" in result.stdout or "PASS  no errors" in result.stdout, result.stdout[-2000:]


def test_a_target_of_another_kind_is_refused_with_a_message(tmp_path: Path) -> None:
    target = tmp_path / "addon.yaml"
    target.write_text(yaml.safe_dump({"name": "an-addon", "reference": "egress"}))
    result = subprocess.run([sys.executable, "-m", "bench", "truefoundry_overhead", "--third-party", str(target)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert result.returncode != 0
    assert "not a guardrail_url target" in result.stderr, result.stderr[-2000:]
