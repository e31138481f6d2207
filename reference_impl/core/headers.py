"""Which traffic headers may travel to the engine: an allowlist, for every connector.

Why an allowlist and not a denylist: credentials hide under names nobody lists in advance
(``x-auth-token``, ``x-access-token``, ``x-session-token``, ``x-csrf-token``, a vendor's own header), and a
denylist leaks each new one (issue 11.6). The engine needs only what describes the traffic: its type and
encoding, the collection (``host``), the caller's address and the ids that tie a session or a request
together. Every other header, known or unknown, stays with the host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping  # not typing's aliases: their isinstance is ~10x slower

#: Headers the Akto contract uses (docs/connectors.md, "Headers"; akto_wire/README.md: requestHeaders).
FORWARDED_HEADERS = frozenset(
    {
        "host",  # names the Akto API collection
        "content-type",
        "content-encoding",
        "accept",
        "user-agent",
        "x-forwarded-for",  # the caller's address (the envelope's ``ip``)
        "x-real-ip",
        "x-request-id",
        "x-akto-installer-akto_session_id",  # Akto's session id header (LiteLLM v4)
        "mcp-session-id",
        "anthropic-version",
        "openai-beta",
    }
)

#: Credential headers: never forwarded (the allowlist already drops them; fakes and tests use this set to
#: mask or to check what must never appear).
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
        "x-auth-token",
        "x-access-token",
        "x-session-token",
        "x-csrf-token",
    }
)
assert not FORWARDED_HEADERS & CREDENTIAL_HEADERS


def safe_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased headers on the allowlist only, ready for ``requestHeaders`` / ``responseHeaders``."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    kept: dict[str, str] = {}
    for name, value in items:
        lowered = name.lower()
        if lowered in FORWARDED_HEADERS:
            kept[lowered] = value
    return kept
