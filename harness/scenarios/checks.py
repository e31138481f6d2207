"""Comparing what happened with an :class:`Expectation`; every check returns the problems it found.

Engine journal entries, ingest records and LLM requests are counted only when they carry the scenario's
reference (see :meth:`Traffic.tagged`). Checks of things that happen in the background (post-call ingest,
blocked-ingest) wait for them on a condition with a deadline, never with a sleep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from akto_wire import FLAG_NAMES
from harness.fakes.llm import FakeLLMClient, RecordedRequest
from harness.fakes.mcp import FakeMCPClient
from harness.fakes.mcp.app import RecordedCall
from harness.process import wait_until
from harness.connectors.base import ClientResponse
from harness.scenarios.model import (
    Expectation,
    IngestExpect,
    IngestRecordExpect,
    JournalEntryExpect,
    JournalExpect,
    LLMReceived,
    as_list,
    shorten,
)
from mock_akto.client import MockAktoClient
from mock_akto.journal import IngestRecordModel, JournalEntryModel

#: How long background engine calls (ingest) may take to arrive after the client got its answer.
SETTLE_TIMEOUT_S = 10.0

T = TypeVar("T")


@dataclass
class Observed:
    """Everything a check can look at for one scenario run."""

    response: ClientResponse
    reference: str
    timeout_s: float
    engine: MockAktoClient
    #: The upstream the connector forwards to: the fake LLM, or the fake MCP server for ``api: mcp`` traffic.
    llm: FakeLLMClient | FakeMCPClient

    def journal(self) -> list[JournalEntryModel]:
        return [e for e in self.engine.journal() if self.reference in (e.request_payload or "")]

    def ingest_records(self) -> list[IngestRecordModel]:
        return [r for r in self.engine.ingest_records() if self.reference in (r.requestPayload or "")]

    def llm_requests(self) -> Sequence[RecordedRequest | RecordedCall]:
        return [r for r in self.llm.requests() if self.reference in (r.body_text or json.dumps(r.json_body))]


def check_all(expected: Expectation, seen: Observed) -> list[str]:
    response = seen.response
    problems: list[str] = []
    if response.error is not None and expected.status is not None:
        problems.append(f"client got no HTTP answer: {response.error}")
    if expected.status is not None and response.status != expected.status:
        problems.append(f"status: expected {expected.status}, got {response.status} ({shorten(response.body)!r})")
    for path, check in (expected.body or {}).items():
        problems += check.problems(f"body {path}", json_path(response.json, path, response))
    for name, check in (expected.headers or {}).items():
        problems += check.problems(f"header {name}", response.headers.get(name.lower()))
    if expected.latency is not None:
        problems += check_latency(expected, seen)
    if expected.llm_called is not None or expected.llm_received is not None:
        what = "the MCP tool" if isinstance(seen.llm, FakeMCPClient) else "the LLM"
        problems += check_llm(expected.llm_called, expected.llm_received, seen.llm_requests(), what)
    # A known gap already shown needs no wait for background records: its outcome (xfailed) is settled.
    wait = not (expected.xfail and problems)
    if expected.journal is not None:
        problems += check_journal(expected.journal, seen, wait=wait)
    if expected.ingest is not None:
        problems += check_ingest(expected.ingest, seen, wait=wait)
    return problems


def json_path(document: Any, path: str, response: ClientResponse) -> Any:
    """``a.b.0.c`` in the response JSON; ``stream_text`` is the assembled text of a streamed answer."""
    if path == "stream_text":
        return response.stream_text
    value = document
    for step in path.split("."):
        if isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return None
    return value


def check_latency(expected: Expectation, seen: Observed) -> list[str]:
    latency, elapsed = expected.latency, seen.response.elapsed_ms
    assert latency is not None
    problems = []
    bounds = []
    if latency.max_ms is not None:
        bounds.append(latency.max_ms)
    if latency.within_timeout_plus_ms is not None:
        bounds.append(seen.timeout_s * 1000 + latency.within_timeout_plus_ms)
    if bounds and elapsed > min(bounds):
        problems.append(f"latency: answered after {elapsed:.0f} ms, bound {min(bounds):.0f} ms")
    if latency.min_ms is not None and elapsed < latency.min_ms:
        problems.append(f"latency: answered after {elapsed:.0f} ms, expected at least {latency.min_ms:.0f} ms")
    return problems


def check_llm(called: bool | None, received: LLMReceived | None, requests: Sequence[RecordedRequest | RecordedCall],
              what: str = "the LLM") -> list[str]:
    """``what``: the upstream in messages (the LLM, or the MCP tool for ``api: mcp`` traffic)."""
    problems = []
    if called is True and not requests:
        problems.append(f"llm_called: expected {what} to be called, it was not")
    if called is False and requests:
        problems.append(f"llm_called: expected no call of {what}, it got {len(requests)}")
    if received is not None:
        if not requests:
            return problems + [f"llm_received: {what} received nothing"]
        last = requests[-1]
        text = last.body_text or json.dumps(last.json_body)
        for needle in as_list(received.contains):
            if needle not in text:
                problems.append(f"llm_received: expected {needle!r} in what {what} got: {shorten(text)!r}")
        for needle in as_list(received.not_contains):
            if needle in text:
                problems.append(f"llm_received: {needle!r} reached {what}: {shorten(text)!r}")
        if received.model is not None and last.model != received.model:
            problems.append(f"llm_received: model {last.model!r}, expected {received.model!r}")
    return problems


def check_journal(expected: JournalExpect, seen: Observed, *, wait: bool = True) -> list[str]:
    entries = _settled(seen.journal, expected.count,
                       lambda found: all(any(_entry_matches(want, e) for e in found) for want in expected.entries), wait)
    problems = []
    if expected.count is not None and len(entries) != expected.count:
        problems.append(f"journal: expected {expected.count} engine call(s), got {len(entries)}: {_calls(entries)}")
    for want in expected.entries:
        if not any(_entry_matches(want, entry) for entry in entries):
            problems.append(f"journal: no engine call matching {want.model_dump(exclude_none=True)}; got {_calls(entries)}")
    if expected.all_request_headers is not None:
        for entry in entries:
            problems += expected.all_request_headers.problems(f"journal #{entry.seq} requestHeaders", entry.request_headers)
    return problems


def check_ingest(expected: IngestExpect, seen: Observed, *, wait: bool = True) -> list[str]:
    records = _settled(seen.ingest_records, expected.count,
                       lambda found: all(any(not _record_misses(want, r) for r in found) for want in expected.records), wait)
    problems = []
    if expected.count is not None and len(records) != expected.count:
        problems.append(f"ingest: expected {expected.count} record(s), got {len(records)}: {_records(records)}")
    for want in expected.records:
        misses = [_record_misses(want, record) for record in records]
        if not records or all(misses):
            closest = min(misses, key=len) if misses else ["no records"]
            problems.append(f"ingest: no record matching {want.model_dump(exclude_none=True)} ({'; '.join(closest)})")
    return problems


def _settled(read: Callable[[], list[T]], count: int | None, all_found: Callable[[list[T]], bool],
             wait: bool = True) -> list[T]:
    """Wait (deadline) until ``count`` items arrived and ``all_found`` holds: background calls (ingest, stream
    batches) arrive after the client's answer and in any order, so reaching a number is not enough, the
    wanted items must be there. An exact count of 0, or ``wait=False``, is read once."""
    found: list[T] = read()

    def settled() -> bool:
        return (count is None or len(found) >= count) and all_found(found)

    if count == 0 or not wait or settled():
        return found

    def refreshed() -> bool:
        found[:] = read()
        return settled()

    try:
        wait_until(refreshed, timeout=SETTLE_TIMEOUT_S, interval=0.05, what="the expected engine records")
    except TimeoutError:
        pass
    return found


def _entry_matches(want: JournalEntryExpect, entry: JournalEntryModel) -> bool:
    flags = entry.flags
    for name, on in want.flags.items():
        if flags is None or bool(getattr(flags, name)) != on:
            return False
    if want.request_payload is not None and want.request_payload.problems("", entry.request_payload):
        return False
    if want.request_headers is not None and want.request_headers.problems("", entry.request_headers):
        return False
    return True


def _record_misses(want: IngestRecordExpect, record: IngestRecordModel) -> list[str]:
    misses = []
    if want.status_code is not None and record.statusCode != want.status_code:
        misses.append(f"statusCode {record.statusCode!r}")
    if want.request_payload is not None:
        misses += want.request_payload.problems("requestPayload", record.requestPayload)
    if want.response_payload is not None:
        misses += want.response_payload.problems("responsePayload", record.responsePayload)
    if want.account_id is not None and record.akto_account_id != want.account_id:
        misses.append(f"akto_account_id {record.akto_account_id!r}")
    if want.vxlan_id is not None and record.akto_vxlan_id != want.vxlan_id:
        misses.append(f"akto_vxlan_id {record.akto_vxlan_id!r}")
    return misses


def _calls(entries: Sequence[JournalEntryModel]) -> str:
    def flags(entry: JournalEntryModel) -> str:
        if entry.flags is None:
            return "-"
        return ",".join(n for n in FLAG_NAMES if getattr(entry.flags, n)) or "none"

    return "; ".join(f"#{e.seq} [{flags(e)}] -> {e.status} {e.fault or ''}".strip() for e in entries) or "none"


def _records(records: Sequence[IngestRecordModel]) -> str:
    return "; ".join(f"#{r.seq} status {r.statusCode}" for r in records) or "none"
