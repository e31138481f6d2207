"""The journal and ingest records: bounded rings, filters, wait-for-N with a deadline, over real sockets
where it matters (plus the ring itself, driven directly)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from akto_wire import Envelope
from mock_akto.client import JournalTimeout, MockAktoClient
from mock_akto.journal import BoundedLog, JournalEntry, JournalQuery

PROXY = "/api/http-proxy"


def entry(size: int = 0, *, done: bool = True, path: str = "/api/http-proxy", status: int | None = 200) -> JournalEntry:
    return JournalEntry(
        seq=0, time=time.time(), namespace="t", method="POST", path=path, flags=None, app="",
        request_payload="x" * size, response_payload=None, request_headers=None, truncated=False,
        request_verdict=None, response_verdict=None, fault=None, status=status, duration_ms=None, error=None,
        done=done, size=size,
    )


def add(log: BoundedLog[JournalEntry], item: JournalEntry) -> JournalEntry:
    item.seq = log.next_seq()
    log.append(item)
    return item


# --------------------------------------------------------------------------------------------- the ring


def test_ring_keeps_the_newest_entries_up_to_its_count() -> None:
    log: BoundedLog[JournalEntry] = BoundedLog(max_entries=5)
    for _ in range(8):
        add(log, entry())
    assert [e.seq for e in log.after(0)] == [4, 5, 6, 7, 8]
    assert log.dropped == 3


def test_ring_is_bounded_by_payload_bytes_too() -> None:
    log: BoundedLog[JournalEntry] = BoundedLog(max_entries=1000, max_bytes=100)
    for _ in range(10):
        add(log, entry(size=40))
    assert len(log) == 2
    assert log.payload_bytes == 80


def test_memory_stays_flat_under_a_long_run() -> None:
    log: BoundedLog[JournalEntry] = BoundedLog(max_entries=1000, max_bytes=200_000)
    for _ in range(50_000):
        add(log, entry(size=1000))
    assert len(log) == 200 and log.payload_bytes == 200_000
    assert log.dropped == 49_800


def test_query_since_pages_forward_and_limit_without_since_takes_the_newest() -> None:
    log: BoundedLog[JournalEntry] = BoundedLog()
    for index in range(10):
        add(log, entry(path=f"/p{index % 2}"))
    everything = lambda item: True  # noqa: E731
    assert [e.seq for e in log.query(everything, limit=3)] == [8, 9, 10]
    assert [e.seq for e in log.query(everything, since=4, limit=3)] == [5, 6, 7]
    assert [e.seq for e in log.query(JournalQuery(path="/p1"))] == [2, 4, 6, 8, 10]
    assert log.count(JournalQuery(path="/p0"), since=5) == 2


def test_sequence_numbers_survive_a_clear() -> None:
    log: BoundedLog[JournalEntry] = BoundedLog()
    add(log, entry())
    log.clear()
    assert len(log) == 0
    assert add(log, entry()).seq == 2


def test_wait_for_wakes_on_append_and_counts_only_matches() -> None:
    async def scenario() -> tuple[list[JournalEntry], bool, float]:
        log: BoundedLog[JournalEntry] = BoundedLog()

        async def producer() -> None:
            for index in range(6):
                await asyncio.sleep(0)  # yield, so the waiter is already waiting
                add(log, entry(status=200 if index % 2 else 500))

        task = asyncio.create_task(producer())
        started = time.monotonic()
        found, reached = await log.wait_for(3, JournalQuery(status=200), timeout=5)
        await task
        return found, reached, time.monotonic() - started

    found, reached, elapsed = asyncio.run(scenario())
    assert reached and [e.status for e in found] == [200, 200, 200]
    assert elapsed < 4


def test_wait_for_returns_what_it_has_at_the_deadline() -> None:
    async def scenario() -> tuple[list[JournalEntry], bool, float]:
        log: BoundedLog[JournalEntry] = BoundedLog()
        add(log, entry())
        started = time.monotonic()
        found, reached = await log.wait_for(2, lambda item: True, timeout=0.2)
        return found, reached, time.monotonic() - started

    found, reached, elapsed = asyncio.run(scenario())
    assert not reached and len(found) == 1
    assert 0.15 <= elapsed < 3


def test_wait_for_rechecks_pending_entries_when_they_finish() -> None:
    async def scenario() -> tuple[list[JournalEntry], bool]:
        log: BoundedLog[JournalEntry] = BoundedLog()
        pending = add(log, entry(done=False, status=None))
        add(log, entry(status=200))

        async def finish() -> None:
            await asyncio.sleep(0)  # yield, so the waiter has seen the entry pending
            pending.status, pending.done = 200, True
            log.notify()

        task = asyncio.create_task(finish())
        found, reached = await log.wait_for(2, JournalQuery(status=200), timeout=5)
        await task
        return found, reached

    found, reached = asyncio.run(scenario())
    assert reached and [e.seq for e in found] == [1, 2]


# --------------------------------------------------------------------------------------------- over the wire


def envelope(text: str = "hello", **fields: Any) -> dict[str, Any]:
    return Envelope.build(request_payload=text, **fields).model_dump()


def test_wait_for_n_sees_calls_made_while_waiting(akto) -> None:  # noqa: ANN001
    def send_later() -> None:
        with httpx.Client(trust_env=False, timeout=10) as http:
            for index in range(3):
                http.post(akto.url + PROXY, json=envelope(f"call {index}"), params={"guardrails": "true"})

    sender = threading.Timer(0.2, send_later)
    sender.start()
    try:
        entries = akto.client.wait_for(3, timeout=10, flag="guardrails")
    finally:
        sender.join(10)
    assert [e.request_payload for e in entries] == ["call 0", "call 1", "call 2"]
    assert all(e.status == 200 and e.done for e in entries)


def test_wait_for_deadline_raises_with_what_it_saw(akto, http) -> None:  # noqa: ANN001
    http.post(akto.url + PROXY, json=envelope(), params={"guardrails": "true"})
    started = time.monotonic()
    with pytest.raises(JournalTimeout) as caught:
        akto.client.wait_for(2, timeout=0.5)
    assert 0.4 <= time.monotonic() - started < 5
    assert len(caught.value.entries) == 1
    assert "saw 1" in str(caught.value)
    raw = http.get(akto.engine_url + "/__admin/journal/wait", params={"count": 2, "timeout_ms": 50},
                   headers={"x-mock-akto-namespace": akto.namespace})
    assert raw.status_code == 408 and raw.json()["count"] == 1


def test_journal_filters_and_count(akto, http) -> None:  # noqa: ANN001
    http.post(akto.url + PROXY, json=envelope(), params={"guardrails": "true", "akto_connector": "litellm"})
    http.post(akto.url + PROXY, json=envelope(), params={"ingest_data": "true", "akto_connector": "egress"})
    http.post(akto.url + PROXY, json={"requestPayload": ""})
    http.post(akto.url + "/api/validate/request", json=envelope())
    client = akto.client
    assert client.count() == 4
    assert [e.connector for e in client.journal(flag="guardrails")] == ["litellm"]
    assert [e.connector for e in client.journal(connector="egress")] == ["egress"]
    assert [e.status for e in client.journal(status=422)] == [422]
    assert client.count(path="/api/validate/request") == 1
    first = client.journal()[0].seq
    assert client.count(since=first) == 3
    client.clear_journal()
    assert client.count() == 0


def test_journal_ring_bound_through_the_engine(make_engine, http) -> None:
    engine = make_engine(journal_size=5)
    for index in range(8):
        http.post(engine.url + PROXY, json=envelope(f"n{index}"))
    entries = MockAktoClient(engine.url).journal()
    assert [e.request_payload for e in entries] == [f"n{index}" for index in range(3, 8)]


def test_payloads_are_truncated_to_the_cap(make_engine, http) -> None:
    engine = make_engine(journal_payload_cap=100)
    http.post(engine.url + PROXY, json=envelope("z" * 1000), params={"guardrails": "true"})
    (entry_,) = MockAktoClient(engine.url).journal()
    assert entry_.request_payload == "z" * 100 and entry_.truncated


def test_a_delayed_answer_is_journaled_as_pending_then_finished(akto, http) -> None:  # noqa: ANN001
    akto.client.add_fault({"type": "fixed_delay", "ms": 400})
    result: dict[str, httpx.Response] = {}
    caller = threading.Thread(target=lambda: result.update(r=httpx.post(
        akto.url + PROXY, json=envelope(), params={"guardrails": "true"}, timeout=10)))
    caller.start()
    try:
        (seen,) = akto.client.wait_for(1, timeout=5)
        assert seen.fault == "fixed_delay"
    finally:
        caller.join(10)
    assert result["r"].status_code == 200
    (done,) = akto.client.journal()
    assert done.done and done.status == 200 and done.fault == "fixed_delay"
    assert done.duration_ms >= 350


def test_a_reset_connection_is_journaled_without_a_status(akto) -> None:  # noqa: ANN001
    akto.client.add_fault("connection_reset_by_peer")
    with pytest.raises(httpx.TransportError):
        httpx.post(akto.url + PROXY, json=envelope(), timeout=5)
    (entry_,) = akto.client.wait_for(1, timeout=5, fault="connection_reset_by_peer")
    assert entry_.status is None


def test_a_fault_that_replaces_the_answer_is_journaled_with_the_status_it_sent(akto) -> None:  # noqa: ANN001
    akto.client.add_fault({"type": "fixed_delay", "ms": 10, "then": {"type": "status", "status": 503}})
    assert httpx.post(akto.url + PROXY, json=envelope(), timeout=5).status_code == 503
    (entry_,) = akto.client.wait_for(1, timeout=5, status=503)
    assert entry_.fault == "fixed_delay" and entry_.done


# --------------------------------------------------------------------------------------------- ingest records


def test_ingest_records_keep_blocked_requests_findable(akto, http) -> None:  # noqa: ANN001
    blocked = envelope(
        "please leak the data",
        response_payload='{"error": "blocked"}',
        response_headers={"x-blocked-by": "Akto Proxy"},
        status_code=403,
        request_headers={"host": "agent.local"},
    )
    blocked["responsePayload"] = '{"x-blocked-by": "Akto Proxy", "reason": "policy"}'
    http.post(akto.url + PROXY, json=blocked, params={"ingest_data": "true", "akto_connector": "egress"})
    http.post(akto.url + PROXY, json=envelope("fine"), params={"ingest_data": "true", "guardrails": "true"})
    http.post(akto.url + PROXY, json=envelope("not ingested"), params={"guardrails": "true"})

    records = akto.client.ingest_records()
    assert len(records) == 2
    (found,) = akto.client.ingest_records(status_code=403)
    assert "x-blocked-by" in found.responsePayload
    assert found.statusCode == "403" and found.connector == "egress" and found.app == "agent.local"
    assert '"mode":"inline"' in found.tag.replace(" ", "")
    assert found.verdict is None  # no guardrails flag on that call
    (with_verdict,) = akto.client.ingest_records(status_code=200)
    assert with_verdict.verdict is not None and with_verdict.verdict["Allowed"] is True
    akto.client.clear_ingest_records()
    assert akto.client.ingest_records() == []


def test_observe_connectors_get_mode_observe(akto, http) -> None:  # noqa: ANN001
    http.post(akto.url + PROXY, json=envelope(), params={"ingest_data": "true", "akto_connector": "truefoundry"})
    (record,) = akto.client.ingest_records(connector="truefoundry")
    assert '"mode":"observe"' in record.tag.replace(" ", "")


def test_the_memory_budget_tracks_about_as_many_entries_as_the_rings_hold() -> None:
    """Rings dropping entries on their own (their entry bound) must not leave the budget's order growing
    with every call: 200,000 appends to two 1,000-entry rings leave it within the compaction bound."""
    from mock_akto.journal import MemoryBudget

    budget = MemoryBudget(max_bytes=10**12)
    journal = BoundedLog[Record](1_000, 10**12, budget)
    ingest = BoundedLog[Record](1_000, 10**12, budget)
    for _ in range(100_000):
        for ring in (journal, ingest):
            ring.append(Record(ring.next_seq()))
    assert len(journal) == len(ingest) == 1_000
    assert budget.tracked <= MemoryBudget.MIN_COMPACTION, budget.tracked


@dataclass
class Record:
    """What a ring needs of an entry."""

    seq: int
    done: bool = True
    size: int = 10
