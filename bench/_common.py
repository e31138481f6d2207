"""Shared benchmark tooling: the interleaved A/B/C runner and the side-by-side table.

Every bench script (engine and connector overhead) compares variants in ONE run: the variants run in
alternating rounds (A B C, then B C A, then C A B, ...) so that noise from the neighbours on this 2-core
machine hits every variant alike, and the table prints p50/p99 and their ratios to a baseline side by side.

Typical use::

    from bench._common import Variant, interleave_async, print_comparison
    results = await interleave_async([Variant("direct", run_direct), Variant("proxy", run_proxy)], rounds=5)
    print_comparison(results, baseline="direct", title="LiteLLM overhead")

Raw timings, percentiles and the console live in :mod:`harness.timing` (shared with ``loadtests``); load generators in :mod:`bench.load`. The names
other scripts need are re-exported here so one import is enough.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterator, Mapping, Sequence

from rich.table import Table

from bench.load import closed_loop, open_loop
from harness.timing import Stopwatch, Summary, Timings, console, exact_percentile

__all__ = [
    "Check", "Stopwatch", "Summary", "Timings", "Variant", "closed_loop", "console", "cpu_steal_note", "exact_percentile",
    "interleave", "interleave_async", "machine_notes", "open_loop", "print_checks", "print_comparison",
    "round_orders",
]


@dataclass(frozen=True)
class Variant:
    """One thing being measured: ``run`` performs ONE round and returns that round's timings."""

    name: str
    run: Callable[[], Timings] | Callable[[], Awaitable[Timings]]


def round_orders(names: Sequence[str], rounds: int) -> Iterator[list[str]]:
    """Rotate the order each round (ABC, BCA, CAB, ...): every variant spends as many rounds first as last."""
    for r in range(rounds):
        k = r % len(names)
        yield list(names[k:]) + list(names[:k])


def _collect(variants: Sequence[Variant]) -> tuple[dict[str, Variant], dict[str, Timings]]:
    by_name = {v.name: v for v in variants}
    if len(by_name) != len(variants):
        raise ValueError("variant names must be unique")
    return by_name, {name: Timings(name=name) for name in by_name}


def interleave(variants: Sequence[Variant], rounds: int, *, warmup_rounds: int = 1) -> dict[str, Timings]:
    """Run synchronous variants in rotating rounds; warm-up rounds are run and thrown away."""
    by_name, totals = _collect(variants)
    for i, order in enumerate(round_orders(list(by_name), warmup_rounds + rounds)):
        for name in order:
            result = by_name[name].run()
            if not isinstance(result, Timings):
                raise TypeError(f"variant {name!r} must return Timings (use interleave_async for coroutines)")
            if i >= warmup_rounds:
                totals[name].merge(result)
    return totals


async def interleave_async(
    variants: Sequence[Variant], rounds: int, *, warmup_rounds: int = 1
) -> dict[str, Timings]:
    """Like :func:`interleave` for variants whose ``run`` is a coroutine function (plain ones work too)."""
    by_name, totals = _collect(variants)
    for i, order in enumerate(round_orders(list(by_name), warmup_rounds + rounds)):
        for name in order:
            result = by_name[name].run()
            if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                result = await result
            if i >= warmup_rounds:
                totals[name].merge(result)
    return totals


def _summary(value: Timings | Summary) -> Summary:
    return value.summary() if isinstance(value, Timings) else value


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


def print_comparison(
    results: Mapping[str, Timings | Summary],
    *,
    baseline: str | None = None,
    title: str = "",
    percentiles: Sequence[float] = (50.0, 99.0),
) -> list[dict[str, object]]:
    """Print one row per variant: count, errors, req/s, percentiles, and ratios / added ms vs ``baseline``.

    Returns the rows as plain dicts (for docs or JSON). ``baseline`` defaults to the first variant.
    """
    if not results:
        raise ValueError("nothing to print")
    summaries = {name: _summary(v) for name, v in results.items()}
    base_name = baseline or next(iter(summaries))
    if base_name not in summaries:
        raise KeyError(f"baseline {base_name!r} is not one of {list(summaries)}")
    base = summaries[base_name]

    table = Table(title=f"{title} (ratios vs {base_name})" if title else f"ratios vs {base_name}", title_justify="left")
    for header in ("variant", "n", "err", "req/s", *(f"p{p:g} ms" for p in percentiles), "max ms",
                   "req/s ratio", "p50 ratio", "p99 ratio", "+p50 ms", "+p99 ms"):
        table.add_column(header, justify="left" if header == "variant" else "right")
    rows: list[dict[str, object]] = []
    for name, s in summaries.items():
        rps = s.rps
        cells = [
            name, str(s.count), str(s.errors), f"{rps:,.0f}" if rps else "-",
            *(f"{s.percentiles_ms.get(p, float('nan')):.2f}" for p in percentiles), f"{s.max_ms:.2f}",
            _ratio(rps, base.rps), _ratio(s.p50, base.p50), _ratio(s.p99, base.p99),
            f"{s.p50 - base.p50:+.2f}", f"{s.p99 - base.p99:+.2f}",
        ]
        table.add_row(*cells)
        rows.append({
            "variant": name, "count": s.count, "errors": s.errors, "rps": rps,
            **{f"p{p:g}_ms": s.percentiles_ms.get(p) for p in percentiles}, "max_ms": s.max_ms,
            "exact": s.exact,
        })
    console.print(table)
    if not all(s.exact for s in summaries.values()):
        console.print("[dim](some percentiles from the HDR histogram: within 0.1% of the exact value)[/dim]")
    return rows


@dataclass(frozen=True)
class Check:
    """One target from the issue, with the measured value and whether it was met."""

    name: str
    measured: str
    target: str
    ok: bool


def print_checks(checks: Sequence[Check]) -> bool:
    """Print targets as PASS/MISS lines; returns True when every target was met."""
    for c in checks:
        mark = "[green]PASS[/green]" if c.ok else "[red]MISS[/red]"
        console.print(f"{mark}  {c.name}: {c.measured} (target {c.target})")
    return all(c.ok for c in checks)


def _cpu_jiffies() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs from /proc/stat, or None where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


_JIFFIES_AT_START = _cpu_jiffies()


def cpu_steal_note() -> str:
    """How much CPU time the hypervisor took from this virtual machine since the script started.

    On a shared host, stolen time stalls a pinned server for milliseconds at a time whatever it runs; the
    raw app sees it as much as the engine, which is why every table has the raw app beside the engine.
    """
    now = _cpu_jiffies()
    if now is None or _JIFFIES_AT_START is None or now[1] <= _JIFFIES_AT_START[1]:
        return "CPU steal: unknown"
    steal = (now[0] - _JIFFIES_AT_START[0]) / (now[1] - _JIFFIES_AT_START[1])
    return f"CPU time stolen by the hypervisor since the script started: {steal:.1%}"


def machine_notes() -> str:
    """One line describing where the numbers were measured (goes beside every published result)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = "/".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{_dt.date.today().isoformat()}, {cpu}, {os.cpu_count()} cores, load average {load} (1/5/15 min: other "
        f"work on the machine), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, taskset {'yes' if shutil.which('taskset') else 'no'}, "
        f"argv: {' '.join(sys.argv)}"
    )
