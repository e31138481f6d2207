"""Raw per-request timings and their percentiles, exact and HDR, and the console results are printed on.

Shared by ``bench`` and ``loadtests`` (neither imports the other).

Why not Locust's or wrk's numbers: Locust rounds response times (to 100 ms between 1 s and 10 s), so a
gate around a 5 s timeout cannot tell 4.95 s from 5.05 s. We keep every timing twice: in an HDR histogram
(bounded memory, 3 significant digits, good for millions of samples) and, up to ``keep_exact`` samples, in
a plain list for exact nearest-rank percentiles.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from hdrh.histogram import HdrHistogram
from rich.console import Console

#: HDR range in microseconds: 1 µs .. 1 hour, 3 significant digits (0.1% relative error).
HDR_LOWEST_US = 1
HDR_HIGHEST_US = 3_600_000_000
HDR_SIGNIFICANT_DIGITS = 3

DEFAULT_PERCENTILES = (50.0, 90.0, 99.0, 99.9)

#: Where tables and PASS/FAIL lines go. Wide enough for the full comparison table even when output goes to
#: a file or a CI log (not a terminal).
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def exact_percentile(sorted_values: Sequence[float], percentile: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (no interpolation: a value that was observed).

    ``percentile`` is 0..100. Raises ``ValueError`` on an empty sequence, because "p99 of nothing" hiding
    as 0 would make an empty run pass every budget.
    """
    if not sorted_values:
        raise ValueError("no samples")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {percentile}")
    rank = max(1, math.ceil(percentile / 100.0 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def new_histogram() -> HdrHistogram:
    """An HDR histogram in microseconds over 1 µs .. 1 h."""
    return HdrHistogram(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_SIGNIFICANT_DIGITS)


@dataclass(frozen=True)
class Summary:
    """Percentiles of one set of timings, in milliseconds, plus throughput when the wall time is known."""

    count: int
    percentiles_ms: dict[float, float]
    min_ms: float
    max_ms: float
    mean_ms: float
    errors: int = 0
    wall_s: float | None = None
    exact: bool = True

    @property
    def p50(self) -> float:
        return self.percentiles_ms[50.0]

    @property
    def p99(self) -> float:
        return self.percentiles_ms[99.0]

    @property
    def rps(self) -> float | None:
        """Completed requests (errors included) per second of wall time, when the wall time is known."""
        if not self.wall_s:
            return None
        return (self.count + self.errors) / self.wall_s


@dataclass
class Timings:
    """Raw per-request latencies of one variant or one endpoint.

    ``record_ns`` takes a duration in nanoseconds (from ``time.perf_counter_ns``); ``record_ms`` takes one
    in milliseconds (for tools that report floats). Errors are counted separately, never as timings.
    Recording is a list append (the histogram is filled lazily, when read): the load generator measuring
    the server must not spend its own time on bookkeeping.
    """

    name: str = ""
    keep_exact: int = 2_000_000
    samples_us: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0
    _histogram: HdrHistogram = field(default_factory=new_histogram, repr=False)
    _flushed: int = 0  # samples_us[:_flushed] are already in _histogram
    _dropped_exact: int = 0

    def record_ns(self, duration_ns: int) -> None:
        self._record_us(duration_ns / 1_000.0)

    def record_ms(self, duration_ms: float) -> None:
        self._record_us(duration_ms * 1_000.0)

    def record_error(self) -> None:
        self.errors += 1

    def _record_us(self, us: float) -> None:
        if len(self.samples_us) < self.keep_exact:
            self.samples_us.append(us)
        else:
            self._histogram.record_value(_clamp(us))
            self._dropped_exact += 1

    @property
    def histogram(self) -> HdrHistogram:
        """Every sample in an HDR histogram (microseconds)."""
        for us in self.samples_us[self._flushed:]:
            self._histogram.record_value(_clamp(us))
        self._flushed = len(self.samples_us)
        return self._histogram

    @property
    def count(self) -> int:
        return len(self.samples_us) + self._dropped_exact

    @property
    def all_exact(self) -> bool:
        """True when every sample is in the exact list (exact percentiles cover the whole run)."""
        return self._dropped_exact == 0

    def merge(self, other: "Timings") -> None:
        """Add another variant round's samples (used by the interleaved runner)."""
        self.histogram.add(other.histogram)  # both flushed: every sample of both is in self._histogram now
        room = max(0, self.keep_exact - len(self.samples_us))
        self.samples_us.extend(other.samples_us[:room])
        self._flushed = len(self.samples_us)
        self._dropped_exact += other._dropped_exact + max(0, len(other.samples_us) - room)
        self.errors += other.errors
        self.wall_s += other.wall_s

    def add_histogram(self, histogram: HdrHistogram) -> None:
        """Add samples known only as a histogram (one shipped by another process): from now on this
        ``Timings`` answers from HDR (``all_exact`` is False), within 0.1% of the true values."""
        self.histogram.add(histogram)
        self._dropped_exact += histogram.get_total_count()

    def exact_ms(self, percentile: float) -> float:
        """Exact nearest-rank percentile in ms over the kept samples."""
        return exact_percentile(sorted(self.samples_us), percentile) / 1_000.0

    def hdr_ms(self, percentile: float) -> float:
        """HDR percentile in ms (within 0.1% of the true value, over every sample)."""
        if self.count == 0:
            raise ValueError(f"{self.name or 'timings'}: no samples")
        return self.histogram.get_value_at_percentile(percentile) / 1_000.0

    def fraction_over_ms(self, threshold_ms: float) -> float:
        """Share of samples strictly above ``threshold_ms`` (exact when every sample was kept)."""
        if self.all_exact and self.samples_us:
            limit = threshold_ms * 1_000.0
            return sum(1 for v in self.samples_us if v > limit) / len(self.samples_us)
        if self.count == 0:
            raise ValueError(f"{self.name or 'timings'}: no samples")
        over = sum(
            item.count_added_in_this_iter_step
            for item in self.histogram.get_recorded_iterator()
            if item.value_iterated_to > threshold_ms * 1_000.0
        )
        return over / self.count

    def summary(self, percentiles: Iterable[float] = DEFAULT_PERCENTILES) -> Summary:
        """Exact percentiles when every sample was kept, HDR ones otherwise (``Summary.exact`` says which)."""
        wanted = sorted(set(percentiles) | {50.0, 99.0})
        if self.count == 0:
            raise ValueError(f"{self.name or 'timings'}: no samples")
        if self.all_exact:
            ordered = sorted(self.samples_us)
            values = {p: exact_percentile(ordered, p) / 1_000.0 for p in wanted}
            low, high, mean = ordered[0] / 1_000.0, ordered[-1] / 1_000.0, sum(ordered) / len(ordered) / 1_000.0
        else:
            values = {p: self.hdr_ms(p) for p in wanted}
            low = self.histogram.get_min_value() / 1_000.0
            high = self.histogram.get_max_value() / 1_000.0
            mean = self.histogram.get_mean_value() / 1_000.0
        return Summary(
            count=self.count, percentiles_ms=values, min_ms=low, max_ms=high, mean_ms=mean,
            errors=self.errors, wall_s=self.wall_s or None, exact=self.all_exact,
        )


def _clamp(us: float) -> int:
    return min(max(int(round(us)), HDR_LOWEST_US), HDR_HIGHEST_US)


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.ns``: one monotonic duration, for recording into Timings."""

    __slots__ = ("start", "ns")

    def __enter__(self) -> "Stopwatch":
        self.ns = 0
        self.start = time.perf_counter_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ns = time.perf_counter_ns() - self.start
