"""Akto guardrails for outbound AI traffic, as a mitmproxy addon (``mitmdump -s reference_impl/egress/addon.py``).

A thin adapter: options come from :mod:`reference_impl.egress.settings`, payloads and the modify mapping
from :mod:`reference_impl.egress.payload`, stream batching from :mod:`reference_impl.egress.stream`, and
the engine call, verdict reading and fail-mode decision from :mod:`reference_impl.core`. This module only
translates mitmproxy's flows to and from those. See docs/egress.md.

Why the hooks are ``async``: an engine call waits on the network, and mitmproxy runs every connection on
one event loop. Awaiting keeps a slow engine from stalling unrelated flows (Akto's addon blocks a thread
pool of 4, so a stalled engine stalls everyone).

Sync stream mode needs one thing mitmproxy 11 does not offer: waiting for a verdict between two chunks
of a streamed response (``flow.response.stream`` callables are synchronous, mitmproxy issue #8103).
:func:`_install_stream_gate` adds it with a custom hook, ``akto_stream_gate``, yielded by the HTTP stream
layer before a chunk is forwarded when a batch is waiting: the layer pauses only that stream (mitmproxy's
own rule for blocking hooks) while other flows go on. It is installed only when sync mode is configured.
"""

# No ``from __future__ import annotations`` here: mitmdump loads this file as a script outside
# sys.modules, where dataclasses cannot resolve string annotations.
import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal, Optional

from mitmproxy import ctx, exceptions, hooks, http, tls
from mitmproxy.net import encoding
from mitmproxy.net.http import url
from mitmproxy.net.http.headers import infer_content_encoding
from mitmproxy.proxy import commands
from mitmproxy.proxy.layers import http as http_layers

from akto_wire import Verdict
from reference_impl.core import ConfigError, EngineClient, EngineFailure, on_failure
from reference_impl.core.engine_client import EnvelopeSource
from reference_impl.core.http1_transport import Http1Transport
from reference_impl.core.masking import MASKING_FAILED_REASON
from reference_impl.egress.payload import (
    MaskingError,
    build_envelope,
    modified_body,
    parse_json_body,
    request_payload,
    stream_batch_payload,
)
from reference_impl.egress.settings import OPTIONS, EgressSettings, StreamMode, resolve
from reference_impl.egress.sse import provider_of
from reference_impl.egress.stream import AsyncStreamTap, StreamDecision, StreamDecoder, SyncStreamGate

log = logging.getLogger("akto.egress")

DECISION_HEADER = "X-Akto-Guardrails-Decision"
LOOPBACK = "127.0.0.1"
REQUEST_BLOCK_REASON = "Blocked by Akto request guardrails"
RESPONSE_BLOCK_REASON = "Blocked by Akto response guardrails"

# flow.metadata keys (the original host is recorded before any other addon can re-route the flow)
HOST = "akto.host"
INSPECTED = "akto.inspected"
SENT_PAYLOAD = "akto.request_payload"
ANSWERED = "akto.answered"  # this addon wrote the response (block / unavailable)
STREAMED = "akto.streamed"
GATE = "akto.stream_gate"
FORWARDER = "akto.stream_forwarder"
STREAM_ALERTS = "akto.stream_alerts"
BUDGET = "akto.budget"  # the request's engine-time budget, shared by its phases (core/budget.py)


class AktoGuardrails:
    """The addon. One instance per mitmdump; per-flow state lives in ``flow.metadata``."""

    def __init__(self) -> None:
        self.settings: EgressSettings | None = None
        self.engine: EngineClient | None = None
        self._closing: set[asyncio.Task[None]] = set()

    # --- lifecycle ---------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        # mitmdump's root logger passes DEBUG records to its handlers, which filter them late: httpx's INFO line
        # and httpcore's ~10 DEBUG trace records per engine call would cost more CPU than the rest of the addon.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
        for spec in OPTIONS:
            loader.add_option(spec.name, Optional[spec.type], None, f"{spec.help} Env: {spec.env}.")

    def configure(self, updated: set[str]) -> None:
        if "listen_host" in updated:
            _bind_loopback_by_default()
        if self.settings is not None and not any(name.startswith("akto_") for name in updated):
            return
        try:
            settings = resolve({spec.name: getattr(ctx.options, spec.name) for spec in OPTIONS})
        except ConfigError as exc:
            raise exceptions.OptionsError(str(exc)) from None
        if settings.stream_mode is StreamMode.SYNC:
            try:
                _install_stream_gate()
            except AttributeError as exc:  # another mitmproxy version: refuse rather than stream unchecked
                raise exceptions.OptionsError(f"akto egress: sync stream mode needs mitmproxy 11's stream layer: {exc}") from None
        old, self.engine, self.settings = self.engine, EngineClient(settings.engine, transport=Http1Transport.for_settings(settings.engine)), settings
        if old is not None:
            self._retire(old)
        log.info(
            "akto egress: engine %s, %s, timeout %gs, streams %s",
            settings.engine.akto_base_url, settings.fail_mode.value, settings.engine.guardrail_timeout,
            settings.stream_mode.value,
        )

    def _retire(self, old: EngineClient) -> None:
        """Close a replaced engine client once its in-flight calls are done (options changed at runtime)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # configured before the event loop runs: the old client never opened a connection
        task = loop.create_task(old.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # --- which traffic -----------------------------------------------------------------------------

    def inspects(self, host: str | None) -> bool:
        return self.settings is not None and self.settings.hosts(host)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """HTTPS to any other host is tunnelled: its TLS is never terminated here."""
        address = data.context.server.address
        if not (self.inspects(data.client_hello.sni) or self.inspects(address[0] if address else None)):
            data.ignore_connection = True

    # --- request phase -----------------------------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        host = flow.metadata[HOST] = _pretty_host(flow.request)
        if flow.response is not None or not (self.inspects(flow.request.host) or self.inspects(host)):
            return
        body = parse_json_body(_body_bytes(flow.request)) if flow.request.stream is False else None
        if body is None:
            return  # no JSON body (GET /v1/models, uploads): nothing to judge
        assert self.settings is not None and self.engine is not None
        flow.metadata[INSPECTED] = True
        # The request's deadline starts when mitmproxy had the whole request, not when this hook ran.
        flow.metadata[BUDGET] = self.engine.budget(flow.request.timestamp_end)
        if isinstance(body, dict) and body.get("stream") is True:
            # Stream text is read as it passes: keep the encodings we can undo chunk by chunk.
            flow.request.headers["accept-encoding"] = "gzip, deflate"
        sent = flow.metadata[SENT_PAYLOAD] = request_payload(body)
        verdict = await self._phase_verdict(flow, lambda: self._envelope(flow, sent), "request")
        if verdict is None:
            return
        if verdict.modified and verdict.modified_payload and verdict.modified_payload != sent:
            try:
                new_body = modified_body(body, sent, verdict.modified_payload, phase="request")
            except MaskingError as exc:
                self._answer(flow, 403, f"{MASKING_FAILED_REASON}: {exc}", "blocked")
                return
            flow.request.content = json.dumps(new_body, ensure_ascii=False).encode()
            flow.metadata[SENT_PAYLOAD] = request_payload(new_body)
            log.info("akto egress: request modified by guardrails")

    # --- response phase ----------------------------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if not self._response_inspected(flow):
            return
        assert flow.response is not None and self.settings is not None
        if b"text/event-stream" not in _raw_header(flow.response.headers, b"content-type").lower():
            return  # buffered: the response hook checks it whole
        try:
            decoder = StreamDecoder(_raw_header(flow.response.headers, b"content-encoding").decode("latin-1"))
        except ValueError as exc:
            log.error("akto egress: stream not inspected: %s", exc)
            return
        flow.response.headers.pop("content-encoding", None)  # forwarded decoded
        flow.metadata[STREAMED] = True
        if self.settings.stream_mode is StreamMode.SYNC:
            gate = SyncStreamGate(lambda text: self._check_batch(flow, text), self.settings.batch_chars, self._provider(flow))
            driver = flow.metadata[GATE] = _GateDriver(gate, decoder)
            flow.response.stream = driver.forward
        else:
            tap = AsyncStreamTap(lambda text: self._spawn_batch_check(flow, text), self.settings.batch_chars)
            flow.response.stream = flow.metadata[FORWARDER] = _AsyncForwarder(tap, decoder)

    async def akto_stream_gate(self, flow: http.HTTPFlow) -> None:
        """Sync mode: the stream layer waits here while a held batch gets its verdict."""
        driver = flow.metadata.get(GATE)
        if isinstance(driver, _GateDriver):
            await driver.gate.settle()

    async def response(self, flow: http.HTTPFlow) -> None:
        self._end_async_stream(flow)
        if not self._response_inspected(flow) or flow.metadata.get(STREAMED):
            return
        assert flow.response is not None and self.engine is not None
        text = _body_text(flow.response)
        if not text:
            return
        sent = flow.metadata[SENT_PAYLOAD]
        verdict = await self._phase_verdict(flow, lambda: self._envelope(flow, sent, response_text=text), "response")
        if verdict is None:
            return
        if verdict.modified and verdict.modified_payload and verdict.modified_payload != text:
            original = parse_json_body(text.encode())
            if original is None:
                flow.response.text = verdict.modified_payload  # plain text: nothing else to keep
                return
            try:
                new_body = modified_body(original, text, verdict.modified_payload, phase="response")
            except MaskingError as exc:
                self._answer(flow, 403, f"{MASKING_FAILED_REASON}: {exc}", "blocked")
                return
            flow.response.text = json.dumps(new_body, ensure_ascii=False)
            log.info("akto egress: response modified by guardrails")

    async def _phase_verdict(self, flow: http.HTTPFlow, envelope: EnvelopeSource, phase: Literal["request", "response"]) -> Verdict | None:
        """The engine's verdict on one phase, or None when the flow is settled: the engine failed (the fail
        mode decided) or the verdict blocks (answered 403). A flag that does not block is only logged."""
        try:
            verdict = await self.engine.check(envelope, direction=phase, ingest=True, budget=flow.metadata.get(BUDGET))
        except EngineFailure as failure:
            self._on_engine_failure(flow, failure, phase)
            return None
        if verdict.blocks:
            log.info("akto egress: %s blocked: %s", phase, verdict.reason)
            default_reason = REQUEST_BLOCK_REASON if phase == "request" else RESPONSE_BLOCK_REASON
            self._answer(flow, 403, verdict.reason or default_reason, "blocked")
            return None
        if not verdict.allowed:
            log.warning("akto egress: %s flagged (%s), not blocked: %s", phase, verdict.behaviour.value, verdict.reason)
        return verdict

    def error(self, flow: http.HTTPFlow) -> None:
        self._end_async_stream(flow)

    @staticmethod
    def _end_async_stream(flow: http.HTTPFlow) -> None:
        forwarder = flow.metadata.get(FORWARDER)
        if isinstance(forwarder, _AsyncForwarder):
            forwarder.end()

    # --- stream batches ----------------------------------------------------------------------------

    async def _check_batch(self, flow: http.HTTPFlow, text: str, *, awaited: bool = True) -> StreamDecision:
        """One stream batch's verdict; an awaited (sync mode) batch spends the request's budget."""
        assert self.engine is not None and self.settings is not None
        budget = flow.metadata.get(BUDGET) if awaited else None
        try:
            verdict = await self.engine.check(lambda: self._batch_envelope(flow, text), direction="response", ingest=True, budget=budget)
        except EngineFailure as failure:
            decision = on_failure(failure, self.settings.fail_mode)
            self.engine.failure_log.warning(f"batch {failure.kind.value}", "akto egress: stream batch check failed (%s): %s",
                                            failure.kind.value, failure)
            return StreamDecision(decision.allow, decision.message, kind="guardrails_unavailable")
        if verdict.blocks:
            return StreamDecision(False, verdict.reason or RESPONSE_BLOCK_REASON)
        return StreamDecision(True)

    def _spawn_batch_check(self, flow: http.HTTPFlow, text: str) -> None:
        assert self.engine is not None
        self.engine.background.spawn(self._report_batch(flow, text), "stream batch check")

    async def _report_batch(self, flow: http.HTTPFlow, text: str) -> None:
        decision = await self._check_batch(flow, text, awaited=False)
        if not decision.allow:
            flow.metadata.setdefault(STREAM_ALERTS, []).append(decision.reason)
            log.warning("akto egress: streamed text flagged (async mode, not blocked): %s", decision.reason)

    # --- helpers -----------------------------------------------------------------------------------

    def _response_inspected(self, flow: http.HTTPFlow) -> bool:
        return bool(flow.metadata.get(INSPECTED)) and not flow.metadata.get(ANSWERED) and flow.response is not None

    def _provider(self, flow: http.HTTPFlow) -> str:
        return provider_of(flow.metadata.get(HOST) or flow.request.pretty_host)

    def _envelope(self, flow: http.HTTPFlow, sent: str, *, response_text: str = "") -> Any:
        assert self.settings is not None
        response = flow.response
        return build_envelope(
            path=flow.request.path,
            method=flow.request.method,
            request_headers=_header_pairs(flow.request.headers),
            app_name=self.settings.app_name,
            request_payload_text=sent,
            response_payload_text=response_text,
            response_headers=_header_pairs(response.headers) if response is not None else None,
            status_code=response.status_code if response is not None else 200,
            client_ip=_ip(flow.client_conn.peername),
            dest_ip=_ip(flow.server_conn.peername),
            account_id=self.settings.engine.akto_account_id,
            vxlan_id=self.settings.engine.akto_vxlan_id,
        )

    def _batch_envelope(self, flow: http.HTTPFlow, text: str) -> Any:
        return self._envelope(flow, flow.metadata.get(SENT_PAYLOAD, ""), response_text=stream_batch_payload(text))

    def _on_engine_failure(self, flow: http.HTTPFlow, failure: EngineFailure, phase: str) -> None:
        assert self.settings is not None and self.engine is not None
        decision = on_failure(failure, self.settings.fail_mode)
        key = f"{phase} {failure.kind.value}"
        if decision.allow:
            self.engine.failure_log.warning(key, "akto egress: %s check failed (%s), failing open: %s", phase, failure.kind.value, failure)
        else:
            self.engine.failure_log.warning(key, "akto egress: %s check failed (%s), answering %d: %s", phase,
                                            failure.kind.value, decision.status, failure)
            self._answer(flow, decision.status, decision.message, "unavailable")

    @staticmethod
    def _answer(flow: http.HTTPFlow, status: int, message: str, decision: str) -> None:
        flow.metadata[ANSWERED] = True
        flow.response = http.Response.make(
            status,
            json.dumps({"error": message}),
            {"Content-Type": "application/json", DECISION_HEADER: decision},
        )


def _bind_loopback_by_default() -> None:
    """mitmproxy's default ``listen_host`` (empty) listens on every interface: an open proxy (issue 11.7).

    Unset, it becomes 127.0.0.1 before the proxy server starts; an address given on purpose is kept
    (``--listen-host 0.0.0.0`` inside a container), with a warning when it is not loopback."""
    host = ctx.options.listen_host
    if not host:
        ctx.options.listen_host = LOOPBACK
        log.info("akto egress: listening on %s (pass --listen-host to choose another address)", LOOPBACK)
    elif host not in (LOOPBACK, "::1", "localhost"):
        log.warning("akto egress: listening on %s: anyone who can reach it can use this proxy", host)


def _header_pairs(headers: http.Headers) -> list[tuple[str, str]]:
    """Header pairs from the raw fields: mitmproxy's mapping view costs a lookup per name (1 ms a flow)."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers.fields]


def _raw_header(headers: http.Headers, name: bytes) -> bytes:
    """The first value of a (lower-case) header from the raw fields: ``headers.get`` decodes and compares
    every field through mitmproxy's multidict view, about 0.2 ms per flow at 50 agents."""
    for field, value in headers.fields:
        if field.lower() == name:
            return value
    return b""


def _pretty_host(request: http.Request) -> str:
    """``request.pretty_host`` (read once per flow), with HTTP/1's ``host`` header read from the raw fields."""
    if not request.http_version.startswith("HTTP/1"):
        return request.pretty_host
    authority = _raw_header(request.headers, b"host")
    if not authority:
        return request.host
    return url.parse_authority(authority.decode("utf-8", "surrogateescape"), check=False)[0]


def _body_bytes(message: http.Message) -> bytes | None:
    """``message.content`` (decoded), with its header lookup read from the raw fields; a compressed body is
    left to mitmproxy."""
    if message.raw_content and _raw_header(message.headers, b"content-encoding"):
        return message.content
    return message.raw_content


def _body_text(message: http.Message) -> str:
    """``message.get_text(strict=False)`` with its two header lookups read from the raw fields (mitmproxy's
    mapping view cost about 2% of the proxy's CPU at 50 agents); a compressed body is left to mitmproxy."""
    content = message.raw_content
    if not content:
        return ""
    if _raw_header(message.headers, b"content-encoding"):
        return message.get_text(strict=False) or ""
    charset = infer_content_encoding(_raw_header(message.headers, b"content-type").decode("latin-1"), content)
    try:
        return encoding.decode(content, charset)
    except ValueError:
        return content.decode("utf8", "surrogateescape")


def _ip(peername: Any) -> str:
    return str(peername[0]) if peername else ""


def _chunks(data: bytes) -> list[bytes]:
    """What a stream callable returns: never ``b""``, which HTTP/1 would send as the final empty chunk."""
    return [data] if data else []


class _AsyncForwarder:
    """The ``flow.response.stream`` callable of async mode: forward at once, check on the side.

    mitmproxy marks the end of a stream by calling it with ``b""``; a stream the peer cuts short can end
    without that call, so the ``response`` and ``error`` hooks call :meth:`end` too (it runs once), and
    the last batch of text is always checked.
    """

    def __init__(self, tap: AsyncStreamTap, decoder: StreamDecoder) -> None:
        self.tap = tap
        self.decoder = decoder
        self.ended = False

    def __call__(self, data: bytes) -> list[bytes]:
        if data:
            return _chunks(self.tap.feed(self.decoder.decode(data)))
        return _chunks(self.end())

    def end(self) -> bytes:
        """Check what is left of the text (once) and return the decoder's last bytes."""
        if self.ended:
            return b""
        self.ended = True
        tail = self.tap.feed(self.decoder.flush())
        self.tap.finish()
        return tail


class _GateDriver:
    """Sync mode: feeds chunks to the gate (from the patched stream layer) and forwards what it releases."""

    def __init__(self, gate: SyncStreamGate, decoder: StreamDecoder) -> None:
        self.gate = gate
        self.decoder = decoder

    def feed(self, data: bytes | None) -> bool:
        """True when the layer must wait (``akto_stream_gate``) before forwarding; None marks the end."""
        if data is None:
            self.gate.feed(self.decoder.flush())
            return self.gate.finish()
        return self.gate.feed(self.decoder.decode(data))

    def forward(self, _data: bytes) -> list[bytes]:
        return _chunks(self.gate.take())  # the chunk itself was fed before the layer waited


# --- the stream gate hook (sync mode) --------------------------------------------------------------

GATE_HOOK = "akto_stream_gate"


def _gate_hook_class() -> type:
    """The hook class, defined once per process even if mitmproxy reloads this script."""
    existing = hooks.all_hooks.get(GATE_HOOK)
    if existing is not None:
        return existing

    @dataclass
    class AktoStreamGateHook(commands.StartHook):
        """A held stream batch waits for its verdict (the stream layer pauses until addons return)."""

        flow: http.HTTPFlow

    return AktoStreamGateHook


def _install_stream_gate() -> None:
    """Let the HTTP stream layer await ``akto_stream_gate`` before forwarding a gated chunk."""
    stream_class = http_layers.HttpStream
    if getattr(stream_class, "_akto_stream_gate", False):
        return
    hook_class = _gate_hook_class()
    forward_chunk = stream_class.state_stream_response_body

    def gated_state_stream_response_body(self: Any, event: Any) -> Any:
        driver = self.flow.metadata.get(GATE)  # duck-typed: mitmproxy may load this file twice
        if driver is not None:
            if isinstance(event, http_layers.ResponseData):
                must_wait = driver.feed(event.data)
            elif isinstance(event, http_layers.ResponseEndOfMessage):
                must_wait = driver.feed(None)
            else:
                must_wait = False
            if must_wait:
                yield hook_class(self.flow)
        yield from forward_chunk(self, event)

    stream_class.state_stream_response_body = gated_state_stream_response_body
    stream_class._akto_stream_gate = True


addons = [AktoGuardrails()]
