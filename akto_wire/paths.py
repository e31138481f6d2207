"""The Akto routes a connector calls, and the direction a verdict is for.

Everything goes to the data-ingestion-service's ``/api/http-proxy``; the guardrails-service routes
(``/api/validate/*``) sit behind it and are reached directly only by clients that skip the gateway.
"""

from __future__ import annotations

from typing import Literal

HTTP_PROXY_PATH = "/api/http-proxy"
VALIDATE_REQUEST_PATH = "/api/validate/request"
VALIDATE_RESPONSE_PATH = "/api/validate/response"
#: The TrueFoundry guardrail route (TrueFoundry's own body shape, answered with ``{}`` and a status code).
TRUEFOUNDRY_PATH = "/api/http-proxy/truefoundry"

#: Which side of an LLM exchange a verdict is for.
Direction = Literal["request", "response"]


def validate_path(direction: Direction) -> str:
    """The guardrails-service route that judges one direction."""
    return VALIDATE_REQUEST_PATH if direction == "request" else VALIDATE_RESPONSE_PATH
