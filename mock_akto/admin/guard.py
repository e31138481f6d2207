"""The admin API's front door: who may call it, and what a call may carry.

Why (issue 11): the admin API switches the guardrails off (``POST /__admin/policies/presets/allow-all``), so
it must not be reachable by whoever can reach the port, nor by any web page the developer visits. A browser
lets a page send a "simple request" (form or text content type, no preflight) to ``127.0.0.1``; such a call
always carries a foreign ``Origin`` or a non-JSON content type, so state-changing calls refuse both, token
or not. With a token configured every admin call needs it (except the readiness probe and the spec).

Bodies are read here, bounded (413), and parsed strictly (orjson: no ``NaN``, ``Infinity``, ``1e400`` or
lone surrogates, which the stdlib parser FastAPI uses lets through to a 500), then handed on unchanged.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson

from ..types import ASGIApp, Message, Receive, Scope, Send

#: Calls that change nothing: no origin or content-type check.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Admin paths any caller may GET even with a token configured: the readiness probe, the API's spec and the
#: pages for people (their files hold no engine state; the data they show comes from calls needing the token).
PUBLIC_PATHS = frozenset({"/__admin/health", "/__admin/openapi.json", "/__admin/docs", "/__admin/ui"})
#: Static files of those pages, by folder.
PUBLIC_PREFIXES = ("/__admin/ui/assets/", "/__admin/docs/assets/")
#: Longest part of a refused body quoted back in an error message.
QUOTE_LIMIT = 120


class AdminGuard:
    """ASGI middleware in front of the admin app: auth, origin and content type, bounded strict JSON."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self._token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        method: str = scope["method"]
        changes_state = method not in SAFE_METHODS
        if changes_state:
            refusal = self._foreign_call(headers)
            if refusal is not None:
                await _refuse(send, *refusal)
                return
        if self._token is not None and not (not changes_state and _is_public(scope["path"])):
            if not self._authorized(headers.get(b"authorization")):
                await _refuse(send, 401, "the admin API needs the admin token: Authorization: Bearer <token>",
                              [(b"www-authenticate", b'Bearer realm="mock-akto admin"')])
                return
        if not changes_state:
            await self.app(scope, receive, send)
            return
        body = await self._read_body(receive, headers)
        if isinstance(body, tuple):
            await _refuse(send, *body)
            return
        if body:
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                await _refuse(send, 400, f"body is not strict JSON (no NaN, Infinity, out-of-range numbers or "
                                         f"lone surrogates): {_quote(str(exc))}")
                return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    def _foreign_call(headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        """Why a state-changing call looks like a browser's cross-site request (403) or a form (415)."""
        origin = headers.get(b"origin")
        if origin is not None and not _same_origin(origin, headers.get(b"host")):
            return 403, f"cross-origin admin calls are refused (Origin {_quote(origin.decode('latin-1'))})"
        if headers.get(b"sec-fetch-site", b"") == b"cross-site":
            return 403, "cross-site admin calls are refused (Sec-Fetch-Site: cross-site)"
        content_type = headers.get(b"content-type")
        if content_type is not None and not _is_json(content_type):
            return 415, (f"admin calls take application/json bodies, not "
                         f"{_quote(content_type.decode('latin-1'))}")
        return None

    def _authorized(self, value: bytes | None) -> bool:
        if value is None or self._token is None:
            return False
        if value[:7].lower() == b"bearer ":
            value = value[7:].strip()
        return hmac.compare_digest(value, self._token)

    async def _read_body(self, receive: Receive, headers: dict[bytes, bytes]) -> bytes | tuple[int, str]:
        """The whole body, or (413, why) as soon as it passes the limit; (415, why) for a body with no type."""
        limit = self.max_body_bytes
        too_large = (413, f"admin request body larger than the limit of {limit} bytes")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return too_large
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if body and b"content-type" not in headers:
            return 415, "admin calls with a body must say Content-Type: application/json"
        return body


def _is_public(path: str) -> bool:
    """A public page, or one file name directly under a public asset folder (the handlers serve only files
    they list; this keeps the rule as narrow as the routes)."""
    folder, _, name = path.rpartition("/")
    return path in PUBLIC_PATHS or (folder + "/" in PUBLIC_PREFIXES and name not in ("", ".", ".."))


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name: value for name, value in scope["headers"]}


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def _same_origin(origin: bytes, host: bytes | None) -> bool:
    """Whether ``Origin`` names the engine itself (a page the engine serves calling its own API)."""
    if host is None:
        return False
    scheme, _, authority = origin.partition(b"://")
    return scheme in (b"http", b"https") and authority.lower() == host.lower()


def _quote(text: str) -> str:
    return repr(text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "...")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body on once, then the connection's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = orjson.dumps({"detail": detail})
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})
