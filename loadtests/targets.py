"""What a load test sends, and where: a :class:`harness.payloads.Target` (a URL plus a request body template
with a ``{{prompt}}`` slot).

A connector names its own client-facing target (``instance.target``, see :mod:`harness.connectors`); here are
the engine itself (the LiteLLM-style envelope on ``/api/http-proxy``) and ``--target-url`` with
``--body-template FILE`` (any JSON document with ``{{prompt}}`` in it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from akto_wire import HTTP_PROXY_PATH
from harness.payloads import ENGINE_QUERY, Target, engine_envelope_template, openai_chat_template

__all__ = ["Target", "custom_target", "engine_target"]


def engine_target(engine_url: str) -> Target:
    """The engine's own contract route, request guardrails on, as LiteLLM calls it."""
    return Target("engine", engine_url.rstrip("/"), f"{HTTP_PROXY_PATH}?{ENGINE_QUERY}", engine_envelope_template())


def custom_target(url: str, template_file: str | None, headers: Mapping[str, str] | None = None) -> Target:
    """A target from the command line: a full URL and a template file (an OpenAI chat request by default)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--target-url must be an http(s) URL, got {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    template = Path(template_file).read_text(encoding="utf-8") if template_file else openai_chat_template()
    return Target("target", f"{parts.scheme}://{parts.netloc}", path, template,
                  headers={"content-type": "application/json", **(headers or {})})
