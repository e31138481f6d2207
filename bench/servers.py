"""The servers a benchmark compares, each on one pinned core and a free loopback port.

Both run on the same stack (uvicorn + uvloop + httptools, one process, no access log, no proxy-headers
middleware, no server header), so the difference
between them is the app. Pinning keeps the server on core 0 and the load generator on core 1; without
``sched_setaffinity`` (or with one core) the benchmark still runs and says so in its notes.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import httpx
import psutil

from harness.engine import EngineProcess
from harness.process import LOOPBACK, ManagedProcess, free_port, port_open

from bench.raw_app import BODY_FILE_ENV, DELAY_MS_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU = 0
LOADGEN_CPU = 1


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2


def pin_process(pid: int, cpu: int) -> bool:
    """Pin every thread of ``pid`` to ``cpu`` (threads created later inherit it). False when not possible."""
    if not can_pin():
        return False
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), {cpu})
    except (OSError, ValueError):
        return False
    return True


def pin_self(cpu: int = LOADGEN_CPU) -> bool:
    """Pin this process (the Python load generator) to ``cpu``."""
    return pin_process(os.getpid(), cpu)


def raw_app_process(body_file: Path, *, delay_ms: int = 0) -> tuple[ManagedProcess, str]:
    """The stack's ceiling: :mod:`bench.raw_app` answering the bytes in ``body_file`` (after ``delay_ms``)."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.raw_app:app", "--host", LOOPBACK, "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
            "--lifespan", "off", "--no-proxy-headers", "--no-server-header"]  # as mock_akto.server runs the engine
    env = {BODY_FILE_ENV: str(body_file), DELAY_MS_ENV: str(delay_ms)}
    proc = ManagedProcess("bench-raw-app", argv, ready=port_open(port), cwd=REPO_ROOT, env=env, startup_timeout=20)
    return proc, f"http://{LOOPBACK}:{port}"


def engine_process(extra_args: Sequence[str] = ()) -> EngineProcess:
    """The fake engine as users run it (``python -m mock_akto serve``): default policies, journal on."""
    return EngineProcess(extra_args=extra_args)


def server_pid(process: ManagedProcess | EngineProcess) -> int:
    managed = process.process if isinstance(process, EngineProcess) else process
    if managed.proc is None:
        raise RuntimeError(f"{managed.name} is not running")
    return managed.proc.pid


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used so far (read before and after a round)."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@dataclass
class SideBySide:
    """The engine and the raw app replaying the engine's own answer, for one benchmark run."""

    engine: EngineProcess
    raw: ManagedProcess
    raw_url: str
    answer: httpx.Response  #: the engine's answer to the benchmark body (the bytes the raw app sends)
    pinned: bool  #: servers on SERVER_CPU and this process on LOADGEN_CPU


@contextmanager
def engine_beside_raw_app(path: str, body: bytes, *, delay_ms: int = 0) -> Iterator[SideBySide]:
    """Start the engine, ask it ``body`` at ``path``, start the raw app answering those exact bytes (after
    ``delay_ms``), pin both servers and this load generator; stop both at the end. The caller checks
    ``answer`` (the raw app replays whatever came back)."""
    with engine_process() as engine, tempfile.TemporaryDirectory() as tmp:
        answer = httpx.post(engine.url + path, content=body, headers={"content-type": "application/json"},
                            timeout=10, trust_env=False)
        verdict_file = Path(tmp) / "verdict.json"
        verdict_file.write_bytes(answer.content)
        raw, raw_url = raw_app_process(verdict_file, delay_ms=delay_ms)
        with raw:
            pinned = all([pin_process(server_pid(engine), SERVER_CPU), pin_process(server_pid(raw), SERVER_CPU),
                          pin_self(LOADGEN_CPU)])
            yield SideBySide(engine, raw, raw_url, answer, pinned)
