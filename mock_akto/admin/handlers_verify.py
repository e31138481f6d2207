"""Admin handlers that take a matcher: journal search (``POST /journal/find``) and verification with a
deadline and near-misses (``POST /verify``)."""

import asyncio
from typing import Annotated

from fastapi import HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from ..errors import RegexTimeout
from ..matching import Matcher
from ..verify import VerifyRequest, VerifyResult, entry_predicate, result_of
from .deps import NS, entries_json, json_response


class FindRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    match: Matcher = Field(default_factory=Matcher)
    since: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1, le=100_000)] = 1000


async def find(ns: NS, request: FindRequest) -> Response:
    """Journal entries matching ``match`` (the latest ``limit``, or the first after ``since``)."""
    predicate = entry_predicate(request.match)
    try:
        entries = ns.journal.query(predicate, since=request.since, limit=request.limit)
    except RegexTimeout as exc:
        raise HTTPException(422, str(exc)) from None
    return json_response(entries_json(entries))


async def verify(ns: NS, request: VerifyRequest) -> VerifyResult:
    """Whether the matching calls are as many as expected, waiting up to ``timeout_ms`` for enough of them;
    when not, the nearest entries and what each failed."""
    predicate = entry_predicate(request.match)
    low, _ = request.bounds()
    try:
        if request.timeout_ms and low > 0:
            await ns.journal.wait_for(low, predicate, since=request.since, timeout=request.timeout_ms / 1000)
        await asyncio.sleep(0)  # let answers already on their way be journaled before counting
        found = ns.journal.count(predicate, since=request.since)
        entries = list(ns.journal.after(request.since))
        return result_of(request, found, entries, request.timeout_ms / 1000 if request.timeout_ms else 0)
    except RegexTimeout as exc:
        raise HTTPException(422, str(exc)) from None
