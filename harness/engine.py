"""The fake Akto engine as a real child process, and one namespace of it per test.

The engine runs as ``python -m mock_akto serve --port 0``; the port it picked is read from its ready line
(``mock-akto listening on http://...``), so there is no free-port race, then readiness is confirmed on
``/__admin/health``. :class:`EngineNamespace` is what a test gets: its own namespace with its own
loopback listener (a base URL for connectors), and a client bound to it.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from dataclasses import dataclass
from typing import Mapping, Sequence

import httpx

from mock_akto.client import MockAktoClient
from mock_akto.config import ADMIN_TOKEN_ENV, TOKEN_ENV
from mock_akto.server import READY_PREFIX

from .process import ManagedProcess, ProcessService

_READY_LINE = re.compile(re.escape(READY_PREFIX) + r"(http://\S+)")
_names = itertools.count(1)


class EngineProcess(ProcessService):
    """``python -m mock_akto serve`` in a child process; usable as a context manager.

    ``token`` and ``admin_token`` are passed through the environment (never on the command line, where
    ``ps`` shows them); :meth:`client` sends the admin token (``admin_token``, else ``token``).
    """

    def __init__(
        self,
        *,
        python: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        admin_token: str | None = None,
        policies: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        argv = [python or sys.executable, "-m", "mock_akto", "serve", "--host", host, "--port", str(port)]
        if policies is not None:
            argv += ["--policies", os.fspath(policies)]
        argv += list(extra_args)
        child_env = dict(env or {})
        if token is not None:
            child_env[TOKEN_ENV] = token
        if admin_token is not None:
            child_env[ADMIN_TOKEN_ENV] = admin_token
        self.admin_token = admin_token or token
        self.url: str | None = None
        self.process = ManagedProcess("mock-akto", argv, ready=self._ready, env=child_env,
                                      startup_timeout=startup_timeout)

    def _ready(self) -> bool:
        if self.url is None:
            try:
                match = _READY_LINE.search(self.process.log_path.read_text(errors="replace"))
            except OSError:
                return False
            if match is None:
                return False
            self.url = match.group(1)
        try:
            return httpx.get(f"{self.url}/__admin/health", timeout=1.0, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def port(self) -> int:
        if self.url is None:
            raise RuntimeError("the engine is not running")
        return httpx.URL(self.url).port or 80

    def start(self) -> "EngineProcess":
        self.process.start()
        return self

    def client(self, namespace: str | None = None) -> MockAktoClient:
        if self.url is None:
            raise RuntimeError("the engine is not running")
        return MockAktoClient(self.url, namespace, admin_token=self.admin_token)


def unique_namespace(hint: str = "t") -> str:
    """A namespace name unique in this process and among xdist workers (valid for the engine)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", hint).strip("-")[:40] or "t"
    return f"{worker}-{os.getpid()}-{next(_names)}-{clean}"


@dataclass
class EngineNamespace:
    """One test's slice of the engine.

    ``url`` is the namespace's own listener (give it to connectors as the Akto base URL: every call there
    lands in this namespace, and ``down`` refuses it); ``engine_url`` is the shared engine port;
    ``client`` scripts and inspects this namespace.
    """

    engine_url: str
    namespace: str
    url: str
    client: MockAktoClient

    @classmethod
    def open(cls, engine_url: str, hint: str = "t", *, admin_token: str | None = None) -> "EngineNamespace":
        """A new namespace with its own listener (``admin_token``: what the engine's admin API requires)."""
        name = unique_namespace(hint)
        client = MockAktoClient(engine_url, name, admin_token=admin_token)
        try:
            url = client.create_listener()
        except Exception:
            client.close()
            raise
        return cls(engine_url=engine_url, namespace=name, url=url, client=client)

    @property
    def prefixed_url(self) -> str:
        """The same namespace through the shared port (``/ns/<name>``), for hosts that need one port."""
        return f"{self.engine_url}/ns/{self.namespace}"

    def close(self) -> None:
        """Reset and forget the namespace (closes its listener)."""
        try:
            self.client.delete_namespace()
        finally:
            self.client.close()


@dataclass
class ExternalEngine:
    """An engine somebody else runs (``AKTO_HARNESS_ENGINE_URL``): same surface as :class:`EngineProcess`."""

    url: str
    admin_token: str | None = None  # None: the client's default ($MOCK_AKTO_ADMIN_TOKEN, $MOCK_AKTO_TOKEN)

    def client(self, namespace: str | None = None) -> MockAktoClient:
        return MockAktoClient(self.url, namespace, admin_token=self.admin_token)
