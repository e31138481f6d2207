"""Admin handlers for people: the live activity page (``/__admin/ui``), its event stream and call details,
the bundled apply files as one-click presets, and the API docs page with local assets (works offline).

The page's files are package data in ``mock_akto/ui/``; Swagger UI's come from the ``swagger-ui-py``
package (Swagger UI 5: FastAPI's spec is OpenAPI 3.1). Only files named in :data:`UI_ASSETS` or :data:`DOCS_ASSETS` are ever served: a path never
reaches the file system unchecked.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Annotated, Any, AsyncIterator

import orjson
from fastapi import HTTPException, Query, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, StreamingResponse

from ..activity import DEFAULT_BACKLOG, HEARTBEAT_S, MAX_BATCH, FeedReader, detail
from ..errors import PresetFileError
from ..presets import bundled_apply_files, load_bundled_apply_file
from ..policies import load_preset
from .deps import NS, EngineDep, policy_set

#: The activity page's own files (mock_akto/ui/), name -> media type.
UI_ASSETS = {"activity.js": "text/javascript", "activity.css": "text/css"}
#: The Swagger UI files the docs page loads, name -> media type.
DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon-32x32.png": "image/png"}
#: How long the browser may cache a static asset (they change only with the package).
ASSET_CACHE = "public, max-age=3600"


def _ui_file(name: str) -> bytes:
    return (resources.files("mock_akto") / "ui" / name).read_bytes()


async def activity_page() -> HTMLResponse:
    """The live activity page: every call as it arrives, filters, details, fault and policy presets."""
    return HTMLResponse(_ui_file("activity.html"), headers={"cache-control": "no-store"})


async def activity_asset(name: str) -> Response:
    if name not in UI_ASSETS:
        raise HTTPException(404, f"no asset {name!r}")
    return Response(_ui_file(name), media_type=UI_ASSETS[name], headers={"cache-control": ASSET_CACHE})


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def activity_events(
    engine: EngineDep,
    backlog: Annotated[int, Query(ge=0, le=MAX_BATCH, description="recent calls sent first")] = DEFAULT_BACKLOG,
) -> StreamingResponse:
    """Server-sent events: ``call`` (one finished call, every namespace), ``skipped`` (calls the journal
    dropped before this reader got to them) and a comment line every few seconds. No queue is kept per
    reader: see mock_akto/activity.py."""
    registry = engine.registry

    async def stream() -> AsyncIterator[bytes]:
        reader = FeedReader()
        seen = registry.activity.changes
        backlog_events = reader.start(registry.all(), backlog)
        yield b"retry: 2000\n\n"
        for event in backlog_events:
            yield _sse("call", event)
        while True:
            if not await registry.activity.wait(seen, HEARTBEAT_S):
                yield b": heartbeat\n\n"
                continue
            while True:
                seen = registry.activity.changes  # before reading: a change during the sends below is seen next time
                events, skipped = reader.read(registry.all())
                if skipped:
                    yield _sse("skipped", {"count": skipped})
                for event in events:
                    yield _sse("call", event)
                if len(events) < MAX_BATCH:
                    break
                await asyncio.sleep(0)  # a long catch-up lets other calls run between batches

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


async def call_detail(engine: EngineDep, namespace: str, seq: int) -> Response:
    """One call in full: payloads, verdicts, and the redactions aligned with the text they replaced."""
    ns = engine.registry.find(namespace)
    entry = None
    if ns is not None:
        entry = next((e for e in ns.journal.after(seq - 1) if e.seq == seq), None)
    if entry is None:
        raise HTTPException(404, f"no call {seq} in namespace {namespace!r} (the journal may have dropped it)")
    return Response(orjson.dumps(detail(entry)), media_type="application/json")


async def list_apply_presets() -> list[str]:
    """The bundled apply files (policies and fault rules together): ``mock-akto apply --preset NAME``."""
    return bundled_apply_files()


async def apply_preset(engine: EngineDep, ns: NS, name: str) -> dict[str, Any]:
    """Apply a bundled apply file to the namespace: its policies, and its fault rules in place of the current ones."""
    try:
        preset = load_bundled_apply_file(name)
    except PresetFileError as exc:
        raise HTTPException(404, str(exc)) from None
    if preset.policy_preset is not None:
        ns.policies = load_preset(preset.policy_preset)
    elif preset.policies is not None:
        ns.policies = policy_set(preset.policies)
    added = []
    if preset.faults is not None:
        await engine.clear_rules(ns)
        added = [(await engine.add_rule(ns, rule)).id for rule in preset.faults]
    return {"preset": name, "namespace": ns.name, "description": preset.description.strip(),
            "policies": len(ns.policies.policies), "fault_rules": added}


# -- the API docs page, every asset served from here --------------------------------------------------


def _swagger_file(name: str) -> bytes:
    return (resources.files("swagger_ui") / "static" / name).read_bytes()


async def docs_page(request: Request) -> HTMLResponse:
    """Swagger UI for the admin API, its script and styles served by the engine (no CDN)."""
    root = request.scope.get("root_path", "")
    assets = f"{root}/__admin/docs/assets"
    return get_swagger_ui_html(
        openapi_url=f"{root}/__admin/openapi.json", title="mock-akto admin API",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js", swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon-32x32.png",
    )


async def docs_asset(name: str) -> Response:
    if name not in DOCS_ASSETS:
        raise HTTPException(404, f"no docs asset {name!r}")
    return Response(_swagger_file(name), media_type=DOCS_ASSETS[name], headers={"cache-control": ASSET_CACHE})
