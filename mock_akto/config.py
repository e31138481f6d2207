"""How to run one engine: :class:`EngineConfig`, read by the app, the server and the CLI.

In its own module so that the engine (``app``), the server that runs it and the admin API depend on the
config without depending on each other (no import circle), and so ``import mock_akto`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .journal import DEFAULT_MAX_ENTRIES, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_PAYLOAD_CAP
from .profiles import DEFAULT_PROFILE, PROFILES, get_profile

#: Where the engine, the CLI and the client find the contract token and the admin token by default (the
#: environment keeps them out of the process list).
TOKEN_ENV = "MOCK_AKTO_TOKEN"
ADMIN_TOKEN_ENV = "MOCK_AKTO_ADMIN_TOKEN"
#: Request bodies above this size get 413 (the rest is drained unread).
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
#: Most namespaces one engine keeps. Each has its own journal and ingest rings (bounded on their own), so
#: this bounds how many of those a caller inventing a namespace per call, or a suite that never removes
#: its namespaces, can make the engine hold.
DEFAULT_MAX_NAMESPACES = 1000
#: Admin request bodies above this size get 413 (policies and rules are small; nothing needs more).
DEFAULT_MAX_ADMIN_BODY_BYTES = 1024 * 1024
#: Most extra listeners (each is one more open socket) and registered API keys one engine keeps.
DEFAULT_MAX_LISTENERS = 1000
DEFAULT_MAX_API_KEYS = 10_000
#: Most client connections open at once; one more is answered 503 and closed (file descriptors are finite:
#: 20,200 idle connections once exhausted them and real calls failed).
DEFAULT_MAX_CONNECTIONS = 10_000
#: Seconds a client may take to send a request's headers (slowloris) or, after connecting, its first byte.
DEFAULT_HEADER_TIMEOUT_S = 10.0
#: Seconds a client may take to send a request's body once its headers arrived (a trickled or endless body).
DEFAULT_BODY_TIMEOUT_S = 30.0
#: Seconds an idle keep-alive connection stays open between requests. Longer than the client pools keep idle
#: connections (LiteLLM's aiohttp pool 120 s, aiohttp's default 15 s, httpx's 5 s): a client that writes a
#: request into a connection the server is closing gets no answer and never retries a POST, so a 5 s server
#: timeout made their calls fail now and then for no fault of theirs. ``--keep-alive`` sets a shorter one,
#: to see how a connector copes with an engine that closes idle connections early.
DEFAULT_KEEP_ALIVE_S = 150.0
#: Most bytes of request line and headers; more gets 431 (a 50 MB header was once accepted).
DEFAULT_MAX_HEADER_BYTES = 64 * 1024


class EngineConfig(BaseModel):
    """How to run one engine. ``token`` is a secret: it never shows in reprs, logs or the journal."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="bind address (loopback by default)")
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port (printed in the ready line)")
    token: SecretStr | None = Field(None, description="when set, /api/* needs this Authorization (raw or Bearer)")
    admin_token: SecretStr | None = Field(
        None, description="when set (else ``token``, when that is set), /__admin needs this Authorization")
    policies_file: Path | None = Field(None, description="YAML policies every namespace starts from")
    journal_size: int = Field(DEFAULT_MAX_ENTRIES, ge=1, description="journal entries kept per namespace")
    ingest_size: int = Field(DEFAULT_MAX_ENTRIES, ge=1, description="ingest records kept per namespace")
    journal_payload_cap: int = Field(DEFAULT_PAYLOAD_CAP, ge=0, description="characters kept of each payload")
    journal_max_bytes: int = Field(DEFAULT_MAX_PAYLOAD_BYTES, ge=1, description="payload characters per ring")
    memory_budget_bytes: int = Field(DEFAULT_MEMORY_BUDGET_BYTES, ge=1, description=(
        "payload characters all journals and ingest records hold together; the oldest are evicted first"))
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1, description="larger request bodies get 413")
    max_namespaces: int = Field(DEFAULT_MAX_NAMESPACES, ge=1, description="namespaces one engine keeps at most")
    state_path: Path | None = Field(None, description="apply file or folder loaded at start: policies, faults, verdicts")
    replay_file: Path | None = Field(None, description="a `mock-akto record` file: recorded calls get recorded verdicts")
    replay_miss: Literal["policies", "fail"] = Field(
        "policies", description="a call the replay file lacks: the policies decide, or it fails loudly (500)")
    max_admin_body_bytes: int = Field(DEFAULT_MAX_ADMIN_BODY_BYTES, ge=1, description="larger admin bodies get 413")
    max_listeners: int = Field(DEFAULT_MAX_LISTENERS, ge=0, description="extra listeners kept at most")
    max_api_keys: int = Field(DEFAULT_MAX_API_KEYS, ge=0, description="registered API keys kept at most")
    max_connections: int = Field(DEFAULT_MAX_CONNECTIONS, ge=1, description="open connections; one more gets 503")
    header_timeout: float = Field(DEFAULT_HEADER_TIMEOUT_S, gt=0, description="seconds to send the headers")
    body_timeout: float = Field(DEFAULT_BODY_TIMEOUT_S, gt=0, description="seconds to send the body")
    keep_alive: float = Field(DEFAULT_KEEP_ALIVE_S, gt=0, description="seconds an idle connection stays open")
    max_header_bytes: int = Field(DEFAULT_MAX_HEADER_BYTES, ge=1024, description="larger headers get 431")
    akto_profile: str = Field(DEFAULT_PROFILE, description=f"Akto contract version namespaces start from: {', '.join(PROFILES)}")
    log_level: str = "warning"

    def admin_secret(self) -> str | None:
        """The value the admin API requires (the admin token, else the contract token), or None: open."""
        chosen = self.admin_token or self.token
        return chosen.get_secret_value() if chosen is not None else None

    @field_validator("akto_profile")
    @classmethod
    def _known_profile(cls, name: str) -> str:
        get_profile(name)  # UnknownProfile (a ValueError) names the known ones
        return name
