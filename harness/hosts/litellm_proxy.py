"""A real LiteLLM proxy (``litellm --config ... --port P``) as a managed child process, with any config.

Users point it at their own config.yaml to run the contract scenarios against their LiteLLM guardrail setup
(including LiteLLM's built-in ``akto`` guardrail); the harness builds configs for the reference hook.

Why the environment it sets: LiteLLM 1.106.2 refuses a well-known master key (a strong random one is made
per proxy), tries to download its price map unless ``LITELLM_LOCAL_MODEL_COST_MAP=True``, and loads
``guardrail: module.Class`` paths from ``PYTHONPATH`` (the folder ``reference_impl`` is imported from is put first).
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

import yaml

from harness.process import LOOPBACK, ManagedProcess, ProcessService, StartupError, free_port, http_ready
from harness.resources import import_root

#: LiteLLM starts in ~6 s on an idle machine; parallel test workers on 2 cores can triple that.
STARTUP_TIMEOUT_S = 90.0
#: What LiteLLM 1.106.2 logs when it drops a guardrail entry it could not load and serves without it.
SKIPPED_GUARDRAIL = "Skipping guardrail"


def litellm_executable() -> str:
    """``litellm`` next to the running interpreter (the project's ``.venv``), or ``AKTO_HARNESS_LITELLM``."""
    configured = os.environ.get("AKTO_HARNESS_LITELLM")
    if configured:
        return configured
    candidate = Path(sys.executable).with_name("litellm")
    return str(candidate) if candidate.exists() else "litellm"


def model_entry(name: str, llm_url: str, provider: str = "openai") -> dict[str, Any]:
    """A ``model_list`` entry sending ``name`` to the fake LLM (OpenAI at ``/v1``, Anthropic at the root)."""
    if provider == "anthropic":
        params = {"model": f"anthropic/{name}", "api_base": llm_url, "api_key": "fake-anthropic-key"}
    else:
        params = {"model": f"openai/{name}", "api_base": f"{llm_url}/v1", "api_key": "fake-openai-key"}
    return {"model_name": name, "litellm_params": params}


def base_config(models: list[dict[str, Any]], guardrails: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A config with LLM retries off (a guardrail 403 must not be retried) and the given guardrails."""
    config: dict[str, Any] = {
        "model_list": models,
        "litellm_settings": {"num_retries": 0, "request_timeout": 60},
        "router_settings": {"num_retries": 0},
    }
    if guardrails:
        config["guardrails"] = guardrails
    return config


class LiteLLMProxy(ProcessService):
    """One LiteLLM proxy on loopback. Usable as a context manager.

    ``config`` is a path to an existing config.yaml or a dict (written to a private temporary file).
    ``env`` is added to the child's environment (e.g. ``AKTO_GUARDRAIL_API_BASE``, ``AKTO_API_KEY``).
    """

    def __init__(
        self,
        config: str | os.PathLike[str] | Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        name: str = "litellm",
        startup_timeout: float = STARTUP_TIMEOUT_S,
        log_dir: str | os.PathLike[str] | None = None,
        require_all_guardrails: bool = True,
        port: int = 0,
        master_key: str | None = None,
    ) -> None:
        self.config = config
        self.require_all_guardrails = require_all_guardrails
        self.extra_env = dict(env or {})
        self.name = name
        self.startup_timeout = startup_timeout
        self.log_dir = log_dir
        #: The proxy's admin key, also what clients send as ``Authorization: Bearer ...``.
        self.master_key = master_key or "sk-" + secrets.token_urlsafe(32)
        self.fixed_port = port  # 0: a free one
        self.port = 0
        self.process: ManagedProcess | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.master_key}"}

    @property
    def config_path(self) -> Path:
        if isinstance(self.config, Mapping):
            if self._tempdir is None:
                self._tempdir = tempfile.TemporaryDirectory(prefix="litellm-config-")
                path = Path(self._tempdir.name) / "config.yaml"
                path.write_text(yaml.safe_dump(dict(self.config), sort_keys=False))
            return Path(self._tempdir.name) / "config.yaml"
        return Path(self.config)

    def env(self) -> dict[str, str]:
        python_path = os.pathsep.join(p for p in (str(import_root()), os.environ.get("PYTHONPATH", "")) if p)
        return {
            "LITELLM_MASTER_KEY": self.master_key,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "PYTHONPATH": python_path,
            **self.extra_env,
        }

    def start(self) -> "LiteLLMProxy":
        last_error: StartupError | None = None
        for _ in range(1 if self.fixed_port else 3):  # a free port may be taken before the proxy's bind()
            self.port = self.fixed_port or free_port()
            argv = [litellm_executable(), "--config", str(self.config_path), "--host", LOOPBACK, "--port", str(self.port)]
            self.process = ManagedProcess(
                self.name, argv, ready=http_ready(f"{self.url}/health/liveliness"), env=self.env(),
                cwd=str(self.config_path.parent), startup_timeout=self.startup_timeout, log_dir=self.log_dir,
            )
            try:
                self.process.start()
                self._check_guardrails_loaded()
                return self
            except StartupError as exc:
                last_error = exc
                if "address already in use" not in str(exc).lower():
                    break
        self.stop()
        assert last_error is not None
        raise last_error

    def _check_guardrails_loaded(self) -> None:
        """Refuse a proxy that dropped a guardrail entry: it would serve unguarded traffic and every
        scenario would be testing the wrong thing. (``require_all_guardrails=False`` to allow it.)"""
        if not self.require_all_guardrails or self.process is None:
            return
        log = self.process.log_path.read_text(errors="replace")
        if SKIPPED_GUARDRAIL in log:
            lines = [line for line in log.splitlines() if SKIPPED_GUARDRAIL in line]
            self.process.stop()
            raise StartupError(f"{self.name} started without a guardrail entry:\n" + "\n".join(lines))

    def stop(self) -> None:
        super().stop()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
