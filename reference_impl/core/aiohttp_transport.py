"""An httpx transport over aiohttp, under the shared :class:`~reference_impl.core.EngineClient`.

Why: httpx's own connection layer (httpcore + anyio) costs about 1 ms of CPU per loopback call here,
aiohttp about 0.2 ms, and a connector's host serves every request on one event loop, so client CPU is
latency for everyone (bench/litellm_overhead.py, bench/truefoundry_overhead.py). The client, its total
deadline and its failure classification stay exactly as in core: this transport only moves bytes, and
turns aiohttp's exceptions into the httpx ones core already maps by type (tests/core/
test_http1_transport.py runs every engine fault through every transport and expects the same failure kind).

A library (``httpx-aiohttp``) does the same job; we keep this one because each aiohttp error class below
is mapped and tested against real socket faults, which that library's mapping does not cover fully.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Sequence

import aiohttp
import httpx

from akto_wire import IDLE_KEEPALIVE_S

from .direct_transport import DirectTransport, RawAnswer, TLSVerificationError
from .settings import EngineSettings

__all__ = ["AiohttpTransport", "RawAnswer", "TLSVerificationError"]


class AiohttpTransport(DirectTransport):
    """One aiohttp session (created on first use, inside the running loop) with bounded connections."""

    def __init__(self, *, max_connections: int = 100, verify: bool | str = True, timeout_s: float | None = None,
                 keepalive_s: float = IDLE_KEEPALIVE_S) -> None:
        self.max_connections = max_connections
        #: Idle connections older than this are closed, not reused (see IDLE_KEEPALIVE_S).
        self.keepalive_s = keepalive_s
        self.verify = verify
        #: aiohttp's own total timeout, a backstop behind core's deadline around the whole call.
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def for_settings(cls, settings: "EngineSettings") -> "AiohttpTransport":
        """The transport a connector's engine client uses: its pool bound, its TLS setting, and aiohttp's own
        timeout one second behind core's deadline (a backstop, never the bound that fires)."""
        return cls(max_connections=settings.max_connections, verify=settings.verify,
                   timeout_s=settings.guardrail_timeout + 1)

    def _ssl(self) -> ssl.SSLContext | bool:
        if isinstance(self.verify, str):
            return ssl.create_default_context(cafile=self.verify)
        return True if self.verify else False

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # keepalive_timeout: aiohttp's default (15 s) outlives the engine's own idle timeout (5 s).
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=self.max_connections,
                                             ssl=self._ssl(), keepalive_timeout=self.keepalive_s)
            # auto_decompress off: the bytes go back to httpx as they came, and httpx decodes them.
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, trust_env=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: Sequence[tuple[str, str]], *,
                   request: httpx.Request | None = None) -> RawAnswer:
        """POST ``body`` and read the whole answer; aiohttp's errors raised as the httpx ones core maps.

        The engine client calls this directly: building an httpx Request and Response around every engine
        call cost about a tenth of the egress addon's CPU per flow (bench/egress_concurrency.py)."""
        session = self._session_now()
        try:
            async with session.request("POST", url, data=body, headers=headers, allow_redirects=False) as answer:
                content = await answer.read()
                return RawAnswer(answer.status, answer.raw_headers, content)
        except aiohttp.ClientConnectorCertificateError as exc:
            raise TLSVerificationError(f"engine certificate not verified: {exc.certificate_error}", request=request) from None
        except asyncio.TimeoutError:  # aiohttp's backstop timeout (core's own deadline raises past this)
            raise httpx.ReadTimeout("engine call timed out", request=request) from None
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(f"server disconnected: {exc}", request=request) from None
        except aiohttp.ClientPayloadError as exc:
            raise httpx.ReadError(f"incomplete body: {exc}", request=request) from None
        except aiohttp.ClientResponseError as exc:  # an unparseable status line or headers (garbage)
            raise httpx.RemoteProtocolError(f"invalid HTTP answer: {exc.message}", request=request) from None
        except aiohttp.ClientOSError as exc:  # reset while sending or reading
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from None
        except aiohttp.ClientError as exc:
            raise httpx.TransportError(f"{type(exc).__name__}: {exc}", request=request) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
