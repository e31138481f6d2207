"""Which client headers may travel to the engine. Credentials never do."""

from __future__ import annotations

from typing import Iterable, Mapping

#: Credential headers removed before anything is sent to the engine (LiteLLM v4's set plus a few more).
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "ocp-apim-subscription-key",
        "x-litellm-api-key",
        "x-mcp-auth",
        "cookie",
        "set-cookie",
        "x-amz-security-token",
        "anthropic-api-key",
        "openai-api-key",
    }
)
#: Hop-by-hop and framing headers that say nothing about the traffic.
FRAMING_HEADERS = frozenset({"content-length", "connection", "transfer-encoding", "keep-alive", "te", "upgrade"})


def safe_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased headers without credentials or framing, ready for ``requestHeaders``."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {
        name.lower(): value
        for name, value in items
        if name.lower() not in CREDENTIAL_HEADERS and name.lower() not in FRAMING_HEADERS
    }
