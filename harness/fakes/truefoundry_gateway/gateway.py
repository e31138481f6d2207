"""A TrueFoundry AI gateway simulator: client -> gateway -> custom guardrails -> LLM, over real sockets.

It calls guardrail URLs the way TrueFoundry's gateway does (../shared/contracts/truefoundry.md sections
1-4 and 9; the per-call contract is in :mod:`harness.fakes.truefoundry_gateway.guardrails`) in front of an OpenAI-compatible
LLM (the fake in :mod:`harness.fakes.llm`):

1. input **Mutate** guardrails run one after another by priority and may rewrite the request;
2. input **Validate** guardrails start at once, in parallel, and (``parallel_input_validation``, the
   documented behaviour) the model call starts alongside them and is cancelled if one blocks;
3. output Mutate, then output Validate guardrails run on the model's answer;
4. a block answers the client HTTP 400 with ``error.type = guardrail_checks_failed``.

Streamed requests (``stream: true``) run input guardrails before the model call starts (a simplification)
and skip output guardrails (``output_guardrails_on_stream: skip``, what third-party docs report) or buffer
the stream and check it (``buffer``).

Guardrails are selected per request with ``X-TFY-GUARDRAILS: {"llm_input_guardrails": [...],
"llm_output_guardrails": [...]}`` (it replaces the default rule), else by the settings' default lists.
``X-TFY-METADATA`` (a JSON object of strings) becomes ``context.metadata``.

Admin API (``/__tfy``): ``GET|PATCH settings``, ``GET|PUT|POST guardrails``, ``GET|DELETE exchanges``
(what happened to each request: every guardrail call, the model call, the client's status), ``POST reset``.
Run it with ``python -m harness.fakes.truefoundry_gateway --port P --llm-url http://127.0.0.1:L/v1``, or use
:class:`TfyGatewayServer` / :class:`TfyGatewayClient` from :mod:`harness.fakes.truefoundry_gateway.client`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Literal, Sequence

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from akto_wire import IDLE_KEEPALIVE_S
from harness.fakes import FAKE_KEEP_ALIVE_S
from harness.fakes.truefoundry_gateway.guardrails import (
    Contract,
    Effect,
    EnforcingStrategy,
    GuardrailConfig,
    GuardrailResult,
    Hook,
    Operation,
    Outcome,
    call_guardrail,
)

log = logging.getLogger("harness.fakes.truefoundry_gateway")

CHAT_PATHS = ("/api/llm/chat/completions", "/api/llm/v1/chat/completions", "/v1/chat/completions", "/chat/completions")
GUARDRAILS_HEADER = "x-tfy-guardrails"
METADATA_HEADER = "x-tfy-metadata"
RESULT_HEADER = "x-tfy-sim-guardrails"
DEFAULT_SUBJECT = {"subjectId": "sim-user-1", "subjectType": "user", "subjectSlug": "sim.user@example.com",
                   "subjectDisplayName": "Simulated User"}
MAX_EXCHANGES = 1000

__all__ = [
    "Contract", "EnforcingStrategy", "GatewaySettings", "GuardrailConfig", "Hook", "Operation", "Outcome",
    "TfyGateway", "create_app", "main",
]


class GatewaySettings(BaseModel):
    """How the simulated gateway behaves (the admin API's ``settings``)."""

    model_config = ConfigDict(extra="forbid")

    #: OpenAI-compatible base URL of the model provider, ``/v1`` included (the gateway adds ``/chat/completions``).
    llm_url: str
    contract: Contract = Contract.CURRENT
    #: Start the model call while input Validate guardrails still run (documented), or only after them.
    parallel_input_validation: bool = True
    output_guardrails_on_stream: Literal["skip", "buffer"] = "skip"
    #: The default rule: guardrails applied when a request has no ``X-TFY-GUARDRAILS`` header.
    input_guardrails: list[str] = Field(default_factory=list)
    output_guardrails: list[str] = Field(default_factory=list)
    #: ``context.user`` sent to guardrails (TrueFoundry derives it from the caller's key).
    subject: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_SUBJECT))
    llm_timeout_s: float = Field(60.0, gt=0)
    #: Simulator only: add ``x-tfy-sim-guardrails`` to client answers (``name=status:outcome:effect; ...``)
    #: so a client-side check can see what each guardrail answered. Not a TrueFoundry header.
    result_header: bool = True


class BadRequest(Exception):
    """The client's request cannot be served (answered 400 in OpenAI's error shape)."""


@dataclass
class ExchangeRecord:
    """What happened to one client request, in order. Mutable while the request runs."""

    seq: int
    model: str | None
    stream: bool
    started: float = field(default_factory=time.time)
    guardrails: list[dict[str, Any]] = field(default_factory=list)
    #: not_called | started | completed | cancelled | failed
    llm: str = "not_called"
    llm_status: int | None = None
    client_status: int | None = None
    blocked_by: str | None = None  # llm_input | llm_output
    done: bool = False
    results: list[str] = field(default_factory=list)  # GuardrailResult.summary() in call order

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "model": self.model, "stream": self.stream, "started": self.started,
                "guardrails": self.guardrails, "llm": self.llm, "llm_status": self.llm_status,
                "client_status": self.client_status, "blocked_by": self.blocked_by, "done": self.done}


@dataclass
class Selection:
    input: list[GuardrailConfig]
    output: list[GuardrailConfig]


class TfyGateway:
    """The gateway's state (settings, guardrail registry, exchange journal) and its request flow."""

    def __init__(self, settings: GatewaySettings, guardrails: Sequence[GuardrailConfig] = ()) -> None:
        self.initial_settings = settings
        self.settings = settings
        self.guardrails: dict[str, GuardrailConfig] = {g.name: g for g in guardrails}
        self.journal: deque[ExchangeRecord] = deque(maxlen=MAX_EXCHANGES)
        self._seq = 0
        # keepalive_expiry below uvicorn's 5 s keep-alive, which hosts the guardrail endpoints it calls.
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(600.0), trust_env=False,
                                      limits=httpx.Limits(max_connections=200, max_keepalive_connections=50,
                                                          keepalive_expiry=IDLE_KEEPALIVE_S))

    # ------------------------------------------------------------------------------------ the flow

    async def chat(self, request: Request) -> Response:
        try:
            body = _client_body(await request.body())
            selection = self._select(request.headers.get(GUARDRAILS_HEADER))
            context = {"user": self.settings.subject, "metadata": _metadata(request.headers.get(METADATA_HEADER))}
        except BadRequest as exc:
            return _openai_error(400, str(exc), "invalid_request_error")
        self._seq += 1
        record = ExchangeRecord(seq=self._seq, model=body.get("model"), stream=body.get("stream") is True)
        self.journal.append(record)
        try:
            response = await self._complete(record, body, selection, context)
        except Exception:
            record.done = True
            raise
        record.client_status = response.status_code
        if self.settings.result_header and record.results:
            response.headers[RESULT_HEADER] = "; ".join(record.results)
        if not isinstance(response, StreamingResponse):
            record.done = True
        return response

    async def _complete(self, record: ExchangeRecord, body: dict[str, Any], selection: Selection,
                        context: dict[str, Any]) -> Response:
        validates = [g for g in selection.input if g.operation is Operation.VALIDATE]
        mutates = sorted((g for g in selection.input if g.operation is Operation.MUTATE), key=lambda g: g.priority)
        original = body
        validate_tasks = [asyncio.create_task(self._run(record, g, _payload(g, original, None, context))) for g in validates]
        llm_task: asyncio.Task[tuple[int, Any]] | None = None
        try:
            for guardrail in mutates:
                result = await self._run(record, guardrail, _payload(guardrail, body, None, context))
                if result.effect is Effect.BLOCK:
                    return self._block(record, Hook.LLM_INPUT, [result])
                if result.replacement is not None:
                    body = result.replacement
            stream = body.get("stream") is True
            if self.settings.parallel_input_validation and not stream:
                llm_task = asyncio.create_task(self._call_llm(record, body))
            results = await asyncio.gather(*validate_tasks)
            blocking = [r for r in results if r.effect is Effect.BLOCK]
            if blocking:
                if llm_task is not None:
                    llm_task.cancel()
                    await asyncio.gather(llm_task, return_exceptions=True)
                return self._block(record, Hook.LLM_INPUT, blocking)
        finally:
            for task in validate_tasks:
                task.cancel()
        if stream:
            return await self._stream(record, body, selection, context)
        status, answer = await (llm_task if llm_task is not None else self._call_llm(record, body))
        if status >= 300 or not isinstance(answer, dict):
            return _provider_answer(status, answer)
        return await self._output(record, body, answer, selection, context)

    async def _output(self, record: ExchangeRecord, body: dict[str, Any], answer: dict[str, Any],
                      selection: Selection, context: dict[str, Any]) -> Response:
        blocked, answer = await self._output_checks(record, body, answer, selection, context)
        return blocked if blocked is not None else JSONResponse(answer)

    async def _output_checks(self, record: ExchangeRecord, body: dict[str, Any], answer: dict[str, Any],
                             selection: Selection, context: dict[str, Any]) -> tuple[Response | None, dict[str, Any]]:
        mutates = sorted((g for g in selection.output if g.operation is Operation.MUTATE), key=lambda g: g.priority)
        for guardrail in mutates:
            result = await self._run(record, guardrail, _payload(guardrail, body, answer, context))
            if result.effect is Effect.BLOCK:
                return self._block(record, Hook.LLM_OUTPUT, [result]), answer
            if result.replacement is not None:
                answer = result.replacement
        validates = [g for g in selection.output if g.operation is Operation.VALIDATE]
        results = await asyncio.gather(*(self._run(record, g, _payload(g, body, answer, context)) for g in validates))
        blocking = [r for r in results if r.effect is Effect.BLOCK]
        return (self._block(record, Hook.LLM_OUTPUT, blocking) if blocking else None), answer

    async def _stream(self, record: ExchangeRecord, body: dict[str, Any], selection: Selection,
                      context: dict[str, Any]) -> Response:
        record.llm = "started"
        request = self.http.build_request("POST", self._llm_endpoint(), json=_provider_body(body),
                                          timeout=self.settings.llm_timeout_s)
        try:
            upstream = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            record.llm = "failed"
            return _openai_error(502, f"model provider unreachable: {type(exc).__name__}", "upstream_error")
        record.llm_status = upstream.status_code
        if upstream.status_code >= 300 or not selection.output or self.settings.output_guardrails_on_stream == "skip":
            return StreamingResponse(self._relay(record, upstream), status_code=upstream.status_code,
                                     media_type=upstream.headers.get("content-type", "text/event-stream"))
        try:
            raw = await upstream.aread()
        finally:
            await upstream.aclose()
        record.llm = "completed"
        answer = _assemble_stream(raw)
        blocked, checked = await self._output_checks(record, body, answer, selection, context)
        if blocked is not None:
            return blocked
        content = raw if checked is answer else _sse_from_completion(checked)
        return Response(content, media_type="text/event-stream")

    async def _relay(self, record: ExchangeRecord, upstream: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
            record.llm = "completed"
        except httpx.HTTPError:
            record.llm = "failed"
        finally:
            record.done = True
            await upstream.aclose()

    async def _call_llm(self, record: ExchangeRecord, body: dict[str, Any]) -> tuple[int, Any]:
        record.llm = "started"
        try:
            response = await self.http.post(self._llm_endpoint(), json=_provider_body(body),
                                            timeout=self.settings.llm_timeout_s)
        except asyncio.CancelledError:
            record.llm = "cancelled"
            raise
        except httpx.HTTPError as exc:
            record.llm = "failed"
            return 502, {"error": {"message": f"model provider unreachable: {type(exc).__name__}", "type": "upstream_error"}}
        record.llm, record.llm_status = "completed", response.status_code
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    async def _run(self, record: ExchangeRecord, guardrail: GuardrailConfig, payload: dict[str, Any]) -> GuardrailResult:
        result = await call_guardrail(self.http, guardrail, payload, self.settings.contract)
        record.guardrails.append({**result.to_json(), "sent": payload})
        record.results.append(result.summary())
        if result.effect is Effect.LET_THROUGH:
            log.warning("tfy gateway: %s %s %s under %s: let through (%s)", result.hook.value, result.name,
                        result.outcome.value, result.strategy.value, result.error or result.message or "")
        return result

    def _block(self, record: ExchangeRecord, hook: Hook, results: list[GuardrailResult]) -> Response:
        record.blocked_by = hook.value
        label, key = ("Input", "input_guardrails") if hook is Hook.LLM_INPUT else ("Output", "output_guardrails")
        checks = []
        for result in results:
            if result.outcome is Outcome.VIOLATION:
                data: dict[str, Any] = {"verdict": False, "explanation": result.message or "", "guardrailUrl": result.url}
            else:
                data = {"error": result.body if result.body not in (None, "") else result.error, "guardrailUrl": result.url}
            checks.append({"guardrail_integration": result.name, "result": "failed", "data": data})
        names = ", ".join(r.name for r in results)
        return JSONResponse({
            "status": "failure",
            "message": f"{label} Guardrail checks failed for integrations: [{names}]",
            "error": {"type": "guardrail_checks_failed", "code": "400"},
            "guardrail_checks": {key: checks},
        }, status_code=400)

    def _select(self, header: str | None) -> Selection:
        if header is None:
            names_in, names_out = self.settings.input_guardrails, self.settings.output_guardrails
            return Selection(self._lookup(names_in, Hook.LLM_INPUT, "default rule"),
                             self._lookup(names_out, Hook.LLM_OUTPUT, "default rule"))
        try:
            chosen = json.loads(header)
        except ValueError:
            raise BadRequest(f"{GUARDRAILS_HEADER} is not JSON") from None
        if not isinstance(chosen, dict):
            raise BadRequest(f"{GUARDRAILS_HEADER} must be a JSON object")
        lists = []
        for key in ("llm_input_guardrails", "llm_output_guardrails"):
            names = chosen.get(key, [])
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise BadRequest(f"{GUARDRAILS_HEADER}: {key} must be a list of names")
            lists.append(names)
        return Selection(self._lookup(lists[0], Hook.LLM_INPUT, GUARDRAILS_HEADER),
                         self._lookup(lists[1], Hook.LLM_OUTPUT, GUARDRAILS_HEADER))

    def _lookup(self, names: list[str], hook: Hook, where: str) -> list[GuardrailConfig]:
        found = []
        for name in names:
            guardrail = self.guardrails.get(name)
            if guardrail is None:
                raise BadRequest(f"{where}: no guardrail named {name!r}")
            if guardrail.hook is not hook:
                raise BadRequest(f"{where}: guardrail {name!r} is a {guardrail.hook.value} guardrail")
            found.append(guardrail)
        return found

    def _llm_endpoint(self) -> str:
        return self.settings.llm_url.rstrip("/") + "/chat/completions"

    # ------------------------------------------------------------------------------------ admin

    def reset(self) -> None:
        self.settings = self.initial_settings
        self.guardrails.clear()
        self.journal.clear()

    async def aclose(self) -> None:
        await self.http.aclose()


def _client_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("model is required")
    if not isinstance(body.get("messages"), list):
        raise BadRequest("messages must be a list")
    return body


def _metadata(header: str | None) -> dict[str, str]:
    if header is None:
        return {}
    try:
        metadata = json.loads(header)
    except ValueError:
        raise BadRequest(f"{METADATA_HEADER} is not JSON") from None
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise BadRequest(f"{METADATA_HEADER} must be a JSON object of strings")
    return metadata


def _payload(guardrail: GuardrailConfig, body: dict[str, Any], answer: dict[str, Any] | None,
             context: dict[str, Any]) -> dict[str, Any]:
    """The guardrail request: ``responseBody`` only on output hooks."""
    payload: dict[str, Any] = {"requestBody": body}
    if answer is not None:
        payload["responseBody"] = answer
    payload["context"] = context
    payload["config"] = guardrail.config
    return payload


def _provider_body(body: dict[str, Any]) -> dict[str, Any]:
    """TrueFoundry model ids are ``<provider account>/<model>``; the provider only sees the model."""
    model = body.get("model")
    if isinstance(model, str) and "/" in model:
        return {**body, "model": model.split("/", 1)[1]}
    return body


def _provider_answer(status: int, answer: Any) -> Response:
    if isinstance(answer, (dict, list)):
        return JSONResponse(answer, status_code=status)
    return Response(str(answer), status_code=status, media_type="text/plain")


def _openai_error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": str(status)}}, status_code=status)


def _assemble_stream(raw: bytes) -> dict[str, Any]:
    """The ChatCompletion an OpenAI SSE stream adds up to (for output guardrails in ``buffer`` mode)."""
    content: list[str] = []
    first: dict[str, Any] = {}
    finish = None
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            continue
        first = first or event
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                content.append(delta["content"])
            finish = choice.get("finish_reason") or finish
    return {"id": first.get("id", "chatcmpl-sim"), "object": "chat.completion", "created": first.get("created", 0),
            "model": first.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(content)},
                         "finish_reason": finish or "stop"}]}


def _sse_from_completion(answer: dict[str, Any]) -> bytes:
    """A mutated buffered answer sent back as one SSE chunk plus ``[DONE]``."""
    choices = answer.get("choices") or [{}]
    message = (choices[0] or {}).get("message") or {}
    chunk = {"id": answer.get("id", "chatcmpl-sim"), "object": "chat.completion.chunk", "created": answer.get("created", 0),
             "model": answer.get("model", ""),
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": message.get("content", "")},
                          "finish_reason": "stop"}]}
    return f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()


# ---------------------------------------------------------------------------------------- the app

_GUARDRAIL_LIST = TypeAdapter(list[GuardrailConfig])


def create_app(gateway: TfyGateway) -> Starlette:
    """The gateway's ASGI app: the chat route plus the ``/__tfy`` admin API."""

    async def chat(request: Request) -> Response:
        return await gateway.chat(request)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def settings(request: Request) -> Response:
        if request.method == "PATCH":
            try:
                changes = await _json_object(request)
                gateway.settings = GatewaySettings.model_validate({**gateway.settings.model_dump(), **changes})
            except (ValueError, ValidationError) as exc:
                return _admin_error(exc)
        return JSONResponse(gateway.settings.model_dump(mode="json"))

    async def guardrails(request: Request) -> Response:
        try:
            if request.method == "PUT":
                configs = _GUARDRAIL_LIST.validate_python(json.loads(await request.body() or b"null"))
                gateway.guardrails = {g.name: g for g in configs}
            elif request.method == "POST":
                config = GuardrailConfig.model_validate(await _json_object(request))
                gateway.guardrails[config.name] = config
        except (ValueError, ValidationError) as exc:
            return _admin_error(exc)
        return JSONResponse([g.model_dump(mode="json") for g in gateway.guardrails.values()])

    async def exchanges(request: Request) -> Response:
        if request.method == "DELETE":
            gateway.journal.clear()
            return JSONResponse({"exchanges": []})
        since = int(request.query_params.get("since", "0") or 0)
        return JSONResponse({"exchanges": [r.to_json() for r in gateway.journal if r.seq > since]})

    async def reset(_: Request) -> Response:
        gateway.reset()
        return JSONResponse({"status": "reset"})

    routes = [Route(path, chat, methods=["POST"]) for path in CHAT_PATHS] + [
        Route("/__tfy/health", health),
        Route("/__tfy/settings", settings, methods=["GET", "PATCH"]),
        Route("/__tfy/guardrails", guardrails, methods=["GET", "PUT", "POST"]),
        Route("/__tfy/exchanges", exchanges, methods=["GET", "DELETE"]),
        Route("/__tfy/reset", reset, methods=["POST"]),
    ]

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await gateway.aclose()

    return Starlette(routes=routes, lifespan=lifespan)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ValueError("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _admin_error(exc: Exception) -> JSONResponse:
    if isinstance(exc, ValidationError):
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        message = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
        return JSONResponse({"error": message, "errors": errors}, status_code=422)
    return JSONResponse({"error": str(exc)}, status_code=422)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.fakes.truefoundry_gateway",
                                     description="TrueFoundry AI gateway simulator (127.0.0.1 unless --host).")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 only inside a container)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--llm-url", required=True, help="OpenAI-compatible base URL, /v1 included")
    parser.add_argument("--contract", choices=[c.value for c in Contract], default=Contract.CURRENT.value)
    parser.add_argument("--guardrails", help="JSON file with a list of guardrail configs")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configs: list[GuardrailConfig] = []
    try:
        settings = GatewaySettings(llm_url=args.llm_url, contract=Contract(args.contract))
        if args.guardrails:
            with open(args.guardrails, encoding="utf-8") as handle:
                configs = _GUARDRAIL_LIST.validate_python(json.load(handle))
    except (OSError, ValueError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    uvicorn.run(create_app(TfyGateway(settings, configs)), host=args.host, port=args.port,
                log_level=args.log_level, access_log=False, timeout_keep_alive=FAKE_KEEP_ALIVE_S)
    return 0
