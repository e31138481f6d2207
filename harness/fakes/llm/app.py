"""The fake LLM provider as one Starlette app: OpenAI and Anthropic routes plus the ``/__fake`` script API.

Connectors under test forward traffic here instead of to a real provider. Every request is recorded
(bounded) before it is answered, so a test can tell whether the LLM was called, and with what, even when
the answer is delayed or cut. Provider routes are served both under ``/v1`` and at the root, because
clients disagree on whether ``api_base`` already ends in ``/v1``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator, Callable

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from harness.fakes.llm import anthropic_shapes, openai_shapes
from harness.fakes.llm.prompt import all_text, count_tokens, last_user_text
from harness.fakes.llm.script import DEFAULT_MAX_RECORDED, InjectedError, Provider, RecordedRequest, Recorder, Script

MAX_RECORDED_BODY_TEXT = 64 * 1024


class StreamAborted(Exception):
    """Raised inside a stream on purpose (``abort_stream_after``): uvicorn then drops the connection."""


class _CutStreams:
    """Swallow :class:`StreamAborted`: an app that returns mid-body makes uvicorn close the connection,
    which is the point, and logs one line instead of a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except StreamAborted:
            pass


class FakeLLMState:
    """The current script, the errors still to inject, the recording and the id counter."""

    def __init__(self, max_recorded: int = DEFAULT_MAX_RECORDED) -> None:
        self.script = Script()
        self.errors_left: int | None = None
        self.recorder = Recorder(max_recorded)
        self._ids = 0

    def set_script(self, script: Script) -> None:
        self.script = script
        self.errors_left = script.error.count if script.error else None

    def take_error(self) -> InjectedError | None:
        """The error this request must get, counting down ``count`` so the fake recovers after N."""
        error = self.script.error
        if error is None:
            return None
        if self.errors_left is not None:
            if self.errors_left <= 0:
                return None
            self.errors_left -= 1
        return error

    def next_id(self) -> int:
        self._ids += 1
        return self._ids


def _reportable(body: Any) -> bool:
    """Whether ``/__fake/requests`` can serialise this body (orjson stops at 255 levels of nesting)."""
    try:
        orjson.dumps(body)
    except TypeError:
        return False
    return True


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _default_reply(provider: Provider) -> str:
    return "Hello from fake-anthropic" if provider.startswith("anthropic") else "Hello from fake-openai"


def _error_response(provider: Provider, status: int, message: str, error_type: str | None = None, retry_after: int | None = None) -> Response:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    if provider.startswith("anthropic"):
        return _json(anthropic_shapes.error_body(status, message, error_type), status, headers)
    return _json(openai_shapes.error_body(status, message, error_type), status, headers)


def _missing_field(provider: Provider, body: dict[str, Any]) -> str | None:
    """The first required field a real provider would reject the request for, or ``None``."""
    required = {
        "openai.chat": ("model", "messages"),
        "openai.responses": ("model", "input"),
        "anthropic.messages": ("model", "max_tokens", "messages"),
    }.get(provider, ())
    for field in required:
        if field not in body:
            return field
    return None


def create_app(max_recorded: int = DEFAULT_MAX_RECORDED, state: FakeLLMState | None = None) -> Starlette:
    """The ASGI app. ``state`` is exposed as ``app.state.fake`` for in-process use."""
    fake = state or FakeLLMState(max_recorded)

    async def record(request: Request, provider: Provider) -> tuple[RecordedRequest, Any]:
        raw = await request.body()
        body: Any = None
        text: str | None = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                text = raw[:MAX_RECORDED_BODY_TEXT].decode("utf-8", errors="replace")
        recorded_body = body
        if body is not None and not _reportable(body):  # too deep for /__fake/requests: keep it as text
            recorded_body, text = None, raw[:MAX_RECORDED_BODY_TEXT].decode("utf-8", errors="replace")
        entry = RecordedRequest(
            seq=fake.recorder.next_seq(),
            at=time.time(),
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            provider=provider,
            stream=isinstance(body, dict) and body.get("stream") is True,
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]},
            json_body=recorded_body,
            body_text=text,
        )
        fake.recorder.add(entry)
        return entry, body

    async def provider_call(request: Request, provider: Provider, answer: Callable[[dict[str, Any], Script], Response]) -> Response:
        entry, body = await record(request, provider)
        script = fake.script
        error = fake.take_error()
        if script.first_byte_ms:
            await asyncio.sleep(script.first_byte_ms / 1000)
        if error is not None:
            entry.status = error.status
            return _error_response(provider, error.status, error.message, error.type, error.retry_after_s)
        if not isinstance(body, dict):
            entry.status = 400
            return _error_response(provider, 400, "request body must be a JSON object")
        missing = _missing_field(provider, body)
        if missing is not None:
            entry.status = 400
            return _error_response(provider, 400, f"Missing required parameter: '{missing}'.")
        return answer(body, script)

    def reply_text(body: dict[str, Any], script: Script, provider: Provider) -> str:
        if script.echo:
            return last_user_text(body)
        return script.reply if script.reply is not None else _default_reply(provider)

    async def paced(events: list[bytes], script: Script, content_range: range) -> AsyncIterator[bytes]:
        """Yield SSE events with ``chunk_interval_ms`` between them; abort after N content pieces if told."""
        cut_at = None
        if script.abort_stream_after is not None and script.abort_stream_after <= len(content_range):
            cut_at = content_range.start + script.abort_stream_after
        for index, data in enumerate(events):
            if index and script.chunk_interval_ms:
                await asyncio.sleep(script.chunk_interval_ms / 1000)
            if index == cut_at:
                raise StreamAborted(f"stream cut after {script.abort_stream_after} content pieces (abort_stream_after)")
            yield data

    def sse(events: list[bytes], script: Script, content_range: range, request_id: tuple[str, str]) -> StreamingResponse:
        return StreamingResponse(
            paced(events, script, content_range),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", request_id[0]: request_id[1]},
        )

    def openai_chat(body: dict[str, Any], script: Script) -> Response:
        n = fake.next_id()
        ident, created, model = f"chatcmpl-fake{n:06d}", int(time.time()), str(body["model"])
        text = reply_text(body, script, "openai.chat")
        prompt_tokens, completion_tokens = count_tokens(all_text(body)), count_tokens(text)
        request_id = ("x-request-id", f"req_fake{n:06d}")
        if body.get("stream") is not True:
            completion = openai_shapes.chat_completion(ident, created, model, text, prompt_tokens, completion_tokens)
            return _json(completion, headers=dict([request_id]))
        pieces = script.pieces(text)
        events = [openai_shapes.sse(openai_shapes.chat_chunk(ident, created, model, {"role": "assistant", "content": "", "refusal": None}))]
        events += [openai_shapes.sse(openai_shapes.chat_chunk(ident, created, model, {"content": piece})) for piece in pieces]
        events.append(openai_shapes.sse(openai_shapes.chat_chunk(ident, created, model, {}, "stop")))
        stream_options = body.get("stream_options")
        if isinstance(stream_options, dict) and stream_options.get("include_usage"):
            events.append(openai_shapes.sse(openai_shapes.usage_chunk(ident, created, model, prompt_tokens, completion_tokens)))
        events.append(openai_shapes.SSE_DONE)
        return sse(events, script, range(1, 1 + len(pieces)), request_id)

    def openai_responses(body: dict[str, Any], script: Script) -> Response:
        if body.get("stream") is True:
            return _error_response("openai.responses", 400, "the fake LLM serves the Responses API without streaming only")
        n = fake.next_id()
        text = reply_text(body, script, "openai.responses")
        answer = openai_shapes.response_object(
            f"resp_fake{n:06d}", f"msg_fake{n:06d}", int(time.time()), str(body["model"]), text,
            count_tokens(all_text(body)), count_tokens(text),
        )
        return _json(answer, headers={"x-request-id": f"req_fake{n:06d}"})

    def anthropic_messages(body: dict[str, Any], script: Script) -> Response:
        n = fake.next_id()
        ident, model = f"msg_fake{n:06d}", str(body["model"])
        text = reply_text(body, script, "anthropic.messages")
        input_tokens, output_tokens = count_tokens(all_text(body)), count_tokens(text)
        request_id = ("request-id", f"req_fake{n:06d}")
        if body.get("stream") is not True:
            return _json(anthropic_shapes.message(ident, model, text, input_tokens, output_tokens), headers=dict([request_id]))
        pieces = script.pieces(text)
        events = [
            anthropic_shapes.event(anthropic_shapes.message_start(ident, model, input_tokens)),
            anthropic_shapes.event(anthropic_shapes.content_block_start()),
            anthropic_shapes.event(anthropic_shapes.ping()),
        ]
        events += [anthropic_shapes.event(anthropic_shapes.text_delta(piece)) for piece in pieces]
        events += [
            anthropic_shapes.event(anthropic_shapes.content_block_stop()),
            anthropic_shapes.event(anthropic_shapes.message_delta(output_tokens)),
            anthropic_shapes.event(anthropic_shapes.message_stop()),
        ]
        return sse(events, script, range(3, 3 + len(pieces)), request_id)

    async def chat_completions(request: Request) -> Response:
        return await provider_call(request, "openai.chat", openai_chat)

    async def responses(request: Request) -> Response:
        return await provider_call(request, "openai.responses", openai_responses)

    async def messages(request: Request) -> Response:
        return await provider_call(request, "anthropic.messages", anthropic_messages)

    async def models(request: Request) -> Response:
        entry, _ = await record(request, "openai.models")
        error = fake.take_error()
        if error is not None:
            entry.status = error.status
            return _error_response("openai.models", error.status, error.message, error.type, error.retry_after_s)
        return _json(openai_shapes.models_list(fake.script.models, int(time.time())))

    async def unknown(request: Request) -> Response:
        entry, _ = await record(request, "unknown")
        entry.status = 404
        return _error_response("unknown", 404, f"the fake LLM has no route {request.method} {request.url.path}")

    # --- the /__fake script API -------------------------------------------------------------------

    async def health(request: Request) -> Response:
        return _json({"ok": True})

    async def script_route(request: Request) -> Response:
        if request.method == "GET":
            return _json(fake.script.model_dump(mode="json"))
        if request.method == "DELETE":
            fake.set_script(Script())
            return _json(fake.script.model_dump(mode="json"))
        try:
            patch = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            return _json({"error": f"script body is not JSON: {exc}"}, 400)
        if not isinstance(patch, dict):
            return _json({"error": "script body must be a JSON object"}, 400)
        base = fake.script.model_dump() if request.method == "PATCH" else {}
        try:
            script = Script.model_validate({**base, **patch})
        except ValidationError as exc:
            detail = [{"field": ".".join(str(p) for p in e["loc"]) or "(script)", "message": e["msg"]} for e in exc.errors()]
            return _json({"error": "invalid script", "detail": detail}, 422)
        fake.set_script(script)
        return _json(script.model_dump(mode="json"))

    async def requests_route(request: Request) -> Response:
        if request.method == "DELETE":
            fake.recorder.clear()
            return _json({"cleared": True})
        items = fake.recorder.items()
        since = request.query_params.get("since")
        if since is not None:
            if not since.isdigit():
                return _json({"error": "since must be a non-negative integer (a request seq)"}, 400)
            items = [item for item in items if item.seq > int(since)]
        provider = request.query_params.get("provider")
        if provider:
            items = [item for item in items if item.provider == provider]
        return _json({"total": fake.recorder.total, "requests": [item.model_dump(mode="json") for item in items]})

    async def reset(request: Request) -> Response:
        fake.set_script(Script())
        fake.recorder.clear()
        return _json({"reset": True})

    routes = [
        Route("/__fake/health", health, methods=["GET"]),
        Route("/__fake/script", script_route, methods=["GET", "PUT", "PATCH", "DELETE"]),
        Route("/__fake/requests", requests_route, methods=["GET", "DELETE"]),
        Route("/__fake/reset", reset, methods=["POST"]),
    ]
    for prefix in ("/v1", ""):
        routes += [
            Route(f"{prefix}/chat/completions", chat_completions, methods=["POST"]),
            Route(f"{prefix}/responses", responses, methods=["POST"]),
            Route(f"{prefix}/messages", messages, methods=["POST"]),
            Route(f"{prefix}/models", models, methods=["GET"]),
        ]
    routes.append(Route("/{path:path}", unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]))
    app = Starlette(routes=routes, middleware=[Middleware(_CutStreams)])
    app.state.fake = fake
    return app
