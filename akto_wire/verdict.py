"""A guardrail verdict (the guardrails-service ``ValidationResult``) and the merged two-sided shape.

Field names are the ones on the wire: Go-style capitalised keys plus lower-case ``behaviour``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class Behaviour(str, Enum):
    """What an Akto policy asks the connector to do when it matches. There is no "modify" behaviour."""

    BLOCK = "block"
    ALERT = "alert"
    WARN = "warn"
    APPROVAL = "approval"
    NONE = ""


class ThreatMetadata(BaseModel):
    """``Metadata`` of a verdict: which policy and rule matched."""

    model_config = ConfigDict(extra="allow")

    policy_name: str = ""
    rule_violated: str = ""
    severity: str = ""
    reason: str = ""


class Verdict(BaseModel):
    """One guardrail verdict (the guardrails-service ``ValidationResult``).

    Reads both Go-style (``Allowed``) and lower-case (``allowed``) keys, because real clients and Akto's
    own fail-open map use both; always writes the Go-style keys plus lower-case ``behaviour``.
    """

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    allowed: bool = Field(True, serialization_alias="Allowed", validation_alias=AliasChoices("Allowed", "allowed"))
    reason: str = Field("", serialization_alias="Reason", validation_alias=AliasChoices("Reason", "reason"))
    modified: bool = Field(False, serialization_alias="Modified", validation_alias=AliasChoices("Modified", "modified"))
    modified_payload: str = Field(
        "",
        serialization_alias="ModifiedPayload",
        validation_alias=AliasChoices("ModifiedPayload", "modifiedPayload", "modified_payload"),
    )
    metadata: ThreatMetadata | None = Field(
        None, serialization_alias="Metadata", validation_alias=AliasChoices("Metadata", "metadata")
    )
    behaviour: Behaviour = Field(
        Behaviour.NONE, validation_alias=AliasChoices("behaviour", "Behaviour")
    )

    @property
    def blocks(self) -> bool:
        """True when a connector that honours ``behaviour`` must block (LiteLLM v4 / Akto hooks rule)."""
        return not self.allowed and self.behaviour in (Behaviour.BLOCK, Behaviour.NONE)

    def to_wire(self) -> dict[str, Any]:
        """The verdict as the engine puts it on the wire (``Metadata`` left out when there is none)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def allow(cls, payload: str = "") -> "Verdict":
        """An allow verdict; the real service echoes the evaluated text back in ``ModifiedPayload``."""
        return cls(allowed=True, modified_payload=payload)


def merge_verdicts(request: Verdict, response: Verdict) -> dict[str, Any]:
    """The merged ``guardrailsResult`` when both request and response guardrails ran: the request verdict
    flat, ``Allowed`` as the AND of both, and each side in full under ``requestResult`` / ``responseResult``."""
    merged = request.to_wire()
    merged["Allowed"] = request.allowed and response.allowed
    merged["requestResult"] = request.to_wire()
    merged["responseResult"] = response.to_wire()
    return merged


def fail_open_verdict(error: str, *, legacy: bool = False) -> dict[str, Any]:
    """The synthetic verdict Akto's gateway answers when guardrails-service is down, slow or unreadable.

    ``legacy`` gives the Jan-Jun 2026 lower-case-only shape, which blocks clients that read ``allowed``
    and lets through clients that read ``Allowed`` with a default of true.
    """
    if legacy:
        reason = f"Guardrails validation failed: {error}"
        return {"allowed": False, "modified": False, "reason": reason, "error": error}
    return {
        "Allowed": True, "allowed": True, "Modified": False, "modified": False, "ModifiedPayload": "",
        "Reason": "", "reason": "", "Behaviour": "", "behaviour": "", "failOpen": True, "error": error,
    }
