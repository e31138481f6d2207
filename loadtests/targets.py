"""What a load test sends, and where: a URL plus a request body template with a ``{{prompt}}`` slot.

Built-in templates (from :mod:`harness.payloads`) cover the engine itself (the LiteLLM-style envelope on
``/api/http-proxy``) and the connectors' inputs (an OpenAI chat request for the LiteLLM proxy and the
egress proxy, a TrueFoundry custom-guardrail call); ``--body-template FILE`` takes any JSON document with
``{{prompt}}`` in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from harness.payloads import (
    ENGINE_QUERY,
    PROMPT_SLOT,
    engine_envelope_template,
    fill,
    openai_chat_template,
    truefoundry_template,
)
from mock_akto.wire import HTTP_PROXY_PATH, TRUEFOUNDRY_PATH


@dataclass(frozen=True)
class Target:
    """One HTTP endpoint under load: ``base_url`` + ``path``, a body template and fixed headers."""

    name: str
    base_url: str
    path: str
    body_template: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=lambda: {"content-type": "application/json"})

    def __post_init__(self) -> None:
        if PROMPT_SLOT not in self.body_template:
            raise ValueError(f"target {self.name!r}: body template has no {PROMPT_SLOT} slot")
        try:
            json.loads(self.body_template.replace(PROMPT_SLOT, "x"))
        except ValueError as exc:
            raise ValueError(f"target {self.name!r}: body template is not JSON: {exc}") from None

    def body(self, prompt: str) -> bytes:
        return fill(self.body_template, prompt)

    @property
    def url(self) -> str:
        return self.base_url + self.path


def engine_target(engine_url: str) -> Target:
    """The engine's own contract route, request guardrails on, as LiteLLM calls it."""
    return Target("engine", engine_url.rstrip("/"), f"{HTTP_PROXY_PATH}?{ENGINE_QUERY}", engine_envelope_template())


def truefoundry_target(endpoint_url: str) -> Target:
    """Akto's TrueFoundry endpoint (reference_impl.truefoundry_app), input hook."""
    return Target("truefoundry", endpoint_url.rstrip("/"), TRUEFOUNDRY_PATH, truefoundry_template())


def openai_chat_target(name: str, base_url: str, path: str = "/v1/chat/completions",
                       headers: Mapping[str, str] | None = None) -> Target:
    """An OpenAI-compatible chat endpoint (the LiteLLM proxy; a provider reached through the egress proxy)."""
    return Target(name, base_url.rstrip("/"), path, openai_chat_template(),
                  headers={"content-type": "application/json", **(headers or {})})


def custom_target(url: str, template_file: str | None, headers: Mapping[str, str] | None = None) -> Target:
    """A target from the command line: a full URL and a template file (an OpenAI chat request by default)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--target-url must be an http(s) URL, got {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    template = Path(template_file).read_text(encoding="utf-8") if template_file else openai_chat_template()
    return Target("target", f"{parts.scheme}://{parts.netloc}", path, template,
                  headers={"content-type": "application/json", **(headers or {})})
