"""Start real servers as child processes on loopback, wait for them with a deadline, stop them cleanly.

Every wait here is a condition polled against a deadline, never a bare sleep; every process is stopped
(SIGTERM, then SIGKILL after a grace period) and its output kept in a log file for failure reports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Generic, Mapping, Protocol, Self, Sequence, TypeVar

import httpx

LOOPBACK = "127.0.0.1"


class StartupError(RuntimeError):
    """A child process did not become ready before its deadline (its log tail is in the message)."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.02, what: str = "condition") -> None:
    """Poll ``condition`` until it is true; raise ``TimeoutError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g}s")
        time.sleep(interval)


def http_ready(url: str, *, ok_statuses: Sequence[int] = (200,), timeout: float = 1.0) -> Callable[[], bool]:
    """A readiness probe: ``url`` answers one of ``ok_statuses``."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=timeout, trust_env=False).status_code in ok_statuses
        except httpx.HTTPError:
            return False

    return probe


def port_open(port: int, host: str = LOOPBACK) -> Callable[[], bool]:
    """A readiness probe: something accepts TCP connections on ``host:port``."""

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return probe


class ManagedProcess:
    """One child process with a log file, a readiness probe and a bounded stop.

    Usable as a context manager. ``env`` is merged over the current environment; proxy variables are
    removed so loopback traffic never leaves through a proxy the developer happens to have set.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready: Callable[[], bool],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.ready = ready
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
        self.env.update(env or {})
        log_root = Path(log_dir) if log_dir else Path(tempfile.gettempdir()) / "akto-harness-logs"
        log_root.mkdir(parents=True, exist_ok=True)
        self.log_path = log_root / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "ManagedProcess":
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while not self.ready():
            if self.proc.poll() is not None:
                raise StartupError(f"{self.name} exited with {self.proc.returncode} before ready:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                self.stop()
                raise StartupError(f"{self.name} not ready within {self.startup_timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the whole process group, SIGKILL it after ``grace`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            return self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(timeout=grace)
        except ProcessLookupError:
            return self.proc.wait(timeout=grace)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "ManagedProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProcessService:
    """A harness server run as one :class:`ManagedProcess` (``self.process``, set by ``start``): what every
    such wrapper (engine, fake LLM, LiteLLM proxy, mitmdump, TrueFoundry gateway and endpoint) shares.
    Subclasses write ``start`` and extend ``stop`` with their own clean-up (a client, a temporary folder)."""

    process: ManagedProcess | None = None

    def start(self) -> Self:  # pragma: no cover - every service defines it
        raise NotImplementedError

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines) if self.process is not None else "(not started)"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ClosableClient(Protocol):
    def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=ClosableClient)


class ServiceWithClient(ProcessService, Generic[ClientT]):
    """A :class:`ProcessService` with a client of its own control API (a fake's ``/__fake`` routes): made on
    first use of :attr:`client` by ``new_client``, closed by ``stop``."""

    _client: ClientT | None = None

    def new_client(self) -> ClientT:  # pragma: no cover - every such service defines it
        raise NotImplementedError

    @property
    def client(self) -> ClientT:
        if self._client is None:
            self._client = self.new_client()
        return self._client

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        super().stop()


_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def start_on_free_port(build: Callable[[int], ManagedProcess], *, attempts: int = 3, port: int = 0) -> ManagedProcess:
    """Start the process ``build(port)`` makes for a port from :func:`free_port`, and return it started.

    A port that was free when picked can be taken before the child binds it (other tests pick ports at
    the same time), so an "address already in use" start is retried on a fresh port; any other failure
    is raised at once. A fixed ``port`` (``akto-harness up``'s documented ports) is tried once: taken, the
    start fails naming it.
    """
    if port:
        return build(port).start()
    for attempt in range(attempts):
        process = build(free_port())
        try:
            return process.start()
        except StartupError as exc:
            if "address already in use" not in str(exc).lower() or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
