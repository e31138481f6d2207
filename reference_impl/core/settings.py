"""Connector settings shared by every host adapter, validated once at start-up.

A bad value (no URL, a non-HTTP URL, an unknown fallback, a non-positive timeout) raises
:class:`ConfigError` naming the parameter, so the host refuses to start rather than failing later.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .failmode import FailMode

DEFAULT_TIMEOUT_S = 5.0


class ConfigError(ValueError):
    """A connector setting is missing or invalid. The message names the parameter."""


class EngineSettings(BaseModel):
    """How a connector reaches the Akto engine and what it does when it cannot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    akto_base_url: str
    akto_api_key: SecretStr | None = None
    akto_account_id: str = "1000000"
    akto_vxlan_id: str = "0"
    unreachable_fallback: FailMode = FailMode.FAIL_CLOSED
    guardrail_timeout: float = Field(DEFAULT_TIMEOUT_S, gt=0)
    connector: str = ""
    #: Connection pool bounds for the engine client (the PR review asked for limits).
    max_connections: int = Field(100, gt=0)
    max_keepalive_connections: int = Field(20, ge=0)
    #: Fire-and-forget work (ingestion) kept in flight at most; more is dropped and counted.
    max_background_tasks: int = Field(1000, gt=0)
    #: TLS verification toward the engine: True (system CAs), False, or a CA bundle path.
    verify: bool | str = True
    #: Circuit breaker (core/breaker.py): open after this many timeouts in a row within one timeout; 0 = off.
    breaker_failures: int = Field(5, ge=0)
    #: First wait before a half-open probe (doubles per failed probe, up to 30 s).
    breaker_backoff_s: float = Field(1.0, gt=0)
    #: Repeated failure lines of one kind are folded into one per this many seconds (core/failure_log.py).
    failure_log_interval_s: float = Field(10.0, ge=0)

    @field_validator("akto_base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("akto_account_id", "akto_vxlan_id", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> str:
        return str(value)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], env: Mapping[str, str] | None = None, **defaults: Any) -> "EngineSettings":
        """Build settings from host parameters with the documented environment fallbacks.

        Unknown parameters are ignored (hosts pass many of their own); known ones are validated.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = dict(defaults)
        fallbacks = {
            "akto_base_url": "AKTO_GUARDRAIL_API_BASE",
            "akto_api_key": "AKTO_API_KEY",
            "akto_account_id": "AKTO_ACCOUNT_ID",
            "akto_vxlan_id": "AKTO_VXLAN_ID",
        }
        for name in cls.model_fields:
            if params.get(name) is not None:
                values[name] = params[name]
            elif name in fallbacks and env.get(fallbacks[name]):
                values[name] = env[fallbacks[name]]
        try:
            return cls(**values)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(p) for p in first["loc"]) or "settings"
            raise ConfigError(f"akto connector setting {name!r}: {first['msg']}") from None

    @property
    def auth_headers(self) -> dict[str, str]:
        """The engine credential, sent raw as ``Authorization`` (what Akto's clients do)."""
        if self.akto_api_key is None or not self.akto_api_key.get_secret_value():
            return {}
        return {"authorization": self.akto_api_key.get_secret_value()}
