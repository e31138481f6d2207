"""``make demo``: the fake Akto engine and the reference connectors on loopback, and a tour of traffic.

Everything runs on 127.0.0.1 and stops by itself (``--keep-running`` leaves it up until Ctrl-C).
Each leg prints what was sent and what came back, so a reader sees the contract at work: allow, block,
redact, and what a broken engine looks like to a client. Leg 1 tours the engine itself; legs 2-4
(harness/demo/legs.py) run each connector in its real host, whose start-up (LiteLLM's takes ~6 s) runs in
the background while leg 1 plays. The exit code is 1 when a host fails to start or a case does not end as
documented.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.panel import Panel
from rich.text import Text

from akto_wire import AKTO_CONNECTOR, FLAG_ON, GUARDRAILS, HTTP_PROXY_PATH, Envelope
from harness.demo.legs import LEGS, Leg
from harness.demo.table import CLEAN, INJECTION, PII, Row, console, show, timed
from harness.stack import FREE_PORTS, StackPorts, running_engine, start_in_background, stop_on_ctrl_c_or_sigterm
from mock_akto.client import MockAktoClient


# -- leg 1: the engine itself -------------------------------------------------------------------------


def ask_engine(http: httpx.Client, base_url: str, prompt: str) -> str:
    """One ``/api/http-proxy`` call as LiteLLM's connector makes it, summarised."""
    body = json.dumps({"body": json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]})})
    envelope = Envelope.build(request_payload=body, request_headers={"host": "demo-app"})
    response = http.post(
        f"{base_url}{HTTP_PROXY_PATH}",
        params={GUARDRAILS: FLAG_ON, AKTO_CONNECTOR: "litellm"},
        content=envelope.model_dump_json(),
        headers={"content-type": "application/json"},
    )
    try:
        result = (response.json().get("data") or {}).get("guardrailsResult")
    except (ValueError, AttributeError):
        result = None
    if response.status_code == 200 and isinstance(result, dict):
        if isinstance(result.get("Allowed"), bool):
            verdict = "[green]allowed[/green]" if result.get("Allowed") else "[red]blocked[/red]"
            detail = result.get("Reason") or ""
            if result.get("Modified"):
                verdict += " [yellow]+ redacted[/yellow]"
                detail = json.loads(json.loads(result["ModifiedPayload"])["body"])["messages"][0]["content"]
            return f"HTTP {response.status_code} {verdict} ({result.get('behaviour') or 'no behaviour'}) {detail}"
    return f"HTTP {response.status_code} {response.headers.get('content-type')}: {response.text[:80]!r}"


def engine_tour(engine_url: str) -> int:
    """Leg 1: prompts and faults straight at the engine, as a connector would see them; returns the case count."""
    with MockAktoClient(engine_url, "demo") as admin, httpx.Client(timeout=5, trust_env=False) as http:
        admin.reset()
        listener = admin.create_listener()
        rows: list[Row] = []
        for what, prompt in (("clean prompt", CLEAN), ("prompt injection", INJECTION), ("PII", PII)):
            outcome, ms = timed(lambda: ask_engine(http, listener, prompt))
            rows.append(Row(what, prompt, outcome, ms))

        faults = (
            ("slow engine (800 ms)", {"type": "fixed_delay", "ms": 800}),
            ("HTTP 500", {"type": "status", "status": 500, "body": "boom"}),
            ("schema break", {"type": "schema_break", "kind": "missing_allowed"}),
            ("TCP reset", {"type": "connection_reset_by_peer"}),
            ("engine down", {"type": "down"}),
        )
        for what, fault in faults:
            rule = admin.add_fault(fault)
            outcome, ms = timed(lambda: ask_engine(http, listener, CLEAN))
            rows.append(Row(what, json.dumps(fault), outcome, ms))
            admin.remove_fault(rule.id)
        show(f"Leg 1: the fake Akto engine ({engine_url}, namespace 'demo')", rows)
        calls = admin.count()
        console.print(f"The engine's journal recorded {calls} calls in namespace 'demo' "
                      f"(GET {engine_url}/__admin/journal with header X-Mock-Akto-Namespace: demo).\n")
        return len(rows)


# -- legs 2-4: hosts started in the background, traffic in order --------------------------------------------


@dataclass
class LegRun:
    """What became of one connector leg: its hosts (None when they did not start), rows, or the error."""

    leg: Leg
    hosts: Any = None
    rows: list[Row] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(row.ok is not False for row in self.rows)

    def summary(self) -> str:
        mark = "[green]✓[/green]" if self.ok else "[red]✗[/red]"
        if self.error is not None:
            return f"{mark} {self.leg.label}: {self.error}"
        expected = sum(row.ok is not False for row in self.rows)
        cases = "; ".join(("" if row.ok is not False else "[red]✗[/red] ") + row.brief for row in self.rows)
        return f"{mark} {self.leg.label}: {expected}/{len(self.rows)} as documented: {cases}"


def failure(title: str, detail: str) -> None:
    console.print(Panel(Text(detail), title=Text(title), title_align="left", border_style="red"))


def hosts_of(leg: Leg, starting: Future[Any]) -> LegRun:
    """Wait for the leg's hosts; a start-up failure is printed with the host's log tail."""
    try:
        return LegRun(leg, hosts=starting.result())
    except Exception as exc:  # any start-up failure ends this leg only, reported with its log tail
        failure(f"{leg.label}: a host failed to start", f"{type(exc).__name__}: {exc}")
        return LegRun(leg, error="a host failed to start (see above)")


def play(run: LegRun) -> None:
    """Send the leg's traffic and print its table; an unexpected error is printed with the hosts' logs."""
    try:
        run.rows = run.leg.run(run.hosts)
    except Exception as exc:  # the demo goes on with the next leg; the exit code says it failed
        failure(f"{run.leg.label}: the traffic failed", f"{type(exc).__name__}: {exc}\n\n{run.hosts.log_tail()}")
        run.error = f"the traffic failed: {type(exc).__name__} (see above)"
        return
    show(f"{run.leg.label}: {run.leg.title}", run.rows)


def journal_line(engine_url: str) -> str:
    with MockAktoClient(engine_url) as admin:
        namespaces = [ns for ns in admin.namespaces() if ns["journal_entries"]]
    total = sum(ns["journal_entries"] for ns in namespaces)
    per_namespace = ", ".join(f"{ns['name']} {ns['journal_entries']}" for ns in namespaces)
    return f"The engine's journal: {total} calls" + (f" ({per_namespace})." if namespaces else ".")


def keep_running(engine_url: str, runs: list[LegRun]) -> None:
    console.print(f"\nEverything stays up until Ctrl-C (or SIGTERM). Engine {engine_url} "
                  f"(admin API {engine_url}/__admin/docs).", soft_wrap=True)
    for run in runs:
        for line in run.hosts.urls() if run.hosts is not None else ():
            console.print(Text(line), soft_wrap=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--keep-running", action="store_true", help="leave everything up until Ctrl-C or SIGTERM")
    names = ["engine", *(leg.name for leg in LEGS)]
    parser.add_argument("--leg", action="append", choices=names, help="run only this leg (repeatable; default: all)")
    args = parser.parse_args(argv)
    chosen = args.leg or names
    legs = [leg for leg in LEGS if leg.name in chosen]
    began = time.perf_counter()
    stop_on_ctrl_c_or_sigterm()
    try:
        runs = tour_and_legs(legs, chosen, args.keep_running)
    except KeyboardInterrupt:
        console.print("Interrupted: every host is stopped.")
        return 130
    console.print(f"Took {time.perf_counter() - began:.1f} s.", soft_wrap=True)
    return 0 if all(run.ok for run in runs) else 1


def tour_and_legs(legs: list[Leg], chosen: list[str], stay_up: bool, ports: StackPorts = FREE_PORTS) -> list[LegRun]:
    """Leg 1 while the connector hosts start, then each connector leg, the summary, and everything stopped."""
    with contextlib.ExitStack() as stack:
        engine_url = stack.enter_context(running_engine(ports.engine))
        starting = start_in_background(legs, engine_url, ports, stack)
        console.rule("[bold]akto-harness demo: everything on 127.0.0.1")
        tour = engine_tour(engine_url) if "engine" in chosen else 0
        runs = [hosts_of(leg, future) for leg, future in zip(legs, starting)]
        for run in runs:
            if run.hosts is not None:
                play(run)
        console.rule("[bold]summary")
        if tour:
            console.print(f"[green]✓[/green] Leg 1 · engine: {tour} cases straight at the engine (3 prompts, "
                          f"{tour - 3} faults)", soft_wrap=True)
        for run in runs:
            console.print(run.summary(), soft_wrap=True)
        console.print(journal_line(engine_url), soft_wrap=True)
        if stay_up:
            keep_running(engine_url, runs)
    return runs
