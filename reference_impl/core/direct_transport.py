"""What a transport the engine client calls directly offers: ``post(url, body, headers) -> RawAnswer``.

Why: building an httpx ``Request`` / ``Response`` around every engine call costs CPU in the host's one event
loop, so :class:`~reference_impl.core.EngineClient` posts bytes straight through a :class:`DirectTransport`
and reads a :class:`RawAnswer`. Each transport raises httpx's exception types (and
:class:`TLSVerificationError` for a certificate that did not verify), which the engine client maps to
:class:`~reference_impl.core.EngineFailure` kinds in one place. Each is still an httpx transport too
(``handle_async_request``), so an ``httpx.AsyncClient`` can be built over it.
"""

from __future__ import annotations

import ssl
from abc import abstractmethod
from typing import NamedTuple, Sequence

import httpx


class RawAnswer(NamedTuple):
    """An engine answer as read off the wire: status, raw header pairs, body."""

    status: int
    headers: Sequence[tuple[bytes, bytes]]
    content: bytes

    @property
    def content_type(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == b"content-type":
                return value.decode("latin-1")
        return None


class TLSVerificationError(httpx.ConnectError):
    """The engine's certificate did not verify (kept apart from other connect errors: never failed open)."""


class DirectTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose ``post`` the engine client calls without httpx's objects around it."""

    @abstractmethod
    async def post(self, url: str, body: bytes, headers: Sequence[tuple[str, str]], *,
                   request: httpx.Request | None = None) -> RawAnswer:
        """POST ``body`` and read the whole answer; failures raised as httpx's exception types."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """httpx's transport interface (for an ``httpx.AsyncClient`` built over this transport)."""
        body = await request.aread()
        headers = [(name, value) for name, value in request.headers.multi_items() if name.lower() != "host"]
        answer = await self.post(str(request.url), body, headers, request=request)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.content, request=request)


def ssl_context(verify: bool | str) -> ssl.SSLContext:
    """The client TLS context for a ``verify`` setting: the system CAs, a CA file, or (False) no checks."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
