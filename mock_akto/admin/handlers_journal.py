"""Admin handlers for what the engine saw: the journal (query, count, wait for N) and the ingest records.

Entries are serialised straight to JSON (no response-model validation): a journal read may return
100,000 entries."""

from typing import Annotated

from fastapi import Query, Response

from ..journal import IngestQuery, IngestRecordModel
from .deps import JQ, MAX_WAIT_MS, NS, Limit, Since, entries_json, json_response
from .models import Count


async def journal(ns: NS, query: JQ, since: Since = 0, limit: Limit = 1000) -> Response:
    return json_response(entries_json(ns.journal.query(query, since=since, limit=limit)))


async def journal_count(ns: NS, query: JQ, since: Since = 0) -> Count:
    return Count(count=ns.journal.count(query, since=since))


async def journal_wait(
    ns: NS,
    query: JQ,
    count: Annotated[int, Query(ge=1, le=100_000)],
    timeout_ms: Annotated[int, Query(ge=0, le=MAX_WAIT_MS)] = 10_000,
    since: Since = 0,
) -> Response:
    """Wait until ``count`` matching entries exist; 408 with what there is when the deadline passes."""
    entries, reached = await ns.journal.wait_for(count, query, since=since, timeout=timeout_ms / 1000)
    body = {"reached": reached, "count": len(entries), "entries": entries_json(entries)}
    return json_response(body, 200 if reached else 408)


async def clear_journal(ns: NS) -> None:
    ns.journal.clear()


async def ingest_records(
    ns: NS,
    status_code: str | None = Query(None, description="the envelope's statusCode, e.g. 403"),
    connector: str | None = None,
    app: str | None = None,
    path: str | None = None,
    since: Since = 0,
    limit: Limit = 1000,
) -> Response:
    query = IngestQuery(status_code=status_code, connector=connector, app=app, path=path)
    records = ns.ingest.query(query, since=since, limit=limit)
    return json_response([IngestRecordModel.of(r).model_dump(mode="json") for r in records])


async def clear_ingest(ns: NS) -> None:
    ns.ingest.clear()
