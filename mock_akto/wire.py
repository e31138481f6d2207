"""The Akto guardrail wire contract, as typed models: one source of truth.

The fake engine serves these shapes, the admin API and YAML presets accept them, and the reference
connectors build and read them. Field names are the ones on the wire (Go-style capitalised verdict keys,
lower-case ``behaviour``), see ../shared/contracts/akto-wire-contracts.md sections 0, 1 and 6.
"""

from __future__ import annotations

import json
import time
from enum import Enum
from typing import Any, Literal, Mapping

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

HTTP_PROXY_PATH = "/api/http-proxy"
VALIDATE_REQUEST_PATH = "/api/validate/request"
VALIDATE_RESPONSE_PATH = "/api/validate/response"
TRUEFOUNDRY_PATH = "/api/http-proxy/truefoundry"

SUCCESS_MESSAGE = "Request processed successfully"
MISSING_PAYLOAD_MESSAGE = "Missing required field: requestPayload"

#: Query/body flags the ingestion service binds. Only the case-insensitive string ``true`` turns one on.
FLAG_NAMES = ("guardrails", "response_guardrails", "ingest_data")


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
    """The merged ``guardrailsResult`` when both request and response guardrails ran (contract section 1.3)."""
    merged = request.to_wire()
    merged["Allowed"] = request.allowed and response.allowed
    merged["requestResult"] = request.to_wire()
    merged["responseResult"] = response.to_wire()
    return merged


def success_body(guardrails_result: Mapping[str, Any] | None) -> dict[str, Any]:
    """The 200 body of ``/api/http-proxy``; ``guardrailsResult`` only when a guardrails flag was on."""
    data: dict[str, Any] = {"success": True, "message": SUCCESS_MESSAGE}
    if guardrails_result is not None:
        data["guardrailsResult"] = dict(guardrails_result)
    return {"success": True, "message": SUCCESS_MESSAGE, "data": data}


def failure_body(message: str, error: str) -> dict[str, Any]:
    """The 422 body of ``/api/http-proxy`` (``success: false``)."""
    return {"success": False, "message": message, "data": {"success": False, "message": message, "error": error}}


def fail_open_verdict(error: str, *, legacy: bool = False) -> dict[str, Any]:
    """The synthetic verdict Akto's gateway answers when guardrails-service is down (section 1.4).

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


def flag_on(value: Any) -> bool:
    """Akto's flag rule: only the string ``true`` (any case, nothing around it: `` true`` is off, as for
    Java's ``Boolean.parseBoolean``) turns a flag on; JSON ``true`` counts too."""
    if value is True:
        return True
    return isinstance(value, str) and value.lower() == "true"


class Flags(BaseModel):
    """Which work an ``/api/http-proxy`` call asks for. Query parameters win over body fields."""

    guardrails: bool = False
    response_guardrails: bool = False
    ingest_data: bool = False
    akto_connector: str = ""

    @classmethod
    def resolve(cls, query: Mapping[str, str], body: Mapping[str, Any]) -> "Flags":
        def pick(name: str) -> Any:
            return query[name] if name in query else body.get(name)

        connector = pick("akto_connector")
        return cls(
            guardrails=flag_on(pick("guardrails")),
            response_guardrails=flag_on(pick("response_guardrails")),
            ingest_data=flag_on(pick("ingest_data")),
            akto_connector=connector if isinstance(connector, str) else "",
        )

    @property
    def any_guardrails(self) -> bool:
        return self.guardrails or self.response_guardrails


class Envelope(BaseModel):
    """The flat "MIRRORING" envelope every connector sends. Every value is a string or null on the wire;
    headers, tag and metadata are JSON objects encoded as strings.

    The engine validates incoming bodies leniently (unknown fields ignored, missing ones defaulted) and the
    connectors build theirs with :meth:`build`.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    path: str = "/v1/chat/completions"
    requestHeaders: str = "{}"
    responseHeaders: str = "{}"
    method: str = "POST"
    requestPayload: str = ""
    responsePayload: str | None = ""
    ip: str = ""
    destIp: str = "127.0.0.1"
    time: str = ""
    statusCode: str = "200"
    type: str | None = "HTTP/1.1"
    status: str = "200"
    akto_account_id: str = "1000000"
    akto_vxlan_id: str = "0"
    is_pending: str = "false"
    source: str = "MIRRORING"
    direction: str | None = None
    process_id: str | None = None
    socket_id: str | None = None
    daemonset_id: str | None = None
    enabled_graph: str | None = None
    tag: str = '{"gen-ai": "Gen AI"}'
    metadata: str = '{"gen-ai": "Gen AI"}'
    contextSource: str = "AGENTIC"

    @classmethod
    def build(
        cls,
        *,
        request_payload: str,
        response_payload: str | None = "",
        request_headers: Mapping[str, str] | None = None,
        response_headers: Mapping[str, str] | None = None,
        status_code: int | str = 200,
        tag: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> "Envelope":
        """Build an envelope from Python values, encoding the JSON-in-a-string fields the wire wants."""
        tag_json = json.dumps(dict(tag) if tag is not None else {"gen-ai": "Gen AI"})
        status = str(status_code)
        fields.setdefault("time", str(int(time.time() * 1000)))
        return cls(
            requestPayload=request_payload,
            responsePayload=response_payload,
            requestHeaders=json.dumps(dict(request_headers or {})),
            responseHeaders=json.dumps(dict(response_headers or {})),
            statusCode=status,
            status=fields.pop("status", status),
            tag=tag_json,
            metadata=fields.pop("metadata", tag_json),
            **fields,
        )

    def header(self, name: str) -> str | None:
        """A request header from the JSON-encoded ``requestHeaders`` (``host`` names the Akto app)."""
        try:
            headers = json.loads(self.requestHeaders or "{}")
        except ValueError:
            return None
        if not isinstance(headers, dict):
            return None
        value = headers.get(name.lower())
        return value if isinstance(value, str) else None


Direction = Literal["request", "response"]
