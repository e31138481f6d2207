"""Run the reference TrueFoundry endpoint (``python -m reference_impl.truefoundry``) as a child process.

Its real host is uvicorn; tests talk to it over a loopback socket exactly as TrueFoundry's gateway would.
Secrets (the HS256 secret callers' JWTs are signed with, the engine key) travel in the environment, never
on the command line.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import jwt

from akto_wire import TRUEFOUNDRY_PATH
from harness.process import LOOPBACK, ManagedProcess, ProcessService, http_ready, start_on_free_port

#: A test-only HS256 secret (32+ bytes, so PyJWT does not warn). Never a real credential.
TEST_JWT_SECRET = "akto-harness-truefoundry-test-secret-0123456789"


def make_token(secret: str = TEST_JWT_SECRET, *, account_id: int | None = 1000000, expires_in: float | None = 3600,
               **claims: Any) -> str:
    """A JWT like the one Akto's dashboard hands out (``accountId`` claim), signed HS256."""
    payload: dict[str, Any] = dict(claims)
    if account_id is not None:
        payload["accountId"] = account_id
    if expires_in is not None:
        payload["exp"] = int(time.time() + expires_in)
    return jwt.encode(payload, secret, algorithm="HS256")


class TrueFoundryEndpoint(ProcessService):
    """One endpoint process pointed at ``akto_url``; a context manager. ``url`` is the guardrail URL base."""

    def __init__(
        self,
        akto_url: str,
        *,
        fail_mode: str = "fail_open",
        timeout: float = 3.0,
        jwt_secret: str | None = TEST_JWT_SECRET,
        default_sync: bool = True,
        block_answer: str = "akto",
        revoked_tokens: str | None = None,
        akto_api_key: str | None = None,
        max_body_bytes: int = 10 * 1024 * 1024,
        account_id: str | None = None,
        vxlan_id: str | None = None,
        http_client: str = "aiohttp",
        log_level: str = "warning",
        startup_timeout: float = 20.0,
        log_dir: str | None = None,
        port: int = 0,
        breaker_failures: int | None = None,
    ) -> None:
        self.akto_url = akto_url
        self.fixed_port = port  # 0: a free one
        self.argv_options = ["--akto-url", akto_url, "--fail-mode", fail_mode, "--timeout", str(timeout),
                             "--default-sync", "true" if default_sync else "false", "--block-answer", block_answer,
                             "--max-body-bytes", str(max_body_bytes), "--log-level", log_level,
                             "--http-client", http_client]
        if account_id is not None:
            self.argv_options += ["--account-id", account_id]
        if vxlan_id is not None:
            self.argv_options += ["--vxlan-id", vxlan_id]
        if breaker_failures is not None:
            self.argv_options += ["--breaker-failures", str(breaker_failures)]
        self.env = {"AKTO_TFY_JWT_SECRET": jwt_secret or "", "AKTO_DI_REVOKED_TOKENS": revoked_tokens or "",
                    "AKTO_API_KEY": akto_api_key or "", "AKTO_GUARDRAIL_API_BASE": ""}
        self.startup_timeout = startup_timeout
        self.log_dir = log_dir
        self.port = 0
        self.process: ManagedProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def guardrail_url(self, **query: str | bool) -> str:
        """The URL to type into TrueFoundry's guardrail config, e.g. ``guardrail_url(sync=True)``."""
        params = "&".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in query.items())
        return f"{self.base_url}{TRUEFOUNDRY_PATH}" + (f"?{params}" if params else "")

    def start(self) -> "TrueFoundryEndpoint":
        def build(port: int) -> ManagedProcess:
            self.port = port
            argv = [sys.executable, "-m", "reference_impl.truefoundry", "--port", str(port), *self.argv_options]
            self.process = ManagedProcess("tfy-endpoint", argv, ready=http_ready(f"{self.base_url}/health"),
                                          env=self.env, startup_timeout=self.startup_timeout, log_dir=self.log_dir)
            return self.process

        start_on_free_port(build, port=self.fixed_port)
        return self

    def log_text(self) -> str:
        """The whole process log (tests check that no token ever shows up in it)."""
        if self.process is None:
            return ""
        try:
            return self.process.log_path.read_text(errors="replace")
        except OSError:
            return ""
