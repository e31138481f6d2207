"""Record a real Akto, replay it here: ``mock-akto record --target URL --out FILE`` and ``serve --replay FILE``.

The recorder is a loopback proxy speaking the contract: connectors point at it as their Akto; each call to
``/api/*`` is forwarded to the target (TLS verified, ``--ca-file`` for a private CA; the target's token from
``--target-token`` / ``$MOCK_AKTO_TARGET_TOKEN`` replaces the caller's ``Authorization``), answered with the
target's answer, and appended to the replay file as one JSON line, flushed at once (a recorder stopped mid-run
keeps every call it answered). When the target cannot be reached the caller gets 502 naming why, nothing is
recorded, and the recorder keeps serving (the next call tries the target again).

Scrubbing, before anything is written: the caller's and the target's credentials never reach the file;
credential headers inside the envelope's ``requestHeaders`` / ``responseHeaders`` (authorization, cookies,
API keys, tokens) become ``***``; every ``--scrub REGEX`` match in any stored string becomes ``[SCRUBBED]``.

Replay (:func:`replay_scripts`) turns the file into scripted verdicts, one per (path, direction flags,
prompt): a call is a recorded one when its path and guardrails flags are the same and its extracted prompt
(the texts the policies judge, :attr:`~mock_akto.matching.CallInfo.prompt`) equals the recorded one, a
scrubbed part matching any text. Several recordings of one prompt answer in recorded order, cycling. A miss
(the rule documented in the README): ``--replay-miss policies`` lets the policies decide, ``fail`` answers
500 ``replay miss`` and journals it, so a CI run that drifted from the recording fails loudly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from akto_wire import HTTP_PROXY_PATH, VALIDATE_REQUEST_PATH, VALIDATE_RESPONSE_PATH, Flags, Verdict

from .contract import parse_query
from .errors import PresetFileError
from .extract import extract_texts
from .matching import Matcher
from .scripted import ScriptedVerdict, VerdictStep
from .types import Receive, Scope, Send

TARGET_TOKEN_ENV = "MOCK_AKTO_TARGET_TOKEN"
FORMAT_VERSION = 1
SCRUBBED = "[SCRUBBED]"
MASKED = "***"
#: Header names whose values are credentials (any case; also any name containing one of these words).
_CREDENTIAL_HEADER = re.compile(r"auth|token|secret|api[-_]?key|cookie|session|password", re.IGNORECASE)
RECORDED_PATHS = (HTTP_PROXY_PATH, VALIDATE_REQUEST_PATH, VALIDATE_RESPONSE_PATH)
MAX_RECORD_BODY = 10 * 1024 * 1024


# --------------------------------------------------------------------------------------------- scrubbing


@dataclass
class Scrubber:
    """Removes secrets from what is written: literal secrets, credential headers, configured patterns."""

    patterns: list[re.Pattern[str]] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret and secret in value:
                value = value.replace(secret, MASKED)
        for pattern in self.patterns:
            value = pattern.sub(SCRUBBED, value)
        return value

    def headers_field(self, value: str) -> str:
        """A JSON-encoded header map with credential values masked (then scrubbed as text)."""
        try:
            headers = orjson.loads(value)
        except orjson.JSONDecodeError:
            return self.text(value)
        if isinstance(headers, dict):
            headers = {k: MASKED if _CREDENTIAL_HEADER.search(str(k)) else v for k, v in headers.items()}
            value = orjson.dumps(headers).decode()
        return self.text(value)

    def deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.deep(item) for item in value]
        if isinstance(value, dict):
            return {key: self.headers_field(item) if key in ("requestHeaders", "responseHeaders") and isinstance(item, str)
                    else self.deep(item) for key, item in value.items()}
        return value


def without_userinfo(url: str) -> str:
    """``https://user:pw@host/x`` -> ``https://host/x`` (the file names its target, never its credentials)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --------------------------------------------------------------------------------------------- the recorder


@dataclass
class RecorderStats:
    recorded: int = 0
    failed: int = 0


class Recorder:
    """The recording proxy as a raw ASGI app (``/health`` is its own; ``/api/*`` is forwarded and recorded)."""

    def __init__(self, target: str, out: Path, *, token: str | None = None, ca_file: Path | None = None,
                 scrub: list[str] | None = None, timeout: float = 10.0) -> None:
        self.target = target.rstrip("/")
        self.out = out
        self.token = token
        self.ca_file = ca_file
        self.timeout = timeout
        self.scrubber = Scrubber([re.compile(p) for p in scrub or []], {token} if token else set())
        self.stats = RecorderStats()
        self._client: httpx.AsyncClient | None = None
        self._file: Any = None

    def open(self) -> None:
        verify: Any = str(self.ca_file) if self.ca_file is not None else True
        self._client = httpx.AsyncClient(base_url=self.target, verify=verify, timeout=self.timeout, trust_env=False)
        self._file = self.out.open("w", encoding="utf-8")
        header = {"mock_akto_replay": FORMAT_VERSION, "target": without_userinfo(self.target), "started": time.time()}
        self._write(header)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._file is not None:
            self._file.close()

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health":
            await _send_json(send, 200, {"status": "ok", "recorded": self.stats.recorded, "failed": self.stats.failed})
            return
        if not path.startswith("/api/"):
            await _send_json(send, 404, {"success": False, "message": f"the recorder forwards /api/* only, not {path}"})
            return
        body = await _read_body(receive)
        if body is None:
            await _send_json(send, 413, {"success": False, "message": "body larger than the recorder's limit"})
            return
        headers = {"content-type": "application/json"}
        incoming_auth = _header(scope, b"authorization")
        if incoming_auth:
            self.scrubber.secrets.add(incoming_auth)
            self.scrubber.secrets.add(incoming_auth.split(" ", 1)[-1])
        if self.token:
            headers["authorization"] = self.token
        elif incoming_auth:
            headers["authorization"] = incoming_auth
        query = scope.get("query_string", b"").decode("latin-1")
        assert self._client is not None
        try:
            response = await self._client.request(scope["method"], path + (f"?{query}" if query else ""),
                                                  content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.stats.failed += 1
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            await _send_json(send, 502, {"success": False, "message": f"record: the target {without_userinfo(self.target)} "
                                         f"is unreachable ({reason}); nothing recorded"})
            return
        if path in RECORDED_PATHS:
            self._record(path, query, body, response)
        content_type = response.headers.get("content-type", "application/json")
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": [(b"content-type", content_type.encode("latin-1"))]})
        await send({"type": "http.response.body", "body": response.content})

    def _record(self, path: str, query: str, body: bytes, response: httpx.Response) -> None:
        try:
            envelope = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            envelope = {"unparsed": body.decode("utf-8", errors="replace")}
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        request_payload = envelope.get("requestPayload") if isinstance(envelope, dict) else None
        prompt = "\n".join(extract_texts(request_payload)) if isinstance(request_payload, str) else ""
        scrub = self.scrubber
        self._write({"time": time.time(), "path": path, "query": scrub.text(query), "prompt": scrub.text(prompt),
                     "request": scrub.deep(envelope), "status": response.status_code, "response": scrub.deep(answer)})
        self.stats.recorded += 1

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.open()
                except OSError as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_RECORD_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, body: Any) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


def run_recorder(recorder: Recorder, host: str, port: int) -> None:
    """Serve the recorder in the foreground; prints ``mock-akto recording on URL -> TARGET`` once bound."""
    import uvicorn

    from .server import EngineUvicornServer

    def announce(server: EngineUvicornServer) -> None:
        print(f"mock-akto recording on http://{host}:{server.bound_port} -> {without_userinfo(recorder.target)} "
              f"(writing {recorder.out})", flush=True)

    config = uvicorn.Config(recorder, host=host, port=port, lifespan="on", access_log=False, log_level="warning",
                            server_header=False, timeout_graceful_shutdown=2)
    server = EngineUvicornServer(config, on_ready=announce)
    asyncio.run(server.serve())
    if not server.started:
        raise SystemExit(1)


# --------------------------------------------------------------------------------------------- replay


@dataclass
class Recording:
    target: str
    calls: list[dict[str, Any]]


def load_recording(path: str | Path) -> Recording:
    """A replay file; :class:`PresetFileError` naming the line of anything unreadable."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetFileError(f"{path}: cannot read: {exc}") from None
    calls, target = [], ""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise PresetFileError(f"{path}: line {number}: not JSON ({exc}); is this a `mock-akto record` file?") from None
        if not isinstance(item, dict):
            raise PresetFileError(f"{path}: line {number}: expected an object")
        if "mock_akto_replay" in item:
            if item["mock_akto_replay"] != FORMAT_VERSION:
                raise PresetFileError(f"{path}: format {item['mock_akto_replay']!r}, this engine reads {FORMAT_VERSION}")
            target = str(item.get("target", ""))
            continue
        if not {"path", "request", "status", "response"} <= item.keys():
            raise PresetFileError(f"{path}: line {number}: missing path, request, status or response")
        calls.append(item)
    return Recording(target=target, calls=calls)


def _flags(call: dict[str, Any]) -> Flags:
    request = call["request"] if isinstance(call["request"], dict) else {}
    return Flags.resolve(parse_query(str(call.get("query", "")).encode("latin-1")), request)


def recorded_step(call: dict[str, Any]) -> VerdictStep | None:
    """The verdict(s) a recorded 200 answer carried, as a step (``None``: nothing to replay)."""
    if call["status"] != 200 or not isinstance(call["response"], dict):
        return None
    answer = call["response"]
    path = call["path"]
    if path == VALIDATE_REQUEST_PATH:
        return VerdictStep(request=Verdict.model_validate(answer))
    if path == VALIDATE_RESPONSE_PATH:
        return VerdictStep(response=Verdict.model_validate(answer))
    data = answer.get("data")
    result = data.get("guardrailsResult") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        return None
    flags = _flags(call)
    if flags.guardrails and flags.response_guardrails and "requestResult" in result:
        return VerdictStep(request=Verdict.model_validate(result["requestResult"]),
                           response=Verdict.model_validate(result.get("responseResult") or {}))
    if flags.response_guardrails and not flags.guardrails:
        return VerdictStep(response=Verdict.model_validate(result))
    return VerdictStep(request=Verdict.model_validate(result))


def prompt_condition(prompt: str) -> dict[str, Any]:
    """Equal to the recorded prompt; where it was scrubbed, any text."""
    if SCRUBBED not in prompt:
        return {"equal": prompt}
    return {"regex": "^" + ".*?".join(re.escape(part) for part in prompt.split(SCRUBBED)) + "$"}


def replay_scripts(recording: Recording, *, miss: Literal["policies", "fail"] = "policies") -> list[ScriptedVerdict]:
    """Scripted verdicts answering the recorded calls (see the module docstring for the matching rule)."""
    grouped: dict[tuple[str, bool, bool, str], list[VerdictStep]] = {}
    for call in recording.calls:
        step = recorded_step(call)
        if step is None:
            continue
        flags = _flags(call)
        key = (call["path"], flags.guardrails, flags.response_guardrails, str(call.get("prompt", "")))
        grouped.setdefault(key, []).append(step)
    scripts = []
    for number, ((path, guardrails, response_guardrails, prompt), steps) in enumerate(grouped.items(), 1):
        match: dict[str, Any] = {"path": path, "prompt": prompt_condition(prompt)}
        if path == HTTP_PROXY_PATH:  # the same guardrails flags on, and the others off
            switches = (("guardrails", guardrails), ("response_guardrails", response_guardrails))
            match["flags"] = [name for name, on in switches if on]
            off = [name for name, on in switches if not on]
            if off:
                match["not"] = {"any": [{"flags": [name]} for name in off]}
        scripts.append(ScriptedVerdict(id=f"replay-{number}", match=Matcher.model_validate(match), sequence=steps,
                                       cycle=True))
    if miss == "fail":
        scripts.append(ScriptedVerdict(id="replay-miss", answer=VerdictStep(
            fail=f"replay miss: no call recorded from {recording.target or 'the target'} has this path, flags and prompt")))
    return scripts


def target_token_from_env() -> str | None:
    return os.environ.get(TARGET_TOKEN_ENV) or None
