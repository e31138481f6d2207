"""The live activity feed behind ``/__admin/ui``: every finished call of every namespace, as it arrives.

Why no queue per browser: the journal rings already hold every call, bounded by count and bytes. A feed
reader keeps one cursor (a sequence number) per namespace and reads the rings forward; the engine only
wakes readers (:class:`ActivityPulse`), it never copies entries into a buffer a reader owns. A browser
that stops reading stalls its own stream at the socket (uvicorn's flow control), and when it reads again
the entries the ring dropped meanwhile are reported as skipped, not kept: memory stays flat whatever the
browser does. Each read is cut to :data:`MAX_BATCH` events.

Redactions are shown in place by aligning the payload the engine evaluated with the ``ModifiedPayload``
it answered: the text between the redaction tokens is the same in both, so the originals are what lies
between those common pieces (:func:`redaction_segments`).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from akto_wire import Verdict

if TYPE_CHECKING:
    from .journal import JournalEntry
    from .namespaces import Namespace

#: Most events one read of the feed returns (a reader that fell behind catches up batch by batch).
MAX_BATCH = 500
#: Calls a new reader is sent first (the most recent ones, oldest first).
DEFAULT_BACKLOG = 200
#: A comment line this often keeps proxies from closing an idle stream and lets the server notice a gone browser.
HEARTBEAT_S = 10.0
#: Redaction tokens as the engine writes them (``[REDACTED_EMAIL]``, ``[REDACTED]``...).
REDACTION_TOKEN = re.compile(r"\[REDACTED[A-Z0-9_]*\]")


class ActivityPulse:
    """Wakes every feed reader when any journal changed. Lives on the engine's event loop; cheap when no
    reader waits (a counter and an attribute check per call, like the journal's own wake-up).

    ``changes`` counts every change, so a reader that was busy sending (a stalled browser) knows on its
    return whether anything happened meanwhile, instead of waiting for a change that already came.
    """

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self.changes = 0

    def fire(self) -> None:
        self.changes += 1
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, seen: int, timeout: float) -> bool:
        """True when there were changes after the ``seen`` count, at once or before ``timeout`` seconds."""
        if self.changes != seen:
            return True
        if self._event is None:
            self._event = asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
            return True
        except TimeoutError:
            return False


def verdict_label(verdict: Verdict | None) -> str:
    """allowed / blocked / modified, or the behaviour (alert, warn...) of an allowed call that raised one."""
    if verdict is None:
        return ""
    if not verdict.allowed:
        return "blocked"
    if verdict.modified:
        return "modified"
    return verdict.behaviour.value or "allowed"


def direction(entry: JournalEntry) -> str:
    """request, response, or both: which side of the LLM call the connector asked about."""
    flags = entry.flags
    sides = []
    if entry.request_verdict is not None or (flags is not None and flags.guardrails):
        sides.append("request")
    if entry.response_verdict is not None or (flags is not None and flags.response_guardrails):
        sides.append("response")
    if not sides:
        return "ingest" if flags is not None and flags.ingest_data else ""
    return "+".join(sides)


def _deciding(entry: JournalEntry) -> Verdict | None:
    """The verdict that decided the call: a block wins, then a modification, then the request's."""
    verdicts = [v for v in (entry.request_verdict, entry.response_verdict) if v is not None]
    for verdict in verdicts:
        if not verdict.allowed:
            return verdict
    for verdict in verdicts:
        if verdict.modified:
            return verdict
    return verdicts[0] if verdicts else None


def summary(entry: JournalEntry) -> dict[str, Any]:
    """One row of the activity page: small, no payloads (those come from the detail call)."""
    verdict = _deciding(entry)
    metadata = verdict.metadata if verdict is not None else None
    return {
        "namespace": entry.namespace, "seq": entry.seq, "time": entry.time, "path": entry.path,
        "connector": entry.connector, "app": entry.app, "direction": direction(entry),
        "verdict": verdict_label(verdict) or ("error" if entry.error else ""),
        "reason": verdict.reason if verdict is not None else (entry.error or ""),
        "policy": metadata.policy_name if metadata is not None else "",
        "latency_ms": None if entry.duration_ms is None else round(entry.duration_ms, 2),
        "fault": entry.fault or "", "status": entry.status,
    }


def redaction_segments(original: str, modified: str) -> list[dict[str, str]] | None:
    """``original`` cut into kept text and redacted spans (``{"text", "redacted_as"}``), or None when the
    two do not align (the modification was not a plain token swap). Linear in the payload size."""
    pieces = REDACTION_TOKEN.split(modified)
    tokens = REDACTION_TOKEN.findall(modified)
    if not tokens:
        return None
    segments: list[dict[str, str]] = []
    position = 0
    if not original.startswith(pieces[0]):
        return None
    if pieces[0]:
        segments.append({"text": pieces[0]})
    position = len(pieces[0])
    for index, token in enumerate(tokens):
        following = pieces[index + 1]
        last = index == len(tokens) - 1
        if last:
            end = len(original) - len(following) if following else len(original)
            if end < position or not original.endswith(following):
                return None
        else:
            end = original.find(following, position + 1) if following else position
            if end < 0:
                return None
        segments.append({"text": original[position:end], "redacted_as": token})
        if following:
            segments.append({"text": following})
        position = end + len(following)
    return segments if position == len(original) else None


def detail(entry: JournalEntry) -> dict[str, Any]:
    """One call in full: the summary, what was sent, the verdicts, and the redactions in place."""
    body = summary(entry)
    body.update({
        "method": entry.method, "request_payload": entry.request_payload,
        "response_payload": entry.response_payload, "request_headers": entry.request_headers,
        "truncated": entry.truncated, "error": entry.error, "note": entry.note,
        "verdicts": {}, "redactions": {},
    })
    for side, verdict, payload in (("request", entry.request_verdict, entry.request_payload),
                                   ("response", entry.response_verdict, entry.response_payload)):
        if verdict is None:
            continue
        body["verdicts"][side] = verdict.to_wire()
        if verdict.modified and payload and verdict.modified_payload:
            body["redactions"][side] = redaction_segments(payload, verdict.modified_payload)
    return body


@dataclass
class FeedReader:
    """One browser's place in the feed: a cursor per namespace journal (a namespace removed and made again
    has a new journal whose sequence starts over, hence the journal's identity next to the seq)."""

    cursors: dict[str, tuple[int, int]] = field(default_factory=dict)

    def _cursor(self, ns: Namespace) -> int:
        journal_id, seq = self.cursors.get(ns.name, (id(ns.journal), 0))
        return seq if journal_id == id(ns.journal) else 0

    def start(self, namespaces: Iterable[Namespace], backlog: int) -> list[dict[str, Any]]:
        """Position at the end of every journal; return the latest ``backlog`` finished calls, oldest first."""
        recent: list[JournalEntry] = []
        for ns in namespaces:
            entries = [e for e in ns.journal.after(0) if e.done]
            recent.extend(entries[-backlog:])
            self.cursors[ns.name] = (id(ns.journal), self._settled_cursor(ns, 0))
        recent.sort(key=lambda e: (e.time, e.seq))
        return [summary(e) for e in recent[-backlog:]]

    def read(self, namespaces: Iterable[Namespace], limit: int = MAX_BATCH) -> tuple[list[dict[str, Any]], int]:
        """Finished calls since the last read (at most ``limit``) and how many the rings dropped unread.

        A call still held by a fault (a delay) is left for a later read, once it has its answer.
        """
        events: list[dict[str, Any]] = []
        skipped = 0
        for ns in namespaces:
            cursor = self._cursor(ns)
            items = ns.journal.after(cursor)
            first = next(iter(ns.journal.after(0)), None)
            if first is not None and cursor and first.seq > cursor + 1:
                skipped += first.seq - cursor - 1
            for entry in items:
                if not entry.done or len(events) >= limit:
                    break
                events.append(summary(entry))
                cursor = entry.seq
            if first is not None and cursor < first.seq - 1:
                cursor = first.seq - 1
            self.cursors[ns.name] = (id(ns.journal), cursor)
        return events, skipped

    @staticmethod
    def _settled_cursor(ns: Namespace, since: int) -> int:
        """The seq up to which every entry is finished (pending ones are sent when they finish)."""
        cursor = since
        for entry in ns.journal.after(since):
            if not entry.done:
                break
            cursor = entry.seq
        return cursor
