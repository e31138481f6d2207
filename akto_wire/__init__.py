"""The Akto guardrail wire contract as typed pydantic models: one source of truth.

The fake engine (``mock_akto``) serves these shapes and the reference connectors (``reference_impl``)
build and read them; neither imports the other. This package imports nothing else of ours. The field
by field notes (who reads what, what changed when) are in README.md next to this file.
"""

from .connections import IDLE_KEEPALIVE_S
from .envelope import DEFAULT_TAG, Envelope
from .flags import (
    AKTO_CONNECTOR,
    FLAG_NAMES,
    FLAG_ON,
    GUARDRAILS,
    INGEST_DATA,
    RESPONSE_GUARDRAILS,
    FlagName,
    Flags,
    flag_on,
)
from .paths import (
    HTTP_PROXY_PATH,
    TRUEFOUNDRY_PATH,
    VALIDATE_REQUEST_PATH,
    VALIDATE_RESPONSE_PATH,
    Direction,
    validate_path,
)
from .responses import (
    INVALID_REQUEST_FORMAT,
    MISSING_PAYLOAD_MESSAGE,
    SUCCESS_MESSAGE,
    VALIDATION_FAILED,
    failure_body,
    success_body,
    validate_error_body,
)
from .verdict import Behaviour, ThreatMetadata, Verdict, fail_open_verdict, merge_verdicts

__all__ = [
    # connections
    "IDLE_KEEPALIVE_S",
    # envelope
    "DEFAULT_TAG",
    "Envelope",
    # flags
    "AKTO_CONNECTOR",
    "FLAG_NAMES",
    "FLAG_ON",
    "GUARDRAILS",
    "INGEST_DATA",
    "RESPONSE_GUARDRAILS",
    "FlagName",
    "Flags",
    "flag_on",
    # paths
    "HTTP_PROXY_PATH",
    "TRUEFOUNDRY_PATH",
    "VALIDATE_REQUEST_PATH",
    "VALIDATE_RESPONSE_PATH",
    "Direction",
    "validate_path",
    # responses
    "INVALID_REQUEST_FORMAT",
    "MISSING_PAYLOAD_MESSAGE",
    "SUCCESS_MESSAGE",
    "VALIDATION_FAILED",
    "failure_body",
    "success_body",
    "validate_error_body",
    # verdict
    "Behaviour",
    "ThreatMetadata",
    "Verdict",
    "fail_open_verdict",
    "merge_verdicts",
]
