"""Scenario results as JUnit XML (for CI) and as a Markdown matrix, scenario x connector (for people)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable, Sequence

from harness.scenarios.runner import ScenarioResult

CELL = {
    "passed": "✅ pass",
    "failed": "❌ FAIL",
    "skipped": "⏭ skip",
    "xfailed": "⚠️ known gap",
    "xpassed": "❗ gap fixed?",
    "error": "💥 error",
}


def junit_xml(results: Sequence[ScenarioResult], suite: str = "akto-scenarios") -> str:
    """One ``testcase`` per (scenario, connector): classname = connector, name = scenario.

    Known gaps (xfail) are reported as skipped with their reason, like pytest does; an xpass is a failure
    (strict: the expectation file must be updated).
    """
    root = ET.Element("testsuite", name=suite, tests=str(len(results)),
                      failures=str(sum(r.outcome in ("failed", "xpassed") for r in results)),
                      errors=str(sum(r.outcome == "error" for r in results)),
                      skipped=str(sum(r.outcome in ("skipped", "xfailed") for r in results)),
                      time=f"{sum(r.elapsed_ms for r in results) / 1000:.3f}")
    for result in results:
        case = ET.SubElement(root, "testcase", classname=result.connector, name=result.scenario,
                             time=f"{result.elapsed_ms / 1000:.3f}")
        if result.outcome in ("failed", "xpassed"):
            message = "; ".join(result.problems) or f"expected to fail ({result.reason}) but passed"
            failure = ET.SubElement(case, "failure", message=message[:500])
            failure.text = result.summary() + ("\n--- host log ---\n" + result.log_tail if result.log_tail else "")
        elif result.outcome == "error":
            ET.SubElement(case, "error", message=result.reason[:500]).text = result.summary()
        elif result.outcome == "skipped":
            ET.SubElement(case, "skipped", message=result.reason)
        elif result.outcome == "xfailed":
            ET.SubElement(case, "skipped", type="pytest.xfail", message=f"known gap: {result.reason}").text = (
                "\n".join(result.problems)
            )
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def markdown_matrix(results: Sequence[ScenarioResult], descriptions: dict[str, str] | None = None) -> str:
    """A table with one row per scenario and one column per connector; notes explain gaps and failures."""
    connectors = list(dict.fromkeys(r.connector for r in results))
    scenarios = list(dict.fromkeys(r.scenario for r in results))
    by_key = {(r.scenario, r.connector): r for r in results}
    notes: list[str] = []
    lines = ["| scenario | " + " | ".join(connectors) + " |", "|---|" + "---|" * len(connectors)]
    for scenario in scenarios:
        cells = []
        for connector in connectors:
            result = by_key.get((scenario, connector))
            if result is None:
                cells.append("")
                continue
            cell = CELL[result.outcome]
            if result.outcome != "passed":
                notes.append(_note(len(notes) + 1, result))
                cell += f" [{len(notes)}]"
            cells.append(cell)
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    totals = ", ".join(f"{connector}: {_totals(r for r in results if r.connector == connector)}" for connector in connectors)
    parts = ["\n".join(lines), "", f"Totals: {totals}."]
    if notes:
        parts += ["", "Notes:", "", *notes]
    if descriptions:
        parts += ["", "Scenarios:", ""] + [f"- **{name}**: {descriptions[name]}" for name in scenarios if name in descriptions]
    return "\n".join(parts) + "\n"


def write_reports(results: Sequence[ScenarioResult], *, junit: str | Path | None = None,
                  markdown: str | Path | None = None, descriptions: dict[str, str] | None = None) -> None:
    for path, text in ((junit, junit_xml(results) if junit else ""),
                       (markdown, markdown_matrix(results, descriptions) if markdown else "")):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)


def _note(number: int, result: ScenarioResult) -> str:
    detail = "; ".join(result.problems)
    what = {"skipped": "skipped", "xfailed": "known gap", "xpassed": "expected a gap, but it passed",
            "failed": "failed", "error": "error"}[result.outcome]
    text = f"{number}. {result.scenario} on {result.connector}: {what}"
    if result.reason:
        text += f": {result.reason}"
    if detail:
        text += f" (observed: {detail})"
    return text.replace("|", "\\|")


def _totals(results: Iterable[ScenarioResult]) -> str:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return " ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
