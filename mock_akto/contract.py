"""The Akto routes, as raw ASGI: ``/api/http-proxy`` (GET and POST), ``/api/validate/{request,response}``
and ``/health``.

Raw ASGI rather than FastAPI because this is the hot path a load test hammers: the body is read once,
parsed once with orjson and checked field by field (no envelope model per call), and the answer is
serialised once. The steps follow docs/architecture.md: auth, bounded body, parse, flags, payload check,
policies, ingest record, fault, journal. Error answers copy the real services: the ingestion service's
422 ``success:false`` shape and servlet-container HTML 401; the guardrails-service's bare verdicts and
``{"error":"Invalid request format"}``.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import re
import time
from typing import Any, Callable
from urllib.parse import unquote_plus

import orjson

from akto_wire import (
    AKTO_CONNECTOR,
    GUARDRAILS,
    HTTP_PROXY_PATH,
    INGEST_DATA,
    INVALID_REQUEST_FORMAT,
    MISSING_PAYLOAD_MESSAGE,
    RESPONSE_GUARDRAILS,
    TRUEFOUNDRY_PATH,
    VALIDATE_REQUEST_PATH,
    VALIDATE_RESPONSE_PATH,
    VALIDATION_FAILED,
    Direction,
    Envelope,
    Flags,
    Verdict,
    failure_body,
    merge_verdicts,
    success_body,
    validate_error_body,
)

from .config import DEFAULT_MAX_BODY_BYTES
from .errors import BadRequest, BodyTooLarge, ClientGone
from .exchange import Answer, Exchange, send_chunks
from .faults import Down, Fault
from .journal import IngestRecord, JournalEntry, truncate
from .namespaces import Namespace, NamespaceRegistry
from .protocol import arrived_at
from .matching import CallInfo
from .scan_worker import ScanJob, ScanWorkers
from .scripted import VerdictStep
from .truefoundry import TrueFoundryCall
from .types import Message, Receive, Scope, Send

log = logging.getLogger("mock_akto.contract")

#: What a route decides from one body: the answer, the ingest record (or None), and whether the reply may be
#: memoised. The route also fills the journal fields of the draft entry it is given.
RouteResult = tuple["Answer", "IngestRecord | None", bool]
#: What :meth:`ContractRoutes.decide` makes of one body: the route's result with the draft journal entry.
Decision = tuple["Answer", "JournalEntry", "IngestRecord | None", bool]

HEALTH_PATH = "/health"
#: After a 413 the rest of an oversized body is read and thrown away (never stored), up to this much,
#: so the client finishes sending and reads the 413 instead of a reset.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024

#: Envelope fields that must be a string (or null) on the wire. Flags are read leniently instead (only
#: ``true``, as a string or a JSON boolean, turns one on), as the real service does.
STRING_FIELDS = frozenset(Envelope.model_fields) | {"akto_metadata", "client_hook", AKTO_CONNECTOR, "payload"}
#: Cache bounds for values recomputed from identical inputs on every call of a load test.
_CACHE_SIZE = 1024
_PLAIN_TYPES = frozenset({str, type(None)})
_JSON_TYPE_NAMES = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object", str: "string"}

#: Connectors whose ingested traffic Akto tags ``mode: observe`` (the rest: ``inline``), contract 1.1.
OBSERVE_CONNECTORS = frozenset({"truefoundry", "n8n", "copilot_studio", "databricks", "snowflake"})

_APP_UNSAFE = re.compile(r"[^a-z0-9.\-:]")
_NO_FLAGS = Flags()
#: Journal notes on the legacy ``payload`` field of ``/api/validate/*`` bodies (contract 1.2: only
#: ``/validate/response`` reads it, and only when ``responsePayload`` is empty).
LEGACY_PAYLOAD_IGNORED = "body has legacy `payload` field, ignored: the contract reads {field}"
LEGACY_PAYLOAD_EVALUATED = ("body has legacy `payload` field, evaluated in place of the empty responsePayload "
                            "(/validate/response accepts it)")
LEGACY_PAYLOAD_EVALUATED_BY_PROFILE = ("body has legacy `payload` field, evaluated in place of the empty "
                                       "requestPayload (Akto profile validate-legacy-payload)")
LEGACY_PAYLOAD_EMPTY = "body has an empty legacy `payload` field, ignored"
#: Bodies above this size are parsed and judged in a worker process (:mod:`mock_akto.scan_worker`; issue 11:
#: a 10 MB payload of emails held the event loop for 13 s, then, on a worker thread, still delayed every
#: /health probe by tens of ms through the GIL). Small bodies stay on the loop: a 256 KiB body is judged in
#: about a millisecond, less than the trip to a worker and back.
OFFLOAD_BODY_BYTES = 256 * 1024
#: Bodies up to this size are memoised per exact call (bigger ones would not fit the memo's bound anyway).
_MEMO_BODY_LIMIT = 1024 * 1024


def _type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def parse_envelope(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``; :class:`BadRequest` naming the problem otherwise.

    An empty body is an empty object (the real service then complains about ``requestPayload``).
    """
    if not body:
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise BadRequest(f"Request body is not valid UTF-8 (byte 0x{body[bad.start]:02x} at offset {bad.start})",
                             "invalid encoding") from None
        raise BadRequest(f"Malformed JSON body: {exc}", "invalid JSON") from None
    if type(data) is not dict:
        raise BadRequest(f"JSON body must be an object, got {_type_name(data)}", "invalid JSON")
    if not _PLAIN_TYPES.issuperset(map(type, data.values())):  # the usual all-strings body skips the loop
        for name, value in data.items():
            if type(value) is not str and value is not None and name in STRING_FIELDS:
                raise BadRequest(f"Field '{name}' must be a string, got {_type_name(value)}", "invalid field type")
    return data


def parse_query(query_string: bytes) -> dict[str, str]:
    """Query parameters, last value wins; percent-decoding only where needed (this runs on every call)."""
    params: dict[str, str] = {}
    if not query_string:
        return params
    for part in query_string.decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = unquote_plus(name), unquote_plus(value)
        params[name] = value
    return params


def app_of(request_headers: Any) -> str:
    """The Akto app of a call: the ``host`` in the envelope's JSON-encoded ``requestHeaders``, normalised
    as Akto does (lower case; characters outside ``[a-z0-9.-:]`` become ``-``)."""
    if not request_headers or type(request_headers) is not str:
        return ""
    try:
        headers = orjson.loads(request_headers)
    except orjson.JSONDecodeError:
        return ""
    if type(headers) is not dict:
        return ""
    host = headers.get("host")
    if host is None:
        host = next((v for k, v in headers.items() if k.lower() == "host"), None)
    if type(host) is not str:
        return ""
    host = host.lower()
    return _APP_UNSAFE.sub("-", host) if _APP_UNSAFE.search(host) else host


def tag_as_stored(tag: Any, connector: str) -> str:
    """The tag as Akto stores an ingested record: ``mode`` added (observe/inline) when it is missing."""
    if type(tag) is not str:
        return ""
    try:
        data = orjson.loads(tag)
    except orjson.JSONDecodeError:
        return tag
    if type(data) is not dict or "mode" in data:
        return tag
    data["mode"] = "observe" if connector in OBSERVE_CONNECTORS else "inline"
    return orjson.dumps(data).decode()


def unauthorized_page(path: str) -> bytes:
    """A servlet container's 401 error page (what Akto's auth filter's ``sendError(401)`` produces)."""
    uri = html.escape(path)
    return (
        "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=utf-8\"/>\n"
        "<title>Error 401 Unauthorized</title>\n</head>\n<body><h2>HTTP ERROR 401 Unauthorized</h2>\n"
        f"<table>\n<tr><th>URI:</th><td>{uri}</td></tr>\n<tr><th>STATUS:</th><td>401</td></tr>\n"
        "<tr><th>MESSAGE:</th><td>Unauthorized</td></tr>\n</table>\n</body>\n</html>\n"
    ).encode()


class IncomingCall:
    """The few request headers the engine needs, collected in one pass over the ASGI headers."""

    __slots__ = ("authorization", "namespace", "content_length", "expect_continue")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.authorization: str | None = None
        self.namespace: str | None = None
        self.content_length: int | None = None
        self.expect_continue = False
        for name, value in headers:
            if name == b"authorization":
                self.authorization = value.decode("latin-1")
            elif name == b"content-length":
                try:
                    self.content_length = int(value)
                except ValueError:
                    self.content_length = None
            elif name == b"x-mock-akto-namespace":
                self.namespace = value.decode("latin-1")
            elif name == b"expect":
                self.expect_continue = value.lower() == b"100-continue"


class Reply:
    """What one exact call gets, decided from its route, method, query string and body alone: the answer,
    the journal fields the body determines and the ingest record's fields (``ingest``, or None).

    Computing it is the expensive part (parse, flags, policies, serialisation), and it is pure given the
    namespace's policies, so each namespace memoises it per exact call (``Namespace.replies``): a load test
    repeating a body skips all of it. Every call still gets its own journal entry and ingest record, stamped
    from the reply. ``start`` and ``message`` are the ASGI messages of the answer, built once (the server
    only reads them).
    """

    __slots__ = ("answer", "draft", "ingest", "start", "message", "keep", "_call_info")

    def __init__(self, answer: Answer, draft: JournalEntry, ingest: IngestRecord | None, *, keep: bool = True) -> None:
        self.answer = answer
        self.draft = draft
        self.ingest = ingest
        self.start = {"type": "http.response.start", "status": answer.status, "headers": answer.asgi_headers()}
        self.message = {"type": "http.response.body", "body": answer.body}
        #: False for answers that must be recomputed each time (a failed evaluation is logged every time).
        self.keep = keep
        self._call_info: CallInfo | None = None

    def size(self, body: bytes) -> int:
        """About how many characters memoising this reply holds (body, answer, journal copies)."""
        return len(body) + len(self.answer.body) + self.draft.size

    def call_info(self, body: bytes, query_string: bytes = b"") -> CallInfo:
        """What fault rules and scripted verdicts match on, built on the first call that needs it (they only
        read it; its derived views are computed once per memoised reply)."""
        if self._call_info is None:
            self._call_info = _call_info(self.draft, body, query_string, self.answer.status)
        return self._call_info

    def entry(self, when: float, method: str, path: str) -> JournalEntry:
        """A fresh journal entry for one call with this reply (sequence number and timings still to set)."""
        d = self.draft
        return JournalEntry(0, when, d.namespace, method, path, d.flags, d.app, d.request_payload,
                            d.response_payload, d.request_headers, d.truncated, d.request_verdict,
                            d.response_verdict, None, None, None, d.error, False, d.size, d.legacy_payload, d.note)


class ContractRoutes:
    """Serves the Akto routes for one engine. ``token`` (when set) is required on ``/api/*``;
    a registered namespace API key is accepted too."""

    def __init__(
        self,
        registry: NamespaceRegistry,
        *,
        token: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        payload_cap: int = 64 * 1024,
    ) -> None:
        self.registry = registry
        self._token = token or None
        self._bearer = f"Bearer {token}" if token else None
        self.max_body_bytes = max_body_bytes
        self.payload_cap = payload_cap
        self._flags: dict[tuple[Any, ...], Flags] = {}
        self.scan_workers = ScanWorkers()
        self._apps: dict[str, str] = {}
        self._routes: dict[str, Callable[[str, bytes, bytes, Namespace, JournalEntry], RouteResult]] = {
            HTTP_PROXY_PATH: self._http_proxy,
            VALIDATE_REQUEST_PATH: self._validate_request,
            VALIDATE_RESPONSE_PATH: self._validate_response,
            TRUEFOUNDRY_PATH: self._truefoundry,
        }

    def close(self) -> None:
        """Stop the scan worker processes (the engine is shutting down)."""
        self.scan_workers.close()

    def handles(self, path: str) -> bool:
        return path in self._routes or path == HEALTH_PATH

    async def __call__(self, scope: Scope, receive: Receive, send: Send, ns: Namespace, path: str,
                       call: IncomingCall) -> None:
        started = arrived_at(scope)  # delays count from here: a busy loop may have kept the call waiting
        when = time.time()
        method: str = scope["method"]
        if self.registry.is_down(ns):
            await self._refuse_while_down(scope, receive, send, ns, _blank_entry(ns, when, method, path), started)
            return
        if path == HEALTH_PATH:
            await Exchange(scope, receive, send, Answer.of_json({"status": "ok"})).deliver()
            return
        if self._token is not None and not self._authorized(call.authorization):
            entry = _blank_entry(ns, when, method, path)
            entry.error = "missing or wrong Authorization"
            answer = Answer(status=401, body=unauthorized_page(path), content_type="text/html;charset=iso-8859-1")
            await self._answer(scope, receive, send, ns, entry, answer, _call_info(entry, b""), started)
            return
        try:
            chunks = await self._read_body(receive, call)
        except BodyTooLarge:
            entry = _blank_entry(ns, when, method, path)
            entry.error = f"Request body larger than the engine's limit of {self.max_body_bytes} bytes"
            answer = Answer.of_json(failure_body(entry.error, "payload too large"), status=413)
            answer.headers.append(("connection", "close"))
            await self._answer(scope, receive, send, ns, entry, answer, _call_info(entry, b""), started)
            return
        except ClientGone:
            entry = _blank_entry(ns, when, method, path)
            entry.error = "client disconnected before sending the whole body"
            entry.done = True
            ns.journal.append(self._sealed(entry, ns, started))
            return
        size = sum(map(len, chunks)) if len(chunks) > 1 else len(chunks[0])
        if size > OFFLOAD_BODY_BYTES:  # judged in a worker process: the event loop keeps serving others
            reply = await self._reply_off_loop(ns, path, method, scope["query_string"], chunks, size)
            # Joined here only when a script or fault rule must read it (a 10 MB join is ~10 ms of GIL).
            needs_body = len(ns.scripts) or len(ns.rules) or len(self.registry.global_rules)
            body = b"".join(chunks) if needs_body or size <= _MEMO_BODY_LIMIT else b""
        else:
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            reply = self._reply(ns, path, method, scope["query_string"], body)
        if len(ns.scripts) and reply.answer.status == 200:  # no script: one length check on the hot path
            reply = self._scripted_reply(ns, reply, path, scope["query_string"], body)
        entry = reply.entry(when, method, path)
        if reply.ingest is not None:
            ns.ingest.append(reply.ingest.stamped(ns.ingest.next_seq(), when))
        if not len(ns.rules) and not len(self.registry.global_rules):  # no fault can apply: answer now
            entry.status = reply.answer.status
            entry.done = True
            ns.journal.append(self._sealed(entry, ns, started))
            await send(reply.start)
            if reply.answer.chunks is None:
                await send(reply.message)
            else:  # a big answer from a scan worker, sent as it came from its pipe
                await send_chunks(send, reply.answer.chunks)
            return
        await self._answer(scope, receive, send, ns, entry, reply.answer, reply.call_info(body, scope["query_string"]),
                           started, (reply.start, reply.message))

    def _reply(self, ns: Namespace, path: str, method: str, query_string: bytes, body: bytes) -> Reply:
        """The reply to this exact call: memoised per namespace, computed by the route otherwise."""
        key = _memo_key(path, method, query_string, body)
        reply: Reply | None = ns.replies.get(key) if key is not None else None
        if reply is None:
            answer, draft, ingest, keep = self.decide(ns, path, method, query_string, body)
            reply = Reply(answer, draft, ingest, keep=keep)
            _remember(ns, key, reply, body)
        return reply

    async def _reply_off_loop(self, ns: Namespace, path: str, method: str, query_string: bytes, chunks: list[bytes],
                              size: int) -> Reply:
        """:meth:`_reply` with the route run in a scan worker process on a snapshot of the namespace; the body
        goes to it chunk by chunk, never joined in this process unless it is small enough to memoise."""
        key = _memo_key(path, method, query_string, b"".join(chunks)) if size <= _MEMO_BODY_LIMIT else None
        reply: Reply | None = ns.replies.get(key) if key is not None else None
        if reply is None:
            job = ScanJob(path, method, query_string, ns.name, ns.policies, ns.profile, self._token,
                          self.payload_cap, self.registry.api_key_owners(), size)
            answer, draft, ingest, keep = await self.scan_workers.decide(
                job, chunks, lambda: self.decide(ns, path, method, query_string, b"".join(chunks)))
            reply = Reply(answer, draft, ingest, keep=keep)
            if (key is not None and keep and answer.chunks is None and ns.policies is job.policies
                    and ns.profile is job.profile):
                ns.replies.remember(key, reply, size + len(answer.body) + draft.size)  # unless changed meanwhile
        return reply

    def decide(self, ns: Namespace, path: str, method: str, query_string: bytes, body: bytes) -> Decision:
        """What the route makes of this body (no memo): the answer, the draft journal entry, the ingest record
        and whether the reply may be memoised. Pure given the namespace's policies and profile, so a scan
        worker process runs it too."""
        draft = _blank_entry(ns, 0.0, method, path)
        answer, ingest, keep = self._routes[path](method, query_string, body, ns, draft)
        return answer, draft, ingest, keep

    def _scripted_reply(self, ns: Namespace, reply: Reply, path: str, query_string: bytes, body: bytes) -> Reply:
        """The reply a scripted verdict gives this call, or ``reply`` when none matches (never memoised:
        a sequence answers the same body differently each time)."""
        picked = ns.scripts.pick(reply.call_info(body, query_string))
        if picked is None:
            return reply
        script_id, index, step = picked
        note = f"scripted verdict {script_id} step {index + 1}"
        if step.policies:
            draft = dataclasses.replace(reply.draft, note=f"{note}: the policies decide")
            return Reply(reply.answer, draft, reply.ingest, keep=False)
        if step.fail is not None:
            draft = dataclasses.replace(reply.draft, note=note, error=step.fail)
            return Reply(Answer.of_json(failure_body(step.fail, "scripted failure"), 500), draft, None, keep=False)
        answer, request_verdict, response_verdict, result = self._scripted_answer(reply.draft, path, step)
        draft = dataclasses.replace(reply.draft, note=note)
        draft.request_verdict = self._journal_verdict(draft, request_verdict)
        draft.response_verdict = self._journal_verdict(draft, response_verdict)
        ingest = dataclasses.replace(reply.ingest, verdict=result) if reply.ingest is not None else None
        return Reply(answer, draft, ingest, keep=False)

    @staticmethod
    def _scripted_answer(draft: JournalEntry, path: str, step: VerdictStep
                         ) -> tuple[Answer, Verdict | None, Verdict | None, dict[str, Any] | None]:
        """The 200 answer with the step's verdicts (the policies' for a direction the step leaves out),
        shaped as the route answers: the ingestion service's envelope (merged when both directions ran),
        or a bare verdict from ``/api/validate/*``."""
        if path == VALIDATE_REQUEST_PATH:
            verdict = step.for_request() or draft.request_verdict or Verdict()
            return Answer.of_json(verdict.to_wire()), verdict, None, None
        if path == VALIDATE_RESPONSE_PATH:
            verdict = step.for_response() or draft.response_verdict or Verdict()
            return Answer.of_json(verdict.to_wire()), None, verdict, None
        flags = draft.flags or _NO_FLAGS
        request_verdict = (step.for_request() or draft.request_verdict) if flags.guardrails else None
        response_verdict = (step.for_response() or draft.response_verdict) if flags.response_guardrails else None
        result = guardrails_result(request_verdict, response_verdict)
        return Answer.of_json(success_body(result)), request_verdict, response_verdict, result

    # -- steps --------------------------------------------------------------------------------------------

    def _authorized(self, authorization: str | None) -> bool:
        if authorization is None:
            return False
        if authorization == self._token or authorization == self._bearer:
            return True
        if authorization[:7].lower() == "bearer " and authorization[7:].strip() == self._token:
            return True  # the scheme in any case, as for registered keys (RFC 9110: case-insensitive)
        return self.registry.is_registered_key(authorization)

    async def _read_body(self, receive: Receive, call: IncomingCall) -> list[bytes]:
        """The whole body as the chunks it arrived in (at least one), or :class:`BodyTooLarge` as soon as it
        passes the limit (nothing more is kept). Not joined: a big body goes to a scan worker chunk by chunk."""
        limit = self.max_body_bytes
        if call.content_length is not None and call.content_length > limit:
            if not call.expect_continue:  # the client will send it anyway: let it, then say 413
                await _drain(receive, min(call.content_length, DRAIN_LIMIT_BYTES))
            raise BodyTooLarge
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body = message.get("body", b"")
        if not message.get("more_body"):
            if len(body) > limit:
                raise BodyTooLarge
            return [body]
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body"):
                    await _drain(receive, DRAIN_LIMIT_BYTES)
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                return chunks

    def _flags_of(self, query_string: bytes, data: dict[str, Any]) -> Flags:
        """Flags (query wins over body), cached: a load test sends the same few combinations."""
        if GUARDRAILS in data or RESPONSE_GUARDRAILS in data or INGEST_DATA in data or AKTO_CONNECTOR in data:
            key: Any = (query_string, _scalar(data.get(GUARDRAILS)), _scalar(data.get(RESPONSE_GUARDRAILS)),
                        _scalar(data.get(INGEST_DATA)), _scalar(data.get(AKTO_CONNECTOR)))
        else:  # connectors put flags in the query: the query string alone decides
            key = query_string
        flags = self._flags.get(key)
        if flags is None:
            flags = Flags.resolve(parse_query(query_string), data) if (query_string or data) else _NO_FLAGS
            if len(self._flags) >= _CACHE_SIZE:
                self._flags.clear()
            self._flags[key] = flags
        return flags

    def _app_of(self, request_headers: Any) -> str:
        if type(request_headers) is not str:
            return ""
        app = self._apps.get(request_headers)
        if app is None:
            app = app_of(request_headers)
            if len(self._apps) >= _CACHE_SIZE:
                self._apps.clear()
            self._apps[request_headers] = app
        return app

    def _http_proxy(self, method: str, query_string: bytes, body: bytes, ns: Namespace,
                    entry: JournalEntry) -> RouteResult:
        try:
            data = parse_envelope(body)
        except BadRequest as bad:
            entry.error = bad.message
            return Answer.of_json(failure_body(bad.message, bad.error), status=422), None, True
        flags = entry.flags = self._flags_of(query_string, data)
        request_payload = data.get("requestPayload")
        response_payload = data.get("responsePayload")
        request_headers = data.get("requestHeaders")
        app = self._app_of(request_headers)
        self._journal_payloads(entry, request_payload, response_payload, request_headers, app)
        if not request_payload:
            entry.error = MISSING_PAYLOAD_MESSAGE
            return Answer.of_json(failure_body(MISSING_PAYLOAD_MESSAGE, "requestPayload is required"), 422), None, True
        memo_key = (flags.guardrails, flags.response_guardrails, request_payload,
                    response_payload if flags.response_guardrails else None, app)
        memo = ns.answers.get(memo_key)
        if memo is None:
            try:
                memo = self._decide(ns, flags, request_payload, response_payload, app)
            except Exception as exc:  # noqa: BLE001 - the real service answers any failure with this 422
                log.exception("policy evaluation failed")
                entry.error = f"Unexpected error: {exc}"
                failed = Answer.of_json({"success": False, "message": entry.error, "data": {"error": str(exc)}}, 422)
                return failed, None, False
            ns.answers.remember(memo_key, memo, len(memo[0]) + len(request_payload) + len(response_payload or ""))
        body_bytes, answer_json, request_verdict, response_verdict = memo  # type: ignore[misc]
        entry.request_verdict = self._journal_verdict(entry, request_verdict)
        entry.response_verdict = self._journal_verdict(entry, response_verdict)
        ingest = None
        if flags.ingest_data:
            ingest = self._ingest_record(ns, entry, data, flags, app, answer_json["data"].get("guardrailsResult"))
        return Answer(body=body_bytes, json=answer_json), ingest, True

    @staticmethod
    def _decide(ns: Namespace, flags: Flags, request_payload: str, response_payload: str | None,
                app: str) -> tuple[bytes, dict[str, Any], Verdict | None, Verdict | None]:
        """Policies on each direction asked for, merged when both: the 200 body, serialised once."""
        request_verdict = ns.policies.evaluate(request_payload, "request", app) if flags.guardrails else None
        response_verdict = (
            ns.policies.evaluate(response_payload or "", "response", app) if flags.response_guardrails else None
        )
        answer_json = success_body(guardrails_result(request_verdict, response_verdict))
        return orjson.dumps(answer_json), answer_json, request_verdict, response_verdict

    def _validate_request(self, method: str, query_string: bytes, body: bytes, ns: Namespace,
                          entry: JournalEntry) -> RouteResult:
        return self._validate(body, ns, entry, "request")

    def _validate_response(self, method: str, query_string: bytes, body: bytes, ns: Namespace,
                           entry: JournalEntry) -> RouteResult:
        return self._validate(body, ns, entry, "response")

    def _validate(self, body: bytes, ns: Namespace, entry: JournalEntry, direction: Direction) -> RouteResult:
        """guardrails-service: a bare verdict; 400 ``Invalid request format`` on a body it cannot bind."""
        if entry.method != "POST":
            entry.error = "method not allowed"
            return Answer.of_json(validate_error_body("Method Not Allowed"), status=405), None, True
        try:
            data = parse_envelope(body)
        except BadRequest as bad:
            entry.error = bad.message
            return Answer.of_json(validate_error_body(INVALID_REQUEST_FORMAT), status=400), None, True
        request_headers = data.get("requestHeaders")
        app = self._app_of(request_headers)
        if direction == "request":
            field_text = data.get("requestPayload") or ""
            if not field_text and ns.profile.legacy_payload == "evaluated":
                field_text = data.get("payload") or ""
        else:
            field_text = data.get("responsePayload") or data.get("payload") or ""
        self._journal_payloads(entry, data.get("requestPayload"), data.get("responsePayload"), request_headers, app)
        if "payload" in data:
            self._journal_legacy_payload(entry, data, direction, ns.profile.legacy_payload == "evaluated")
        if not field_text:
            verdict = Verdict(allowed=True, reason=f"No {direction} body provided")
        else:
            try:
                verdict = ns.policies.evaluate(field_text, direction, app)
            except Exception as exc:  # noqa: BLE001 - guardrails-service answers any failure with this 500
                log.exception("policy evaluation failed")
                entry.error = f"{VALIDATION_FAILED}: {exc}"
                return Answer.of_json(validate_error_body(VALIDATION_FAILED), status=500), None, False
        if direction == "request":
            entry.request_verdict = self._journal_verdict(entry, verdict)
        else:
            entry.response_verdict = self._journal_verdict(entry, verdict)
        return Answer.of_json(verdict.to_wire()), None, True

    def _truefoundry(self, method: str, query_string: bytes, body: bytes, ns: Namespace,
                     entry: JournalEntry) -> RouteResult:
        """Akto's TrueFoundry guardrail endpoint (truefoundry.md 6-8): ``{}`` with 200, 400 (blocked) or 422.
        Whether ``sync`` matters is the namespace's profile (``truefoundry_sync``)."""
        try:
            call = TrueFoundryCall.parse(parse_envelope(body), parse_query(query_string))
        except BadRequest as bad:
            entry.error = bad.message
            return Answer.of_json({"actionErrors": []}, status=422), None, True
        sync_honoured = ns.profile.truefoundry_sync == "honoured"
        check, block, ingest = call.plan(sync_honoured)
        data = call.envelope(blocked=False)
        flags = entry.flags = Flags(guardrails=check, ingest_data=ingest, akto_connector="truefoundry")
        app = self._app_of(data["requestHeaders"])
        self._journal_payloads(entry, data["requestPayload"], data.get("responsePayload"), data["requestHeaders"], app)
        entry.note = call.note(sync_honoured)
        verdict = ns.policies.evaluate(data["requestPayload"], "request", app) if check else None
        entry.request_verdict = self._journal_verdict(entry, verdict)
        blocked = block and verdict is not None and not verdict.allowed
        record = None
        if blocked:  # the blocked-request record (status 400, "forbidden"), made from the call, not the verdict
            record = self._ingest_record(ns, entry, call.envelope(blocked=True), flags, app, None)
        elif ingest:
            record = self._ingest_record(ns, entry, data, flags, app, verdict.to_wire() if verdict else None)
        return Answer.of_json({}, status=400 if blocked else 200), record, True

    def _journal_payloads(self, entry: JournalEntry, request_payload: Any, response_payload: Any,
                          request_headers: Any, app: str) -> None:
        cap = self.payload_cap
        entry.app = app
        size = 0
        if request_payload:
            size = len(request_payload)
            if size > cap:
                request_payload, size, entry.truncated = request_payload[:cap], cap, True
        if response_payload:
            length = len(response_payload)
            if length > cap:
                response_payload, length, entry.truncated = response_payload[:cap], cap, True
            size += length
        if request_headers:  # a connector that forwards credentials must not put them in the journal
            if self._token and self._token in request_headers:
                request_headers = request_headers.replace(self._token, "***")
            request_headers = self.registry.mask_api_keys(request_headers)
            length = len(request_headers)
            if length > cap:
                request_headers, length, entry.truncated = request_headers[:cap], cap, True
            size += length
        entry.request_payload, entry.response_payload, entry.request_headers = request_payload, response_payload, request_headers
        entry.size = size

    def _journal_legacy_payload(self, entry: JournalEntry, data: dict[str, Any], direction: Direction,
                                request_reads_it: bool) -> None:
        """Keep a body's legacy ``payload`` (cut to the cap, counted in the entry's size) and say why it was
        ignored, or that it was evaluated in place of an empty ``responsePayload`` (``/validate/response``
        accepts it) or ``requestPayload`` (``request_reads_it``: profile ``validate-legacy-payload``)."""
        legacy = data["payload"]
        if not legacy:
            entry.note = LEGACY_PAYLOAD_EMPTY
            return
        if len(legacy) > self.payload_cap:
            legacy, entry.truncated = legacy[:self.payload_cap], True
        entry.legacy_payload = legacy
        entry.size += len(legacy)
        if direction == "response" and not data.get("responsePayload"):
            entry.note = LEGACY_PAYLOAD_EVALUATED
        elif direction == "request" and request_reads_it and not data.get("requestPayload"):
            entry.note = LEGACY_PAYLOAD_EVALUATED_BY_PROFILE
        else:
            entry.note = LEGACY_PAYLOAD_IGNORED.format(field=f"{direction}Payload")

    def _journal_verdict(self, entry: JournalEntry, verdict: Verdict | None) -> Verdict | None:
        """The verdict as the journal keeps it: ``ModifiedPayload`` (an allow echoes the whole field text)
        cut to the payload cap, and counted in the entry's size unless it is the payload the entry already
        counts (or the memo's copy of it, which the memo's own bound covers), so the ring's bound holds."""
        if verdict is None:
            return None
        text = verdict.modified_payload
        if len(text) > self.payload_cap:
            text = text[:self.payload_cap]
            verdict = verdict.model_copy(update={"modified_payload": text})
            entry.truncated = True
            entry.size += len(text)
        elif text and text != entry.request_payload and text != entry.response_payload and text != entry.legacy_payload:
            entry.size += len(text)
        return verdict

    def _ingest_record(self, ns: Namespace, entry: JournalEntry, data: dict[str, Any], flags: Flags, app: str,
                       result: dict[str, Any] | None) -> IngestRecord:
        """The ingest record this body makes (sequence number and time are stamped per call)."""
        cap = self.payload_cap
        request_payload, _ = truncate(data.get("requestPayload"), cap)
        response_payload, _ = truncate(data.get("responsePayload"), cap)
        verdict_size = 0
        if result is not None:
            result, verdict_size = _capped_result(result, cap, (request_payload, response_payload))
        status_code = data.get("statusCode")
        status = data.get("status")
        return IngestRecord(
            seq=0, time=0.0, namespace=ns.name, path=data.get("path") or "",
            method=data.get("method") or "", connector=flags.akto_connector, app=app,
            status_code=status_code if type(status_code) is str else "",
            status=status if type(status) is str else "",
            request_payload=request_payload, response_payload=response_payload,
            tag=tag_as_stored(data.get("tag"), flags.akto_connector), verdict=result, done=True,
            size=len(request_payload or "") + len(response_payload or "") + verdict_size,
            akto_account_id=_text(data.get("akto_account_id")), akto_vxlan_id=_text(data.get("akto_vxlan_id")),
        )

    # -- delivery -----------------------------------------------------------------------------------------

    async def _answer(self, scope: Scope, receive: Receive, send: Send, ns: Namespace, entry: JournalEntry,
                      answer: Answer, call: CallInfo, started: float,
                      messages: tuple[Message, Message] | None = None) -> None:
        """Deliver the computed answer, or hand it to the fault a rule picks; journal either way.
        ``messages``: the answer's ASGI messages when already built (a memoised reply)."""
        fault = self._pick_fault(ns, call)
        if fault is not None and answer.chunks is not None:  # faults read and bend whole answers
            answer, messages = answer.whole(), None
        exchange = Exchange(scope, receive, send, answer, started, messages)
        if call.path == HTTP_PROXY_PATH and (call.flags.guardrails or call.flags.response_guardrails):
            exchange.gateway = ns.profile  # the gateway stands between this call and guardrails-service
        if fault is None:
            entry.status = answer.status
            entry.done = True
            ns.journal.append(self._sealed(entry, ns, started))
            await exchange.deliver()
            return
        entry.fault = fault.type
        entry.seq = ns.journal.next_seq()
        ns.journal.append(entry)  # visible (pending) while the fault holds the answer
        try:
            await fault.apply(exchange)
        finally:
            entry.status = exchange.status_sent
            entry.duration_ms = (time.perf_counter() - started) * 1000
            entry.done = True
            ns.journal.notify()

    def _pick_fault(self, ns: Namespace, call: CallInfo) -> Fault | None:
        """Namespace rules first, then global ones."""
        fault = ns.rules.pick(call) if len(ns.rules) else None
        global_rules = self.registry.global_rules
        if fault is None and len(global_rules):
            fault = global_rules.pick(call)
        return fault

    async def _refuse_while_down(self, scope: Scope, receive: Receive, send: Send, ns: Namespace,
                                 entry: JournalEntry, started: float) -> None:
        """A down namespace on a shared port: every call is reset (only a port can refuse connections)."""
        down = ns.rules.has_down() or self.registry.global_rules.has_down() or Down()
        entry.fault = down.type
        entry.error = "namespace is down"
        entry.done = True
        ns.journal.append(self._sealed(entry, ns, started))
        await down.apply(Exchange(scope, receive, send, Answer()))

    @staticmethod
    def _sealed(entry: JournalEntry, ns: Namespace, started: float) -> JournalEntry:
        entry.seq = ns.journal.next_seq()
        entry.duration_ms = (time.perf_counter() - started) * 1000
        return entry


def guardrails_result(request_verdict: Verdict | None, response_verdict: Verdict | None) -> dict[str, Any] | None:
    """The ``guardrailsResult`` of the directions that ran: one verdict flat, both merged, none: absent."""
    if request_verdict is not None and response_verdict is not None:
        return merge_verdicts(request_verdict, response_verdict)
    if request_verdict is not None:
        return request_verdict.to_wire()
    if response_verdict is not None:
        return response_verdict.to_wire()
    return None


def _call_info(entry: JournalEntry, body: bytes, query_string: bytes = b"", status: int | None = None) -> CallInfo:
    """What fault rules and scripted verdicts match on for a call, from its draft journal entry and raw body."""
    flags = entry.flags or _NO_FLAGS
    return CallInfo(path=entry.path, method=entry.method, flags=flags, connector=flags.akto_connector,
                    app=entry.app, body_text=body.decode("utf-8", errors="replace"), namespace=entry.namespace,
                    query_string=query_string, request_verdict=entry.request_verdict,
                    response_verdict=entry.response_verdict, status=status)


def _memo_key(path: str, method: str, query_string: bytes, body: bytes) -> tuple[str, str, bytes, bytes] | None:
    """The key of an exact call in ``Namespace.replies``; None for a body too big to memoise (hashing it for a
    memo that cannot keep it would waste time)."""
    return (path, method, query_string, body) if len(body) <= _MEMO_BODY_LIMIT else None


def _remember(ns: Namespace, key: tuple[str, str, bytes, bytes] | None, reply: Reply, body: bytes) -> None:
    if key is not None and reply.keep:
        ns.replies.remember(key, reply, reply.size(body))


def _blank_entry(ns: Namespace, when: float, method: str, path: str) -> JournalEntry:
    """A journal entry with nothing decided yet (a route or an error path fills it in)."""
    return JournalEntry(0, when, ns.name, method, path, None, "", None, None, None, False, None, None, None, None,
                        None, None, False, 0)


def _scalar(value: Any) -> Any:
    """A flag value as a hashable cache key part (other JSON types count as absent, as for Akto)."""
    return value if type(value) is str or type(value) is bool else None


async def _drain(receive: Receive, limit: int) -> None:
    """Read and discard up to ``limit`` bytes of a body we refuse, keeping nothing."""
    seen = 0
    while seen <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body"):
            return


def _capped_result(result: dict[str, Any], cap: int, echoes: tuple[str | None, ...]) -> tuple[dict[str, Any], int]:
    """A ``guardrailsResult`` with every ``ModifiedPayload`` (merged shape: also those of ``requestResult``
    and ``responseResult``) cut to ``cap``, copied only when one was longer; and how many characters the
    record holds because of them (nothing for an echo of a payload it already counts)."""
    capped, size = result, 0
    for key, value in result.items():
        if key == "ModifiedPayload" and type(value) is str:
            kept: Any = value[:cap]
            size += len(kept) if kept is not value or value not in echoes else 0
        elif type(value) is dict:
            kept, inner_size = _capped_result(value, cap, echoes)
            size += inner_size
        else:
            continue
        if kept is not value:
            if capped is result:
                capped = dict(result)
            capped[key] = kept
    return capped, size


def _text(value: Any) -> str:
    """An envelope id as text (connectors send strings; a number is tolerated, anything else is blank)."""
    return str(value) if type(value) in (str, int) else ""
