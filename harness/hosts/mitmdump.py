"""Run a real ``mitmdump`` with any addon file(s) on loopback: ours, Akto's published one, or yours.

mitmproxy lives in its own virtual environment (``.venv-mitm``, see docs/environment.md), so it always runs
as a child process. ``AKTO_HARNESS_MITMDUMP`` overrides the binary. Clients reach the real provider URLs
through ``proxy_url`` and trust ``ca_cert`` (mitmproxy writes its CA into ``confdir`` on first start).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from harness import resources
from harness.process import LOOPBACK, ManagedProcess, ProcessService, port_open, start_on_free_port

MITMDUMP_ENV = "AKTO_HARNESS_MITMDUMP"
#: Our reference addon and the test-only upstream router (pass it after the addon under test).
EGRESS_ADDON = resources.egress_addon()
ROUTE_ADDON = resources.route_addon()

OptionValue = str | int | bool
LISTENING_LINE = "proxy listening at"
#: mitmdump logs these when an addon fails to load or configure, then exits 1 just after it starts listening.
STARTUP_ERROR_MARKERS = ("error in script", "Error logged during startup", "Traceback (most recent call last)")


def mitmdump_binary() -> str:
    """``$AKTO_HARNESS_MITMDUMP``, else ``.venv-mitm/bin/mitmdump`` of this checkout, else ``mitmdump`` on PATH."""
    override = os.environ.get(MITMDUMP_ENV)
    if override:
        return override
    checkout = resources.source_checkout()
    candidate = checkout / ".venv-mitm" / "bin" / "mitmdump" if checkout else None
    if candidate and candidate.exists():
        return str(candidate)
    on_path = shutil.which("mitmdump")
    if on_path:
        return on_path
    raise FileNotFoundError(f"no mitmdump at {candidate or 'PATH'}: run `make venvs` or set {MITMDUMP_ENV}")


def route_map(routes: Mapping[str, tuple[str, int]]) -> str:
    """The ``route_map`` option of :mod:`harness.hosts.mitm_route`: ``host=ip:port,...``."""
    return ",".join(f"{host}={ip}:{port}" for host, (ip, port) in routes.items())


class MitmDump(ProcessService):
    """One ``mitmdump`` child process; a context manager.

    ``addons`` are script paths loaded in order (``-s``); ``options`` become ``--set name=value``;
    ``env`` is added to the child's environment (e.g. ``AKTO_URL`` for an addon configured that way).
    Pass a shared ``confdir`` to reuse one CA across several proxies.
    """

    def __init__(
        self,
        addons: Sequence[str | os.PathLike[str]] = (EGRESS_ADDON,),
        *,
        options: Mapping[str, OptionValue] | None = None,
        env: Mapping[str, str] | None = None,
        confdir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 20.0,
        log_dir: str | os.PathLike[str] | None = None,
        port: int = 0,
    ) -> None:
        self.fixed_port = port  # 0: a free one
        self.addons = [Path(a).resolve() for a in addons]
        for addon in self.addons:
            if not addon.is_file():
                raise FileNotFoundError(f"addon file not found: {addon}")
        self.options = dict(options or {})
        self.env = dict(env or {})
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if confdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="mitm-confdir-")
            confdir = self._tempdir.name
        self.confdir = Path(confdir)
        self.startup_timeout = startup_timeout
        self.log_dir = log_dir
        self.port = 0
        self.process: ManagedProcess | None = None

    @property
    def proxy_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ca_cert(self) -> Path:
        """The CA clients must trust for intercepted HTTPS (PEM, written by mitmproxy at start)."""
        return self.confdir / "mitmproxy-ca-cert.pem"

    def client_env(self) -> dict[str, str]:
        """Environment for a client process: all traffic through this proxy, trusting its CA."""
        return {
            "HTTP_PROXY": self.proxy_url,
            "HTTPS_PROXY": self.proxy_url,
            "SSL_CERT_FILE": str(self.ca_cert),
            "REQUESTS_CA_BUNDLE": str(self.ca_cert),
        }

    def argv(self) -> list[str]:
        argv = [mitmdump_binary(), "--listen-host", LOOPBACK, "--listen-port", str(self.port),
                "--set", f"confdir={self.confdir}"]
        for addon in self.addons:
            argv += ["-s", str(addon)]
        for name, value in self.options.items():
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            argv += ["--set", f"{name}={text}"]
        return argv

    def start(self) -> "MitmDump":
        def build(port: int) -> ManagedProcess:
            self.port = port
            self.process = ManagedProcess(
                "mitmdump", self.argv(), ready=self._ready, env={"PYTHONUNBUFFERED": "1", **self.env},
                startup_timeout=self.startup_timeout, log_dir=self.log_dir,
            )
            return self.process

        start_on_free_port(build, port=self.fixed_port)
        return self

    def stop(self, grace: float = 1.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` s: mitmdump takes ~2 s to wind down and keeps no state to save."""
        code = self.process.stop(grace) if self.process is not None else None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
        return code

    def log_tail(self, lines: int = 60) -> str:
        return super().log_tail(lines)

    def _ready(self) -> bool:
        """Listening, CA written, and no addon error logged (mitmdump then exits 1 a moment later)."""
        if self.process is None or not self.ca_cert.exists() or not port_open(self.port)():
            return False
        try:
            log = self.process.log_path.read_text(errors="replace")
        except OSError:
            return False
        return LISTENING_LINE in log and not any(marker in log for marker in STARTUP_ERROR_MARKERS)
