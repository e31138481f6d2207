"""The run's report: one HTML file (plotly, its JavaScript inlined: viewable offline) and a CSV of percentiles.

The HTML holds latency over time (p50 and p99 of each second), a latency histogram per request name, the
budget table (what held, what broke) and the run's configuration. Every number comes from the exact
timings (:class:`RawTimings`), never from Locust's rounded stats.
"""

from __future__ import annotations

import csv
import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import plotly.graph_objects as go
from plotly.io import to_html
from plotly.subplots import make_subplots

from loadtests.budgets import Check
from loadtests.recorder import RawTimings

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def timeline_figure(raw: RawTimings) -> go.Figure:
    """p50 and p99 of the requests answered in each second of the run, and how many there were."""
    seconds = sorted(raw.per_second)
    start = seconds[0] if seconds else 0
    summaries = [raw.per_second[s].summary() for s in seconds]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    x = [s - start for s in seconds]
    figure.add_trace(go.Scatter(x=x, y=[s.p50 for s in summaries], name="p50 ms", mode="lines+markers"))
    figure.add_trace(go.Scatter(x=x, y=[s.p99 for s in summaries], name="p99 ms", mode="lines+markers"))
    figure.add_trace(go.Bar(x=x, y=[s.count for s in summaries], name="requests/s", opacity=0.25),
                     secondary_y=True)
    figure.update_layout(title="Latency over time (exact, per second)", height=380, margin={"t": 50})
    figure.update_xaxes(title_text="seconds since the first answer")
    figure.update_yaxes(title_text="latency (ms)", secondary_y=False)
    figure.update_yaxes(title_text="requests per second", secondary_y=True)
    return figure


def histogram_figure(raw: RawTimings) -> go.Figure:
    """One latency histogram per request name (overlaid), from every exact (or HDR-merged) value."""
    figure = go.Figure()
    for name, timings in sorted(raw.by_name.items()):
        if timings.all_exact:
            values = [us / 1000.0 for us in timings.samples_us]
        else:  # merged from workers: the histogram's bucket values, each as often as it was recorded
            values = [item.value_iterated_to / 1000.0 for item in timings.histogram.get_recorded_iterator()
                      for _ in range(item.count_added_in_this_iter_step)]
        figure.add_trace(go.Histogram(x=values, name=name, opacity=0.6, nbinsx=80))
    figure.update_layout(title="Latency histogram per request name", barmode="overlay", height=380,
                         xaxis_title="latency (ms)", yaxis_title="requests", margin={"t": 50})
    return figure


def percentile_rows(raw: RawTimings) -> list[dict[str, str]]:
    """Exact percentiles per request name and status (the CSV, and the report's table)."""
    rows = []
    for (name, outcome), timings in sorted(raw.by_outcome.items()):
        s = timings.summary(PERCENTILES)
        rows.append({
            "name": name, "status": outcome, "count": str(s.count),
            "failed": str(raw.failures_by_outcome[(name, outcome)]),
            "min_ms": f"{s.min_ms:.3f}", **{f"p{p:g}_ms": f"{s.percentiles_ms[p]:.3f}" for p in PERCENTILES},
            "max_ms": f"{s.max_ms:.3f}", "mean_ms": f"{s.mean_ms:.3f}", "exact": "yes" if s.exact else "hdr",
        })
    return rows


def write_csv(path: str | Path, raw: RawTimings) -> None:
    rows = percentile_rows(raw)
    with Path(path).open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["name", "status", "count"])
        writer.writeheader()
        writer.writerows(rows)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], row_class: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        f"<tr class='{row_class[i] if i < len(row_class) else ''}'>"
        + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.held td:last-child{color:#17702b;font-weight:600}
tr.broke td:last-child{color:#b00020;font-weight:700}.verdict{font-size:18px;font-weight:700}"""


def write_html(path: str | Path, raw: RawTimings, checks: Sequence[Check], config: dict[str, str]) -> None:
    """The whole report in one self-contained file (plotly.js inlined once)."""
    timeline = to_html(timeline_figure(raw), include_plotlyjs=True, full_html=False)
    histogram = to_html(histogram_figure(raw), include_plotlyjs=False, full_html=False)
    if checks:
        held = all(c.held for c in checks)
        verdict = (f"<p class='verdict' style='color:{'#17702b' if held else '#b00020'}'>"
                   f"{'every budget held' if held else 'a budget broke'}</p>")
        budget_html = verdict + _table(("request", "bound", "limit", "measured", "result"),
                                       [(c.budget, c.metric, c.limit, c.measured, "held" if c.held else "BROKE")
                                        for c in checks], ["held" if c.held else "broke" for c in checks])
    else:
        budget_html = "<p>No budget file (<code>--budget</code>) was given.</p>"
    rows = percentile_rows(raw)
    percentiles = _table(list(rows[0]), [list(r.values()) for r in rows]) if rows else ""
    configuration = _table(("option", "value"), sorted(config.items()))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    document = f"""<!doctype html><html><head><meta charset="utf-8"><title>akto-harness load report</title>
<style>{STYLE}</style></head><body><h1>akto-harness load report</h1><p>{stamp} · {raw.total.count} requests</p>
<h2>Budgets</h2>{budget_html}<h2>Latency over time</h2>{timeline}<h2>Latency per request name</h2>{histogram}
<h2>Exact percentiles per request and status</h2>{percentiles}<h2>Run configuration</h2>{configuration}
</body></html>"""
    Path(path).write_text(document, encoding="utf-8")
