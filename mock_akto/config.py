"""How to run one engine: :class:`EngineConfig`, read by the app, the server and the CLI.

In its own module so that the engine (``app``), the server that runs it and the admin API depend on the
config without depending on each other (no import circle), and so ``import mock_akto`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .journal import DEFAULT_MAX_ENTRIES, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_PAYLOAD_CAP
from .profiles import DEFAULT_PROFILE, PROFILES, get_profile

#: Request bodies above this size get 413 (the rest is drained unread).
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
#: Most namespaces one engine keeps. Each has its own journal and ingest rings (bounded on their own), so
#: this bounds how many of those a caller inventing a namespace per call, or a suite that never removes
#: its namespaces, can make the engine hold.
DEFAULT_MAX_NAMESPACES = 1000


class EngineConfig(BaseModel):
    """How to run one engine. ``token`` is a secret: it never shows in reprs, logs or the journal."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="bind address (loopback by default)")
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port (printed in the ready line)")
    token: SecretStr | None = Field(None, description="when set, /api/* needs this Authorization (raw or Bearer)")
    policies_file: Path | None = Field(None, description="YAML policies every namespace starts from")
    journal_size: int = Field(DEFAULT_MAX_ENTRIES, ge=1, description="journal entries kept per namespace")
    ingest_size: int = Field(DEFAULT_MAX_ENTRIES, ge=1, description="ingest records kept per namespace")
    journal_payload_cap: int = Field(DEFAULT_PAYLOAD_CAP, ge=0, description="characters kept of each payload")
    journal_max_bytes: int = Field(DEFAULT_MAX_PAYLOAD_BYTES, ge=1, description="payload characters per ring")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1, description="larger request bodies get 413")
    max_namespaces: int = Field(DEFAULT_MAX_NAMESPACES, ge=1, description="namespaces one engine keeps at most")
    akto_profile: str = Field(DEFAULT_PROFILE, description=f"Akto contract version namespaces start from: {', '.join(PROFILES)}")
    log_level: str = "warning"

    @field_validator("akto_profile")
    @classmethod
    def _known_profile(cls, name: str) -> str:
        get_profile(name)  # UnknownProfile (a ValueError) names the known ones
        return name
