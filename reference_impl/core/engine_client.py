"""The one HTTP client every reference connector uses to talk to the Akto engine.

Why it exists: the three connectors must agree on what a failure is. Here the whole call (connect, send,
headers, a trickling body) runs under one total deadline, and every exception is mapped by type to an
:class:`EngineFailure` kind: no bare ``except Exception``, no timeout class that slips past the fail mode.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any, Callable, Mapping, Union

import httpx

from akto_wire import (
    AKTO_CONNECTOR,
    FLAG_ON,
    GUARDRAILS,
    HTTP_PROXY_PATH,
    IDLE_KEEPALIVE_S,
    INGEST_DATA,
    RESPONSE_GUARDRAILS,
    Direction,
    Envelope,
    Verdict,
    validate_path,
)

from .direct_transport import DirectTransport, RawAnswer, TLSVerificationError
from .background import BackgroundTasks
from .breaker import CircuitBreaker
from .deadlines import Deadlines
from .budget import DECISION_MARGIN_S, RequestBudget
from .failure_log import FailureLog
from .failmode import EngineFailure, FailureKind
from .settings import EngineSettings
from .verdict import parse_json_body, verdict_from_http_proxy, verdict_from_result

log = logging.getLogger("akto.connector")

#: An envelope, or what builds one: built only when the call really goes out (not when the request's
#: budget is spent or the breaker decides at once), so a decision under a stall costs next to nothing.
EnvelopeSource = Union[Envelope, Callable[[], Envelope]]


class EngineClient:
    """Async client for ``/api/http-proxy`` and ``/api/validate/*`` with a total deadline per call."""

    def __init__(self, settings: EngineSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        #: The connector's failure lines, folded per kind (an outage must not fill the disk).
        self.failure_log = FailureLog(log, interval_s=settings.failure_log_interval_s)
        self.background = BackgroundTasks(settings.max_background_tasks, self.failure_log)
        #: Shared by every flow of this connector instance: decides at once while the engine is stalled.
        self.breaker = CircuitBreaker(failures=settings.breaker_failures, window_s=settings.guardrail_timeout,
                                      backoff_s=settings.breaker_backoff_s, on_open=self._cut_waiting_calls)
        #: The deadlines of the calls now waiting on the engine (one timer for all): the breaker's opening
        #: ends them all at once.
        self._deadlines = Deadlines()
        # httpx's own timeout is a backstop per phase; the real bound is the asyncio deadline in _post.
        self._http = httpx.AsyncClient(
            base_url=settings.akto_base_url,
            timeout=httpx.Timeout(settings.guardrail_timeout),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_keepalive_connections,
                keepalive_expiry=IDLE_KEEPALIVE_S,  # httpx's default (5 s) equals uvicorn's keep-alive
            ),
            headers={"content-type": "application/json", **settings.auth_headers},
            verify=settings.verify,
            transport=transport,
            trust_env=False,
        )
        #: Our own transports (aiohttp, lean HTTP/1.1) are called directly: httpx's client layers (auth,
        #: redirects, cookies, event hooks) cost CPU per call in the host's one event loop and do nothing for a
        #: fixed engine URL. Any other transport (httpx's own) goes through the client. All raise httpx's
        #: exception types.
        self._direct = transport if isinstance(transport, DirectTransport) else None
        #: The direct path's headers: the client's, but asking for an identity answer, since our transports hand
        #: the bytes over undecoded (a verdict is a few hundred bytes: compressing it saves nothing).
        self._headers = [(name, value) for name, value in self._http.headers.multi_items()
                         if name.lower() not in ("host", "accept-encoding")] + [("accept-encoding", "identity")]
        #: Full URLs by (path, query): httpx parses and merges a relative path and its params on every call
        #: (~0.3 ms of CPU); the few routes and flag sets a connector uses are built once.
        self._urls: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        #: :meth:`check`'s URL by (direction, ingest): its two or three flag sets, without a dict per call.
        self._check_urls: dict[tuple[str, bool], str] = {}

    async def aclose(self) -> None:
        await self.background.drain(timeout=self.settings.guardrail_timeout)
        await self._http.aclose()

    def query(self, **flags: bool) -> dict[str, str]:
        """Query flags as the wire wants them (``true`` only), plus ``akto_connector`` when configured."""
        params = {name: FLAG_ON for name, on in flags.items() if on}
        if self.settings.connector:
            params[AKTO_CONNECTOR] = self.settings.connector
        return params

    def budget(self, arrived_at: float | None = None) -> RequestBudget:
        """A fresh engine-time budget for one request (its phases share it), started when the host had the
        whole request (``arrived_at``, a ``time.time()`` stamp) when the host tells."""
        return RequestBudget.since(self.settings.guardrail_timeout, arrived_at)

    def _cut_waiting_calls(self) -> None:
        """The breaker opened: every call still waiting on the stalled engine is decided now (its deadline
        expires now, so it fails as a timeout through the one path every timeout takes)."""
        self._deadlines.cut_all()

    async def check(self, envelope: EnvelopeSource, *, direction: Direction = "request", ingest: bool = False,
                    budget: RequestBudget | None = None) -> Verdict:
        """Ask ``/api/http-proxy`` for a verdict on one direction (optionally recording it too).

        With a ``budget``, the call waits at most what is left of it, and fails at once when the request's
        budget is spent or an earlier call of the request failed."""
        url = self._check_urls.get((direction, ingest))
        if url is None:
            flags = {GUARDRAILS: direction == "request", RESPONSE_GUARDRAILS: direction == "response", INGEST_DATA: ingest}
            url = self._check_urls[(direction, ingest)] = self._url(HTTP_PROXY_PATH, self.query(**flags))
        body = await self._post(url, envelope, budget)
        return verdict_from_http_proxy(body, direction)

    async def validate(self, envelope: Envelope, *, direction: Direction = "request") -> Verdict:
        """Ask the guardrails-service routes (``/api/validate/*``), which answer the bare verdict."""
        return verdict_from_result(await self._post(self._url(validate_path(direction), {}), envelope), "request")

    async def ingest(self, envelope: Envelope, **flags: bool) -> None:
        """Record traffic (``ingest_data=true`` plus any extra flags); the answer is only checked for errors."""
        await self._post(self._url(HTTP_PROXY_PATH, self.query(**{INGEST_DATA: True, **flags})), envelope)

    def ingest_in_background(self, envelope: Envelope, what: str = "ingest", **flags: bool) -> bool:
        """Fire-and-forget :meth:`ingest`, bounded by ``max_background_tasks``."""
        return self.background.spawn(self._ingest_logged(envelope, flags), what)

    async def _ingest_logged(self, envelope: Envelope, flags: Mapping[str, bool]) -> None:
        try:
            await self.ingest(envelope, **flags)
        except EngineFailure as failure:
            self.failure_log.warning(f"ingest {failure.kind.value}", "akto: ingest failed (%s): %s", failure.kind.value, failure)

    def _url(self, path: str, params: Mapping[str, str]) -> str:
        key = (path, tuple(params.items()))
        url = self._urls.get(key)
        if url is None:
            url = self._urls[key] = str(self._http.base_url.join(path.lstrip("/")).copy_merge_params(dict(params)))
        return url

    def _log_late_decision(self, budget: RequestBudget) -> None:
        """The deadline was due in time, but the host's busy event loop ran its expiry (or read the answer) late."""
        self.failure_log.warning(
            "late decision", "akto: a request was decided %.0f ms past its %gs engine deadline (more than the "
            "%.0f ms allowed): the host's event loop was too busy to run the decision when it was due",
            budget.late_by_s * 1000, self.settings.guardrail_timeout, DECISION_MARGIN_S * 1000)

    async def _post(self, url: str, envelope: EnvelopeSource, budget: RequestBudget | None = None) -> Any:
        try:
            return await self._post_once(url, envelope, budget)
        except EngineFailure:
            if budget is not None:
                budget.failed = True
            raise

    async def _post_once(self, url: str, envelope: EnvelopeSource, budget: RequestBudget | None) -> Any:
        timeout = self.settings.guardrail_timeout
        if budget is not None:
            if budget.spent:
                raise EngineFailure(FailureKind.TIMEOUT, "an earlier engine call of this request failed or used its deadline")
            timeout = min(timeout, budget.left_s)
        if not self.breaker.allow():
            raise EngineFailure(FailureKind.TIMEOUT, f"engine known stalled (circuit open, next probe in {self.breaker.retry_in():.1f}s)")
        if callable(envelope):
            envelope = envelope()
        content = envelope.model_dump_json().encode()
        started = time.monotonic()
        deadline = self._deadlines.enter(timeout)
        try:
            with deadline:
                if self._direct is not None:
                    answer = await self._direct.post(url, content, self._headers)
                else:
                    response = await self._http.post(url, content=content)
                    answer = RawAnswer(response.status_code, response.headers.raw, response.content)
        except (TimeoutError, httpx.TimeoutException):
            if deadline.cut:
                raise EngineFailure(FailureKind.TIMEOUT, "engine known stalled (the circuit opened while this call "
                                    f"waited {time.monotonic() - started:.2f}s)") from None
            self.breaker.on_timeout()
            raise EngineFailure(FailureKind.TIMEOUT, f"engine gave no answer within {timeout:g}s") from None
        except httpx.TransportError as exc:
            self.breaker.on_other_failure()
            if _tls_verification_failed(exc):
                raise EngineFailure(FailureKind.TLS, f"engine TLS certificate not verified: {exc}") from None
            raise EngineFailure(FailureKind.UNREACHABLE, f"engine unreachable: {type(exc).__name__}: {exc}") from None
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
        finally:
            if budget is not None:
                # Up to when the connector stopped waiting: the expiry or the breaker's cut, else now.
                ended = deadline.expired_at if deadline.expired_at is not None else time.monotonic()
                budget.charge(ended - started)
                if budget.late_by_s > DECISION_MARGIN_S:
                    self._log_late_decision(budget)
        self.breaker.on_answer()
        if answer.status in (401, 403):
            raise EngineFailure(FailureKind.AUTH, f"engine refused credentials ({answer.status})", status=answer.status)
        if not 200 <= answer.status < 300:
            raise EngineFailure(FailureKind.SERVER_ERROR, f"engine answered HTTP {answer.status}", status=answer.status)
        return parse_json_body(answer.content, answer.content_type)


def _tls_verification_failed(exc: BaseException) -> bool:
    """httpx wraps ``ssl.SSLCertVerificationError`` in a ConnectError; our aiohttp transport says so by type."""
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain: ConnectError <- httpcore error <- ssl error
        if seen is None:
            return False
        if isinstance(seen, (TLSVerificationError, ssl.SSLCertVerificationError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
