"""Run Locust as a user does (``locust -f <shipped file> ...``) in its own process, bounded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import resources

ENV = {"PATH": "/usr/bin:/bin", "COLUMNS": "200"}


def locustfile(name: str) -> str:
    return str(resources.locustfiles()[name])


def locust(name: str, *args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "locust", "-f", locustfile(name), *args]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV)
