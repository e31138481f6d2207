"""Sending a scenario's request like a real OpenAI-style client would, and reading the whole answer."""

from __future__ import annotations

import functools
import json
import ssl
import time
from typing import Any, Mapping

import httpx

from harness.connectors.base import ClientResponse, Traffic

#: Bound on one client request: longer than any engine timeout a scenario sets (<= 60 s) plus margins.
CLIENT_TIMEOUT_S = 90.0


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """The default verifying TLS context (certifi's bundle), built once.

    Why: a fresh ``httpx.Client(verify=True)`` loads the CA bundle again, 20 ms of CPU here (30-70 ms with
    three client threads at once), and the client's clock counted it against the connector: LiteLLM
    fail_open under a stalled engine answered 1.00-1.02 s after arrival in the proxy, but 1.26 s at the
    client (issue 11). A CA file of the caller's (``verify="path"``) is loaded per client, as before: its
    content may change between runs under the same name.
    """
    return httpx.create_ssl_context(verify=True)


#: Where each OpenAI API of :attr:`Traffic.api` is served, below a base URL.
OPENAI_PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses"}


def openai_chat_body(traffic: Traffic, default_model: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The request body of ``traffic``'s OpenAI API (Responses: the messages are the ``input`` list), with
    ``extra`` fields (e.g. LiteLLM's per-request ``guardrails``)."""
    key = "input" if traffic.api == "responses" else "messages"
    body: dict[str, Any] = {"model": traffic.model or default_model, key: traffic.chat_messages(), **(extra or {})}
    if traffic.stream:
        body["stream"] = True
    return body


def send_openai_chat(
    url: str,
    traffic: Traffic,
    *,
    default_model: str,
    headers: Mapping[str, str] | None = None,
    verify: bool | str = True,
    proxy: str | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> ClientResponse:
    """POST an OpenAI chat completion (or Responses request) to ``url``; streams are read to the end
    (``stream_text`` assembled)."""
    body = openai_chat_body(traffic, default_model, extra_body)
    all_headers = {"content-type": "application/json", **(headers or {}), **traffic.headers}
    started = time.perf_counter()
    try:
        tls = tls_context() if verify is True else verify
        with httpx.Client(timeout=CLIENT_TIMEOUT_S, verify=tls, proxy=proxy, trust_env=False) as client:
            with client.stream("POST", url, json=body, headers=all_headers) as response:
                raw = response.read().decode(errors="replace")
                elapsed = (time.perf_counter() - started) * 1000
                is_sse = "text/event-stream" in response.headers.get("content-type", "")
                return ClientResponse(
                    status=response.status_code,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    body=raw,
                    elapsed_ms=elapsed,
                    stream_text=sse_content(raw) if is_sse else None,
                )
    except httpx.HTTPError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return ClientResponse(status=0, headers={}, body="", elapsed_ms=elapsed, error=f"{type(exc).__name__}: {exc}")


def sse_content(raw: str) -> str:
    """Concatenated ``choices[].delta.content`` of an OpenAI SSE stream (error frames are kept in ``body``)."""
    pieces: list[str] = []
    for line in raw.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if not data or data == "[DONE]":
            continue
        try:
            event = json.loads(data)
        except ValueError:
            continue
        for choice in event.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                pieces.append(content)
    return "".join(pieces)
