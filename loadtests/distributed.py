"""Exact timings across ``locust --master`` and ``--worker``s: HDR histograms shipped, merged on the master.

Locust's master only gets each worker's rounded response-time buckets, so its distributed percentiles are
those of rounded values. Here every worker also keeps its own :class:`RawTimings` of what happened since its
last report, and on Locust's ``report_to_master`` event adds them to the report as compressed HDR histograms
(HdrHistogram's own encoding: zlib + base64, a few hundred bytes per request name); the master decodes them
on ``worker_report`` into its :class:`RawTimings`, which the budgets and the HTML report then read.
Merged percentiles are HDR ones: within 0.1% of the union of what the workers measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hdrh.histogram import HdrHistogram

from harness.timing import Timings
from loadtests.recorder import RawTimings

if TYPE_CHECKING:
    from locust.env import Environment

#: The key our histograms travel under in a worker's report (beside Locust's own "stats").
REPORT_KEY = "akto_timings"
FORMAT_VERSION = 1


def encode(raw: RawTimings) -> dict[str, Any]:
    """What one worker recorded since its last report, as compact, msgpack-friendly data."""
    series = []
    for (name, outcome), timings in raw.by_outcome.items():
        series.append([name, outcome, raw.outcomes[(name, outcome)], raw.failures_by_outcome[(name, outcome)],
                       _encode(timings)])
    seconds = [[second, _encode(timings)] for second, timings in raw.per_second.items()]
    return {"v": FORMAT_VERSION, "series": series, "seconds": seconds}


def absorb(raw: RawTimings, payload: dict[str, Any]) -> None:
    """Merge one worker's report into the master's timings (by name, by outcome, overall, per second)."""
    if payload.get("v") != FORMAT_VERSION:
        raise ValueError(f"timings report version {payload.get('v')!r}, expected {FORMAT_VERSION}")
    for name, outcome, count, failed, encoded in payload["series"]:
        histogram = _decode(encoded)
        raw.outcomes[(name, outcome)] += count
        if failed:
            raw.failures[name] += failed
            raw.failures_by_outcome[(name, outcome)] += failed
        for timings in (raw.total, _slot(raw.by_name, name, name),
                        _slot(raw.by_outcome, (name, outcome), f"{name} [{outcome}]")):
            timings.add_histogram(histogram)
    for second, encoded in payload["seconds"]:
        _slot(raw.per_second, int(second), str(second)).add_histogram(_decode(encoded))


class WorkerShipper:
    """On a worker: record every request into a fresh :class:`RawTimings`, ship and restart it per report."""

    def __init__(self) -> None:
        self.pending = RawTimings()

    def attach(self, environment: Environment) -> "WorkerShipper":
        environment.events.request.add_listener(self._on_request)
        environment.events.report_to_master.add_listener(self.on_report_to_master)
        return self

    def _on_request(self, **kwargs: Any) -> None:
        self.pending.on_request(**kwargs)

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if self.pending.total.count:
            data[REPORT_KEY] = encode(self.pending)
            self.pending = RawTimings()


class MasterMerger:
    """On the master: fold every worker's shipped histograms into ``raw``."""

    def __init__(self, raw: RawTimings) -> None:
        self.raw = raw
        self.reports = 0

    def attach(self, environment: Environment) -> "MasterMerger":
        environment.events.worker_report.add_listener(self.on_worker_report)
        return self

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        payload = data.get(REPORT_KEY)
        if payload is not None:
            absorb(self.raw, payload)
            self.reports += 1


def _encode(timings: Timings) -> str:
    encoded = timings.histogram.encode()
    return encoded.decode("ascii") if isinstance(encoded, bytes) else encoded


def _decode(encoded: str) -> HdrHistogram:
    return HdrHistogram.decode(encoded.encode("ascii"))


def _slot(table: dict[Any, Timings], key: Any, name: str) -> Timings:
    timings = table.get(key)
    if timings is None:
        timings = table[key] = Timings(name=name)
    return timings
