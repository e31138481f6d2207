"""Run the fake LLM as a real server in a child process on loopback (optionally over HTTPS)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import httpx

from harness.fakes.llm.client import FakeLLMClient
from harness.fakes.llm.script import DEFAULT_MAX_RECORDED
from harness.process import LOOPBACK, ManagedProcess, ServiceWithClient, start_on_free_port

#: Names the generated test certificate is valid for (``tls=True``).
DEFAULT_TLS_NAMES = ("127.0.0.1", "localhost")


class FakeLLMServer(ServiceWithClient[FakeLLMClient]):
    """``python -m harness.fakes.llm`` as a managed child process; a context manager.

    ``tls=True`` makes a throwaway CA and certificate with ``trustme`` (``ca_cert`` is the file clients
    and proxies must trust); or pass your own ``tls_cert`` / ``tls_key`` files.
    """

    def __init__(
        self,
        *,
        tls: bool = False,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        ca_cert: str | os.PathLike[str] | None = None,
        tls_names: Sequence[str] = DEFAULT_TLS_NAMES,
        max_recorded: int = DEFAULT_MAX_RECORDED,
        startup_timeout: float = 20.0,
        log_dir: str | os.PathLike[str] | None = None,
        port: int = 0,
    ) -> None:
        self.tls_cert = Path(tls_cert) if tls_cert else None
        self.tls_key = Path(tls_key) if tls_key else None
        self.ca_cert = Path(ca_cert) if ca_cert else None
        self._tls_names = tuple(tls_names)
        self._generate_tls = tls and self.tls_cert is None
        self.max_recorded = max_recorded
        self.startup_timeout = startup_timeout
        self.log_dir = log_dir
        #: The loopback port asked for (0: a free one) and, once started, the one it listens on.
        self.fixed_port = port
        self.port = 0
        self.process: ManagedProcess | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def url(self) -> str:
        """Base URL without ``/v1`` (Anthropic SDK style); OpenAI clients want ``url + "/v1"``."""
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    @property
    def verify(self) -> bool | str:
        """What an httpx client needs to trust this server."""
        if self.scheme == "http":
            return True
        return str(self.ca_cert) if self.ca_cert else False

    def new_client(self) -> FakeLLMClient:
        return FakeLLMClient(self.url, verify=self.verify)

    def start(self) -> "FakeLLMServer":
        if self._generate_tls:
            self._make_certificate()

        def build(port: int) -> ManagedProcess:
            self.port = port
            self.process = ManagedProcess(
                "fake-llm", self._argv(), ready=self._ready, startup_timeout=self.startup_timeout, log_dir=self.log_dir
            )
            return self.process

        start_on_free_port(build, port=self.fixed_port)
        return self

    def stop(self) -> None:
        super().stop()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def _argv(self) -> list[str]:
        argv = [sys.executable, "-m", "harness.fakes.llm", "--port", str(self.port), "--max-recorded", str(self.max_recorded)]
        if self.tls_cert:
            argv += ["--tls-cert", str(self.tls_cert)]
        if self.tls_key:
            argv += ["--tls-key", str(self.tls_key)]
        return argv

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/__fake/health", verify=self.verify, timeout=1.0, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def _make_certificate(self) -> None:
        import trustme  # test dependency: only needed when a certificate is generated

        self._tempdir = tempfile.TemporaryDirectory(prefix="fake-llm-tls-")
        folder = Path(self._tempdir.name)
        ca = trustme.CA()
        issued = ca.issue_cert(*self._tls_names)
        self.ca_cert, self.tls_cert, self.tls_key = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
        ca.cert_pem.write_to_path(str(self.ca_cert))
        issued.private_key_pem.write_to_path(str(self.tls_key))
        self.tls_cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
