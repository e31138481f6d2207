"""What the engine saw: a request journal and the ingest records, per namespace, in bounded rings.

Why bounded twice (entry count and payload bytes): WireMock's journal grows until the JVM runs out of
memory under load; ours drops the oldest entries instead, so memory stays flat however long a load test
runs. The hot path stores cheap slotted dataclasses holding references to strings it already has; the
pydantic models (:class:`JournalEntryModel`, :class:`IngestRecordModel`) are built only when read.

Waiting for N entries is event driven with a deadline (no polling, no sleeps): appends wake waiters only
when somebody waits, so a quiet journal costs one attribute check per call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, Generic, Iterator, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from akto_wire import FlagName, Flags, Verdict

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_PAYLOAD_CAP = 64 * 1024
#: Total payload characters one ring may hold before it drops its oldest entries.
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
#: Total payload characters every ring of the engine may hold together (journals and ingest records of all
#: namespaces): without it each namespace adds its own ~65 MB and the namespace cap allowed ~65 GB.
DEFAULT_MEMORY_BUDGET_BYTES = 256 * 1024 * 1024


def truncate(text: str | None, cap: int) -> tuple[str | None, bool]:
    """``text`` cut to ``cap`` characters, and whether it was cut."""
    if text is None or len(text) <= cap:
        return text, False
    return text[:cap], True


# --------------------------------------------------------------------------------------------- hot-path records


@dataclass(slots=True)
class JournalEntry:
    """One contract call as the engine handled it. ``status``/``duration_ms`` are None while a fault
    (a delay, a hang) still holds the answer; ``status`` stays None when the connection was broken."""

    seq: int
    time: float
    namespace: str
    method: str
    path: str
    flags: Flags | None
    app: str
    request_payload: str | None
    response_payload: str | None
    request_headers: str | None
    truncated: bool
    request_verdict: Verdict | None
    response_verdict: Verdict | None
    fault: str | None
    status: int | None
    duration_ms: float | None
    error: str | None
    done: bool
    size: int
    #: The legacy ``payload`` field of a ``/api/validate/*`` body, and ``note`` saying what the engine did
    #: with it (so a client whose text was ignored sees why, not just an empty verdict).
    legacy_payload: str | None = None
    note: str | None = None

    @property
    def connector(self) -> str:
        return self.flags.akto_connector if self.flags is not None else ""


@dataclass(slots=True)
class IngestRecord:
    """One ``ingest_data=true`` call: the traffic record Akto would publish (with its verdict, if any)."""

    seq: int
    time: float
    namespace: str
    path: str
    method: str
    connector: str
    app: str
    status_code: str
    status: str
    request_payload: str | None
    response_payload: str | None
    tag: str
    verdict: dict[str, Any] | None
    done: bool
    size: int
    #: Whose traffic it is (the envelope's ids, kept so connectors' configured ids can be checked).
    akto_account_id: str = ""
    akto_vxlan_id: str = ""

    def stamped(self, seq: int, time: float) -> "IngestRecord":
        """A copy for another call with the same body (the engine memoises what a body decides)."""
        return IngestRecord(seq, time, self.namespace, self.path, self.method, self.connector, self.app,
                            self.status_code, self.status, self.request_payload, self.response_payload, self.tag,
                            self.verdict, self.done, self.size, self.akto_account_id, self.akto_vxlan_id)


# --------------------------------------------------------------------------------------------- read models


class JournalEntryModel(BaseModel):
    """A journal entry as the admin API and the Python client see it."""

    seq: int
    time: float = Field(description="epoch seconds when the call arrived")
    namespace: str
    method: str
    path: str
    flags: Flags | None = None
    connector: str = ""
    app: str = Field("", description="the host in the envelope's requestHeaders (the Akto API collection)")
    request_payload: str | None = None
    response_payload: str | None = None
    request_headers: str | None = None
    truncated: bool = False
    request_verdict: Verdict | None = None
    response_verdict: Verdict | None = None
    fault: str | None = Field(None, description="type of the fault applied, if any")
    status: int | None = Field(None, description="HTTP status answered; null while pending or when the socket was broken")
    duration_ms: float | None = None
    error: str | None = Field(None, description="why the call was rejected (4xx), if it was")
    done: bool = True
    legacy_payload: str | None = Field(
        None, description="the legacy `payload` field of a /api/validate/* body (the contract reads requestPayload "
                          "/ responsePayload), cut to the payload cap")
    note: str | None = Field(None, description="what the engine did with a field it was sent, e.g. an ignored legacy payload")

    @classmethod
    def of(cls, entry: JournalEntry) -> "JournalEntryModel":
        return cls.model_construct(
            seq=entry.seq, time=entry.time, namespace=entry.namespace, method=entry.method, path=entry.path,
            flags=entry.flags, connector=entry.connector, app=entry.app, request_payload=entry.request_payload,
            response_payload=entry.response_payload, request_headers=entry.request_headers,
            truncated=entry.truncated, request_verdict=entry.request_verdict,
            response_verdict=entry.response_verdict, fault=entry.fault, status=entry.status,
            duration_ms=entry.duration_ms, error=entry.error, done=entry.done,
            legacy_payload=entry.legacy_payload, note=entry.note,
        )

    @property
    def verdicts(self) -> list[Verdict]:
        return [v for v in (self.request_verdict, self.response_verdict) if v is not None]


class IngestRecordModel(BaseModel):
    """An ingest record; field names follow the envelope (``statusCode``, ``requestPayload``...)."""

    model_config = ConfigDict(populate_by_name=True)

    seq: int
    time: float
    namespace: str
    path: str
    method: str
    connector: str = ""
    app: str = ""
    statusCode: str = ""
    status: str = ""
    requestPayload: str | None = None
    responsePayload: str | None = None
    tag: str = Field("", description="the tag as Akto stores it (``mode`` added when missing)")
    verdict: dict[str, Any] | None = Field(None, description="the guardrailsResult of the same call, if guardrails ran")
    akto_account_id: str = ""
    akto_vxlan_id: str = ""

    @classmethod
    def of(cls, record: IngestRecord) -> "IngestRecordModel":
        return cls.model_construct(
            seq=record.seq, time=record.time, namespace=record.namespace, path=record.path,
            method=record.method, connector=record.connector, app=record.app, statusCode=record.status_code,
            status=record.status, requestPayload=record.request_payload,
            responsePayload=record.response_payload, tag=record.tag, verdict=record.verdict,
            akto_account_id=record.akto_account_id, akto_vxlan_id=record.akto_vxlan_id,
        )


# --------------------------------------------------------------------------------------------- filters


@dataclass(slots=True, frozen=True)
class JournalQuery:
    """Filters over journal entries; every given filter must hold."""

    path: str | None = None
    connector: str | None = None
    app: str | None = None
    flag: FlagName | None = None
    status: int | None = None
    fault: str | None = None

    def __call__(self, entry: JournalEntry) -> bool:
        if self.path is not None and entry.path != self.path:
            return False
        if self.connector is not None and entry.connector != self.connector:
            return False
        if self.app is not None and entry.app != self.app:
            return False
        if self.flag is not None and (entry.flags is None or not getattr(entry.flags, self.flag)):
            return False
        if self.status is not None and entry.status != self.status:
            return False
        if self.fault is not None and entry.fault != self.fault:
            return False
        return True


@dataclass(slots=True, frozen=True)
class IngestQuery:
    """Filters over ingest records; ``status_code=403`` finds the blocked-request records."""

    status_code: str | None = None
    connector: str | None = None
    app: str | None = None
    path: str | None = None

    def __call__(self, record: IngestRecord) -> bool:
        return (
            (self.status_code is None or record.status_code == self.status_code)
            and (self.connector is None or record.connector == self.connector)
            and (self.app is None or record.app == self.app)
            and (self.path is None or record.path == self.path)
        )


# --------------------------------------------------------------------------------------------- the ring


class MemoryBudget:
    """One engine-wide bound on the payload characters all rings hold together; the oldest entry of the
    whole engine is evicted first (whichever namespace holds it), and every eviction is counted.

    The rings report what they add and free; the budget remembers (ring, seq) in append order, so the
    oldest entry is found without scanning the rings. Entries a ring dropped on its own (its entry bound)
    are forgotten from the front of that order as they come up (a full ring drops its oldest on every
    append, usually the order's oldest too); those behind an older live entry of another ring (an idle
    namespace) wait for a compaction, each time the order has doubled since the last one. Amortised O(1)
    per call, and the order never holds much more than twice the live entries (it once held up to 131,072,
    12 MB, and scanned them all on every call past that size). Not thread-safe: it lives on the event loop.
    """

    #: The order is never compacted below this many entries (a small engine never pays for it).
    MIN_COMPACTION = 16_384

    def __init__(self, max_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self.evicted = 0
        self._order: deque[tuple[BoundedLog[Any], int]] = deque()
        self._compact_at = self.MIN_COMPACTION

    def added(self, ring: "BoundedLog[Any]", seq: int, size: int, dropped: bool = False) -> None:
        """``ring`` appended entry ``seq`` (net ``size`` characters, after its own bounds ``dropped`` some)."""
        self.used += size
        order = self._order
        order.append((ring, seq))
        if dropped:
            while not order[0][0].holds(order[0][1]):  # stops at the latest at least: just appended
                order.popleft()
        while self.used > self.max_bytes and self._order:
            oldest_ring, oldest_seq = self._order.popleft()
            if oldest_ring is ring and oldest_seq == seq:
                self._order.appendleft((ring, seq))  # never evict what was just added
                break
            freed = oldest_ring.evict_oldest(oldest_seq)
            if freed is not None:
                self.used -= freed
                self.evicted += 1
        if len(self._order) >= self._compact_at:  # forget entries their rings dropped on their own
            self._order = deque((r, s) for r, s in self._order if r.holds(s))
            self._compact_at = max(self.MIN_COMPACTION, 2 * len(self._order))

    def released(self, size: int) -> None:
        """A ring freed ``size`` characters on its own (its bounds, a clear, a removed namespace)."""
        self.used -= size

    @property
    def tracked(self) -> int:
        """Entries in the append order, live or dropped by their ring and not yet compacted away."""
        return len(self._order)


class _Record(Protocol):
    seq: int
    done: bool
    size: int


R = TypeVar("R", bound=_Record)


class BoundedLog(Generic[R]):
    """An append-only ring bounded by entry count and by payload size, with wait-for-N.

    Sequence numbers keep growing across :meth:`clear`, so a ``since`` cursor taken before a reset stays
    meaningful. Not thread-safe: it lives on the engine's event loop, like everything that touches it.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
                 budget: "MemoryBudget | None" = None, on_change: Callable[[], None] | None = None) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.budget = budget
        self._items: deque[R] = deque()
        self._bytes = 0
        self._next_seq = 1
        self._generation = 0
        self._changed: asyncio.Event | None = None
        #: Called on every change too (the activity feed's wake-up, mock_akto/activity.py).
        self.on_change = on_change
        self.dropped = 0

    def next_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def append(self, item: R) -> None:
        items = self._items
        items.append(item)
        self._bytes += item.size
        released = dropped = 0
        while len(items) > self.max_entries or (self._bytes > self.max_bytes and len(items) > 1):
            size = items.popleft().size
            self._bytes -= size
            released += size
            dropped += 1
        if dropped:
            self.dropped += dropped
        if self.budget is not None:
            self.budget.added(self, item.seq, item.size - released, dropped > 0)
        self.notify()

    def evict_oldest(self, seq: int) -> int | None:
        """Drop the oldest entry if it is ``seq`` (the budget's pick): the characters freed, None if it is
        not here any more (dropped by the ring's own bounds, or cleared)."""
        items = self._items
        if not items or items[0].seq != seq:
            return None
        size = items.popleft().size
        self._bytes -= size
        self.dropped += 1
        return size

    def holds(self, seq: int) -> bool:
        items = self._items
        return bool(items) and items[0].seq <= seq <= items[-1].seq

    def notify(self) -> None:
        """Wake the waiters (an entry was added or finished); free when nobody waits."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        if self.on_change is not None:
            self.on_change()

    def clear(self) -> None:
        if self.budget is not None:
            self.budget.released(self._bytes)
        self._items.clear()
        self._bytes = 0
        self._generation += 1
        self.notify()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def payload_bytes(self) -> int:
        return self._bytes

    def after(self, since: int) -> Iterator[R]:
        """Entries with ``seq > since`` in order (sequence numbers in the ring are contiguous)."""
        items = self._items
        if not items:
            return iter(())
        start = max(0, since - items[0].seq + 1)
        return islice(items, start, None)

    def query(self, match: Callable[[R], bool], *, since: int = 0, limit: int | None = None) -> list[R]:
        """Matching entries in order. With ``since`` the first ``limit`` after it (paging forward);
        without, the latest ``limit``."""
        found = [item for item in self.after(since) if match(item)]
        if limit is None or len(found) <= limit:
            return found
        return found[:limit] if since else found[-limit:]

    def count(self, match: Callable[[R], bool], *, since: int = 0) -> int:
        return sum(1 for item in self.after(since) if match(item))

    async def wait_for(
        self, count: int, match: Callable[[R], bool], *, since: int = 0, timeout: float
    ) -> tuple[list[R], bool]:
        """Wait until ``count`` matching entries after ``since`` exist; ``(entries, reached)``.

        Scans incrementally: finished entries are counted once; entries still pending (a fault holding
        the answer) are re-examined on every wake-up, since their status may still change.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        settled: list[R] = []
        cursor = since
        generation = self._generation
        while True:
            if generation != self._generation:
                settled, cursor, generation = [], since, self._generation
            tail: list[R] = []
            for item in self.after(cursor):
                if not tail and item.done:
                    cursor = item.seq
                    if match(item):
                        settled.append(item)
                else:  # a pending entry and everything after it are looked at again next time
                    tail.append(item)
            found = settled + [item for item in tail if match(item)]
            if len(found) >= count:
                return found, True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return found, False
            if self._changed is None:
                self._changed = asyncio.Event()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

