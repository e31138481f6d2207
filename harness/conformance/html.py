"""The conformance matrix as one self-contained HTML file (no scripts, no external assets): one row per
scenario, one column per connector; each cell shows what the profile expected, what was observed, the
evidence (failed checks, status, time) and the reason of an expected failure or a skip."""

from __future__ import annotations

from html import escape
from typing import Sequence

from harness.scenarios.runner import ScenarioResult

EXPECTED = {"passed": "pass", "failed": "pass", "xfailed": "expected failure", "xpassed": "expected failure",
            "skipped": "not applicable", "error": "pass"}
OBSERVED = {"passed": "pass", "failed": "FAIL", "xfailed": "failed (as expected)", "xpassed": "PASSED (unexpected)",
            "skipped": "not run", "error": "ERROR"}
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}
th,td{border:1px solid #bbb;padding:.3em .5em;vertical-align:top;font-size:.85em}th{background:#eee}
td.passed{background:#e6f4e6}td.failed,td.error,td.xpassed{background:#fbd5d5}td.xfailed{background:#fff3cd}
td.skipped{background:#eee;color:#555}.desc{color:#555;font-size:.8em}pre{white-space:pre-wrap;margin:.2em 0;max-width:40em}"""


def html_matrix(results: Sequence[ScenarioResult], descriptions: dict[str, str], title: str = "Akto conformance") -> str:
    connectors = list(dict.fromkeys(r.connector for r in results))
    scenarios = list(dict.fromkeys(r.scenario for r in results))
    by_key = {(r.scenario, r.connector): r for r in results}
    differing = sum(not r.ok for r in results)
    rows = []
    for scenario in scenarios:
        cells = [f"<td><b>{escape(scenario)}</b><div class=desc>{escape(descriptions.get(scenario, ''))}</div></td>"]
        for connector in connectors:
            result = by_key.get((scenario, connector))
            cells.append("<td></td>" if result is None else _cell(result))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "<tr><th>scenario</th>" + "".join(f"<th>{escape(c)}</th>" for c in connectors) + "</tr>"
    summary = f"{len(results)} results, {differing} differ from the profile" + (" (exit 1)" if differing else "")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)}</title><style>{STYLE}</style>"
            f"</head><body><h1>{escape(title)}</h1><p>{escape(summary)}</p><table>{head}{''.join(rows)}</table>"
            "</body></html>\n")


def _cell(result: ScenarioResult) -> str:
    parts = [f"expected: {escape(EXPECTED[result.outcome])}<br>observed: <b>{escape(OBSERVED[result.outcome])}</b>"]
    if result.reason:
        parts.append(f"<br>reason: {escape(result.reason)}")
    evidence = []
    if result.status is not None:
        evidence.append(f"status {result.status}, {result.elapsed_ms:.0f} ms")
    evidence += result.problems
    if evidence:
        parts.append("<pre>" + escape("\n".join(evidence)) + "</pre>")
    if result.log_tail:
        parts.append("<details><summary>host log</summary><pre>" + escape(result.log_tail) + "</pre></details>")
    return f"<td class={result.outcome}>{''.join(parts)}</td>"
