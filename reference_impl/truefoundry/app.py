"""Akto's TrueFoundry guardrail endpoint, ``POST /api/http-proxy/truefoundry``, as a small ASGI service.

TrueFoundry's AI gateway calls this URL as a custom guardrail (input hook: ``requestBody``; output hook:
``requestBody`` + ``responseBody``). It is a thin adapter over :mod:`reference_impl.core`: the engine
client (total deadline), verdict parsing, the fail-mode decision and bounded background work live there.

Behaviour (the four-way ``sync`` matrix Akto's docs promise, see docs/truefoundry.md):

============  ==================  =========================================================  ==============
``sync``      call                what happens                                               answer
============  ==================  =========================================================  ==============
true          request only        check the last user message now; blocked -> the blocked    200 ``{}`` or
                                  call is ingested in the background                         400 actionErrors
true          request + response  ingest in the background (no check)                        200 ``{}``
false         request only        nothing                                                    200 ``{}``
false         request + response  check both directions + ingest in the background;          200 ``{}``
                                  violations are only logged
============  ==================  =========================================================  ==============

``sync`` absent means ``default_sync`` (true: what Akto's current code always does). ``streaming=true``
(query or body) also ingests the previous user -> assistant turn found in the history. ``answer=verdict``
answers in TrueFoundry's current contract (200 ``{"verdict": false, "message": ...}`` on a block) instead
of Akto's 400, which TrueFoundry only enforces under the Enforce strategy.

Engine route: the check goes to ``/api/http-proxy?guardrails=true&akto_connector=truefoundry`` (not
``/api/validate/request``), because that is the same gateway path Akto's own TrueFoundry handler runs
in-process, it is the route a real Akto deployment exposes, and it lets check and ingestion share one
base URL (and the fake engine's journal record the connector).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence
from urllib.parse import parse_qs

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from akto_wire import TRUEFOUNDRY_PATH, Envelope

from ..core import ConfigError, EngineClient, EngineFailure, EngineSettings, FailMode, on_failure
from ..core.aiohttp_transport import AiohttpTransport
from ..core.types import Receive, Scope, Send
from .auth import TokenVerifier, Unauthorized
from .records import (
    TRUEFOUNDRY_CONNECTOR,
    BadCall,
    TrueFoundryCall,
    parse_call,
    parse_flag,
    previous_turn,
    to_envelope,
)

log = logging.getLogger("akto.truefoundry")

#: Akto's own client to its guardrails engine waits 3 s (``GUARDRAILS_CLIENT_TIMEOUT_MS``): well inside
#: TrueFoundry's 10 s default, so a slow engine fails open here before the gateway gives up.
DEFAULT_TIMEOUT_S = 3.0
DEFAULT_BLOCK_REASON = "Request blocked by guardrails"
BlockAnswer = Literal["akto", "verdict"]
HEALTH_PATH = "/health"


class TrueFoundrySettings(BaseModel):
    """Everything the endpoint is configured with. Secrets are :class:`SecretStr` and never printed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: EngineSettings
    #: What ``sync`` means when the URL has none: true = check input hooks now (Akto's current code).
    default_sync: bool = True
    jwt_hs256_secret: SecretStr | None = None
    jwt_rs256_public_key: str | None = None
    revoked_tokens: frozenset[str] = Field(frozenset(), repr=False)
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    #: ``akto``: a block is HTTP 400 ``{"actionErrors": [reason]}`` (what Akto does: TrueFoundry counts it
    #: as a guardrail *error*, which blocks only under Enforce). ``verdict``: HTTP 200
    #: ``{"verdict": false, "message": reason}``, TrueFoundry's current contract for a violation, which
    #: also blocks under "Enforce But Ignore On Error". A guardrail URL can choose with ``?answer=``.
    block_answer: BlockAnswer = "akto"
    #: The HTTP stack under the shared engine client: ``aiohttp`` (about a quarter of httpx's CPU per call,
    #: see reference_impl/core/aiohttp_transport.py) or httpx's own.
    http_client: Literal["aiohttp", "httpx"] = "aiohttp"

    @property
    def fail_mode(self) -> FailMode:
        return self.engine.unreachable_fallback

    @model_validator(mode="after")
    def _one_key(self) -> "TrueFoundrySettings":
        if self.jwt_hs256_secret is not None and self.jwt_rs256_public_key:
            raise ValueError("configure either an HS256 secret or an RS256 public key, not both")
        return self


@dataclass
class Counters:
    """What the endpoint did, for tests and operators (no payloads, no tokens)."""

    checked: int = 0
    blocked: int = 0
    failed_open: int = 0
    failed_closed: int = 0
    unauthorized: int = 0
    bad_calls: int = 0
    audited: int = 0
    audit_violations: int = 0


class TrueFoundryApp:
    """The raw ASGI app (no framework on the hot path: the added latency budget is under 1 ms)."""

    def __init__(self, settings: TrueFoundrySettings) -> None:
        self.settings = settings
        self.engine = EngineClient(settings.engine, transport=_transport(settings))
        secret = settings.jwt_hs256_secret.get_secret_value() if settings.jwt_hs256_secret else None
        self.verifier = TokenVerifier(secret or None, settings.jwt_rs256_public_key, settings.revoked_tokens)
        self.counters = Counters()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            status, body = await self._route(scope, receive, time.time())
            await _respond(send, status, body)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.engine.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, scope: Scope, receive: Receive, arrived_at: float) -> tuple[int, dict[str, Any]]:
        path = scope["path"].rstrip("/")
        if path == HEALTH_PATH:
            return 200, {"status": "ok"}
        if path != TRUEFOUNDRY_PATH:
            return 404, {"actionErrors": [f"no route {scope['path']!r}; the guardrail URL is {TRUEFOUNDRY_PATH}"]}
        if scope["method"] != "POST":
            return 405, {"actionErrors": [f"method {scope['method']} not allowed; use POST"]}
        try:
            self.verifier.verify(_header(scope, b"authorization"))
        except Unauthorized as exc:
            self.counters.unauthorized += 1
            return 401, {"actionErrors": [str(exc)]}
        try:
            query = parse_qs(scope["query_string"].decode("latin-1"))
            sync = parse_flag(_last(query, "sync"), "sync")
            streaming = parse_flag(_last(query, "streaming"), "streaming")
            answer = _answer_style(_last(query, "answer"), self.settings.block_answer)
            raw = await _read_body(receive, self.settings.max_body_bytes, _header(scope, b"content-length"))
            call = parse_call(raw)
        except BodyTooLarge as exc:
            return 413, {"actionErrors": [str(exc)]}
        except BadCall as exc:
            self.counters.bad_calls += 1
            return 422, {"actionErrors": [str(exc)]}
        return await self.handle(call, sync=self.settings.default_sync if sync is None else sync,
                                 streaming=bool(streaming) or call.streaming, answer=answer, arrived_at=arrived_at)

    async def handle(self, call: TrueFoundryCall, *, sync: bool, streaming: bool, answer: BlockAnswer = "akto",
                     arrived_at: float | None = None) -> tuple[int, dict[str, Any]]:
        """The decision flow for one readable call: (HTTP status, JSON body). The engine deadline starts at
        ``arrived_at`` (a ``time.time()`` stamp, when the server handed the request over) when given."""
        if streaming:
            self._ingest_previous_turn(call)
        if call.has_response:
            envelope = self._envelope(call)
            if sync:
                self.engine.ingest_in_background(envelope, "truefoundry output ingest")
            else:
                self.engine.background.spawn(self._audit(envelope), "truefoundry audit")
            return _allowed(answer)
        if not sync:
            return _allowed(answer)
        return await self._check_input(call, answer, arrived_at)

    async def _check_input(self, call: TrueFoundryCall, answer: BlockAnswer,
                           arrived_at: float | None) -> tuple[int, dict[str, Any]]:
        self.counters.checked += 1
        try:
            verdict = await self.engine.check(lambda: self._envelope(call), direction="request",
                                              budget=self.engine.budget(arrived_at))
        except EngineFailure as failure:
            decision = on_failure(failure, self.settings.fail_mode)
            self.engine.failure_log.warning(f"request {failure.kind.value}", "akto truefoundry: engine call failed (%s): %s; %s",
                                            failure.kind.value, failure,
                                            "letting the request through" if decision.allow else f"answering {decision.status}")
            if decision.allow:
                self.counters.failed_open += 1
                return _allowed(answer)
            self.counters.failed_closed += 1
            return decision.status, {"actionErrors": [decision.message]}
        if verdict.blocks:
            self.counters.blocked += 1
            self.engine.ingest_in_background(self._envelope(call, blocked=True), "truefoundry blocked ingest")
            return _blocked(answer, verdict.reason or DEFAULT_BLOCK_REASON)
        if not verdict.allowed:
            log.warning("akto truefoundry: policy matched with behaviour %r (not blocking): %s",
                        verdict.behaviour.value, verdict.reason)
        return _allowed(answer)

    async def _audit(self, envelope: Envelope) -> None:
        """sync=false output hook: both checks and the ingestion happen here, off the reply path."""
        self.counters.audited += 1
        try:
            request_verdict = await self.engine.check(envelope, direction="request", ingest=True)
            response_verdict = await self.engine.check(envelope, direction="response")
        except EngineFailure as failure:
            self.engine.failure_log.warning(f"audit {failure.kind.value}", "akto truefoundry: background check failed (%s): %s",
                                            failure.kind.value, failure)
            return
        for side, verdict in (("request", request_verdict), ("response", response_verdict)):
            if not verdict.allowed:
                self.counters.audit_violations += 1
                log.warning("akto truefoundry: %s violation logged, not blocked (sync=false): %s", side,
                            verdict.reason or DEFAULT_BLOCK_REASON)

    def _ingest_previous_turn(self, call: TrueFoundryCall) -> None:
        turn = previous_turn(call.request_body)
        if turn is not None:
            request_body, response_body = turn
            envelope = self._envelope(call, request_body=request_body, response_body=response_body)
            self.engine.ingest_in_background(envelope, "truefoundry previous-turn ingest")

    def _envelope(self, call: TrueFoundryCall, **overrides: Any) -> Envelope:
        engine = self.settings.engine
        return to_envelope(call, account_id=engine.akto_account_id, vxlan_id=engine.akto_vxlan_id, **overrides)


def _transport(settings: TrueFoundrySettings) -> Any:
    if settings.http_client == "httpx":
        return None
    return AiohttpTransport.for_settings(settings.engine)


def _answer_style(value: str | None, default: BlockAnswer) -> BlockAnswer:
    if value is None:
        return default
    if value not in ("akto", "verdict"):
        raise BadCall(f"answer must be akto or verdict, got {value!r}")
    return value  # type: ignore[return-value]


def _allowed(answer: BlockAnswer) -> tuple[int, dict[str, Any]]:
    return 200, ({"verdict": True} if answer == "verdict" else {})


def _blocked(answer: BlockAnswer, reason: str) -> tuple[int, dict[str, Any]]:
    if answer == "verdict":
        return 200, {"verdict": False, "message": reason}
    return 400, {"actionErrors": [reason]}


class BodyTooLarge(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _last(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


async def _read_body(receive: Receive, limit: int, content_length: str | None) -> bytes:
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise BodyTooLarge(f"body of {content_length} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadCall("client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: Mapping[str, Any]) -> None:
    payload = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


# ---------------------------------------------------------------------------------------------- settings


def build_settings(
    *,
    akto_url: str | None = None,
    fail_mode: str | FailMode = FailMode.FAIL_OPEN,
    timeout: float = DEFAULT_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> TrueFoundrySettings:
    """Settings with the endpoint's defaults (fail_open, 3 s, connector ``truefoundry``).

    ``env`` supplies ``AKTO_GUARDRAIL_API_BASE``, ``AKTO_API_KEY``, ``AKTO_ACCOUNT_ID`` (engine side),
    ``AKTO_TFY_JWT_SECRET`` and ``AKTO_DI_REVOKED_TOKENS`` (caller side). Raises :class:`ConfigError`.
    """
    env = os.environ if env is None else env
    engine_params = {k: options.pop(k) for k in list(options) if k in EngineSettings.model_fields}
    engine = EngineSettings.from_params(
        {"akto_base_url": akto_url, "unreachable_fallback": fail_mode, "guardrail_timeout": timeout,
         "connector": TRUEFOUNDRY_CONNECTOR, **engine_params},
        env=env,
    )
    if options.get("jwt_hs256_secret") is None and env.get("AKTO_TFY_JWT_SECRET"):
        options["jwt_hs256_secret"] = env["AKTO_TFY_JWT_SECRET"]
    if "revoked_tokens" not in options and env.get("AKTO_DI_REVOKED_TOKENS"):
        options["revoked_tokens"] = frozenset(t.strip() for t in env["AKTO_DI_REVOKED_TOKENS"].split(",") if t.strip())
    try:
        return TrueFoundrySettings(engine=engine, **options)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"truefoundry endpoint setting {name!r}: {first['msg']}") from None


def create_app(settings: TrueFoundrySettings | None = None, **kwargs: Any) -> TrueFoundryApp:
    """The ASGI app; ``kwargs`` go to :func:`build_settings` when no settings are given."""
    return TrueFoundryApp(settings or build_settings(**kwargs))


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reference_impl.truefoundry",
        description="Akto's TrueFoundry guardrail endpoint (POST /api/http-proxy/truefoundry), 127.0.0.1 unless --host. "
        "Secrets come from the environment: AKTO_API_KEY (engine), AKTO_TFY_JWT_SECRET (callers' HS256 JWTs).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 only inside a container)")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--akto-url", help="engine base URL (env AKTO_GUARDRAIL_API_BASE)")
    parser.add_argument("--fail-mode", choices=[m.value for m in FailMode], default=FailMode.FAIL_OPEN.value,
                        help="engine down, slow or broken: let the request through (fail_open, Akto's behaviour) "
                        "or answer 503 (fail_closed)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="total deadline of an engine call, s")
    parser.add_argument("--default-sync", choices=["true", "false"], default="true", help="sync when the URL has none")
    parser.add_argument("--jwt-public-key-file", help="PEM RS256 public key; callers' JWTs must verify against it")
    parser.add_argument("--block-answer", choices=["akto", "verdict"], default="akto")
    parser.add_argument("--http-client", choices=["aiohttp", "httpx"], default="aiohttp",
                        help="HTTP stack toward the engine (default aiohttp: cheaper per call)")
    parser.add_argument("--max-body-bytes", type=int, default=10 * 1024 * 1024, help="larger bodies get 413")
    parser.add_argument("--account-id", help="akto_account_id in records (env AKTO_ACCOUNT_ID, default 1000000)")
    parser.add_argument("--vxlan-id", help="akto_vxlan_id in records (env AKTO_VXLAN_ID, default 0)")
    parser.add_argument("--breaker-failures", type=int, default=None, metavar="N",
                        help="open the engine circuit after N overlapping timeouts (default 5; 0: no breaker)")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--access-log", action="store_true", help="uvicorn access log (off: it costs latency)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options: dict[str, Any] = {"default_sync": args.default_sync == "true", "block_answer": args.block_answer,
                               "max_body_bytes": args.max_body_bytes, "http_client": args.http_client}
    if args.account_id:
        options["akto_account_id"] = args.account_id
    if args.vxlan_id:
        options["akto_vxlan_id"] = args.vxlan_id
    if args.breaker_failures is not None:
        options["breaker_failures"] = args.breaker_failures
    try:
        if args.jwt_public_key_file:
            with open(args.jwt_public_key_file, encoding="utf-8") as key_file:
                options["jwt_rs256_public_key"] = key_file.read()
        settings = build_settings(akto_url=args.akto_url, fail_mode=args.fail_mode, timeout=args.timeout, **options)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    auth = "HS256" if settings.jwt_hs256_secret else "RS256" if settings.jwt_rs256_public_key else "off"
    log.warning("akto truefoundry endpoint on http://%s:%d%s -> engine %s (%s, timeout %gs, auth %s)",
                args.host, args.port, TRUEFOUNDRY_PATH, settings.engine.akto_base_url, settings.fail_mode.value,
                settings.engine.guardrail_timeout, auth)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level,
                access_log=args.access_log, lifespan="on")
    return 0

