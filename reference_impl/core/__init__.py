"""What every reference connector shares: settings, the engine client, verdict reading, the fail-mode
decision, credential stripping and masking. Host adapters (LiteLLM, mitmproxy, ASGI) stay thin on top."""

from .engine_client import EngineClient
from .failmode import EngineFailure, FailMode, FailureDecision, FailureKind, on_failure
from .headers import CREDENTIAL_HEADERS, FORWARDED_HEADERS, safe_headers
from .settings import ConfigError, EngineSettings

__all__ = [
    "CREDENTIAL_HEADERS",
    "ConfigError",
    "EngineClient",
    "EngineFailure",
    "EngineSettings",
    "FORWARDED_HEADERS",
    "FailMode",
    "FailureDecision",
    "FailureKind",
    "on_failure",
    "safe_headers",
]
