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

import argparse
import asyncio
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Iterator, Mapping, Sequence

from rich.table import Table

from bench.load import closed_loop, open_loop
from harness.timing import Stopwatch, Summary, Timings, console, exact_percentile

__all__ = [
    "ENGINE_BEHAVIOURS", "Check", "add_concurrency_options", "Stopwatch", "Summary", "Timings", "Variant", "closed_loop", "conclude", "console", "cpu_steal_note", "exact_percentile",
    "figures", "interleave", "interleave_async", "machine_notes", "open_loop", "print_checks", "print_comparison",
    "print_cpu", "round_orders", "rounds_with_cpu", "stall_check",
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


#: The engine behaviours the connector concurrency benches measure throughput under (a fault on every call).
ENGINE_BEHAVIOURS: dict[str, dict[str, object] | None] = {"0 ms": None, "100 ms": {"type": "fixed_delay", "ms": 100}}


def add_concurrency_options(parser: argparse.ArgumentParser, guardrail: str) -> None:
    """The options the connector concurrency benches share (``guardrail``: what the help calls the connector)."""
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (after one warm-up round)")
    parser.add_argument("--stall-turns", type=int, default=3, help="requests per agent under the stalled engine")
    parser.add_argument("--timeout-s", type=int, default=1, help=f"the {guardrail}' engine timeout")
    parser.add_argument("--fail-mode", choices=["fail_open", "fail_closed"], default="fail_open")
    parser.add_argument("--engine", choices=list(ENGINE_BEHAVIOURS), action="append",
                        help="engine behaviours to measure throughput under (default: all)")
    parser.add_argument("--no-stall", action="store_true", help="skip the stalled-engine phase")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")


def rounds_with_cpu(names: Sequence[str], rounds: int, run: Callable[[str], Timings],
                    cpu_s: Callable[[str], float]) -> tuple[dict[str, Timings], dict[str, float]]:
    """Rotating rounds (one warm-up round thrown away) of ``run(name)``: the merged timings, and each
    variant's median CPU ms per request (``cpu_s(name)``: its process's CPU seconds so far)."""
    merged = {name: Timings(name=name) for name in names}
    cpu_ms: dict[str, list[float]] = {name: [] for name in names}
    for i, order in enumerate(round_orders(names, rounds + 1)):
        for name in order:
            before = cpu_s(name)
            timings = run(name)
            done = timings.count + timings.errors
            if i and done:
                merged[name].merge(timings)
                cpu_ms[name].append((cpu_s(name) - before) / done * 1000)
    return merged, {name: statistics.median(values) if values else float("nan") for name, values in cpu_ms.items()}


def print_cpu(cpu_ms: Mapping[str, float], baseline: str) -> None:
    """Each variant's process CPU per request and its ratio to ``baseline``'s: the throughput ratio a
    CPU-bound process reaches, whatever else the machine runs."""
    for name, ms in cpu_ms.items():
        console.print(f"  {name:<22} proxy CPU {ms:.2f} ms/request  (CPU ratio vs {baseline} {cpu_ms[baseline] / ms:.2f})")


def figures(results: Mapping[str, Timings], cpu_ms: Mapping[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Each variant's req/s, p50/p99/max, errors (and CPU ms per request), for a ``--json`` report."""
    report: dict[str, dict[str, float]] = {}
    for name, timings in results.items():
        s = timings.summary()
        report[name] = {"rps": s.rps, "p50_ms": s.p50, "p99_ms": s.p99, "max_ms": s.max_ms, "errors": timings.errors}
        if cpu_ms is not None:
            report[name]["cpu_ms"] = cpu_ms[name]
    return report


def stall_check(who: str, timings: Timings, timeout_s: float, margin_s: float) -> Check:
    """Issue 12.1's target: every request under a stalled engine answered as the fail mode says, in time."""
    slowest = timings.summary().max_ms / 1000
    return Check(f"{who} decides every request under a stall, as its fail mode says",
                 f"slowest {slowest:.3f}s, {timings.errors} other answers", f"<= {timeout_s + margin_s:g}s, 0",
                 slowest <= timeout_s + margin_s and not timings.errors)


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


def conclude(checks: Sequence[Check], report: Mapping[str, object], json_path: "os.PathLike[str] | None",
             strict: bool) -> int:
    """Print the targets, write the ``--json`` report when asked; the exit code (1 only when ``strict`` and a
    target was missed)."""
    ok = print_checks(checks)
    if json_path is not None:
        with open(json_path, "w") as out:
            json.dump(report, out, indent=2)
    return 0 if ok or not strict else 1


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
