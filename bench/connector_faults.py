"""Each connector in its real host, in both fail modes, against the engine with each fault: is every client
answered within the engine timeout + 250 ms, and with what status (issue 11's last soak figure).

``python -m bench connector_faults`` (``make soak`` runs it as its ``connectors`` section). One engine
process and one fake LLM; each connector from the registry (``harness.connectors``) is started the way the
scenarios start it, once per fail mode, with a 1 s engine timeout and its own engine namespace. Per fault
(a 3 s ``fixed_delay``, ``hang``, ``status`` 500, ``down``, ``non_json_body``, a connection reset; ``none``
as the control) the script sends a bounded number of client requests, a few at a time, and prints per
connector x fail mode x fault: the count, the share answered within timeout + 250 ms, the statuses seen
and the slowest answer. Before each cell the connector is made to call the engine again (its circuit breaker,
opened by the previous fault, closed), so each cell measures its own fault; within a cell the breaker may
open, as it would in production. Target: 100% within the bound in every cell. The scenario catalogue checks the
same bound per scenario with one request (``latency: within_timeout_plus_ms``); this repeats it under a
little concurrency and sums it up in one table.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

from rich.table import Table

from bench._common import Check, console, machine_notes, print_checks
from harness.connectors import ConnectorConfig, registry
from harness.connectors.base import ClientResponse, ConnectorInstance, Traffic
from harness.engine import EngineProcess
from harness.fakes.llm import FakeLLMServer
from harness.scenarios.runner import InstancePool

#: The connectors issue 11 names (``--connector`` adds others from the registry, e.g. litellm-builtin).
CONNECTORS = ("litellm", "egress", "truefoundry")
FAIL_MODES = ("fail_open", "fail_closed")
#: The engine timeout every connector is configured with (seconds, as the timeout scenarios use).
TIMEOUT_S = 1
#: What a client may wait beyond the engine timeout (issue 11).
MARGIN_MS = 250
#: Client requests per cell, and how many are in flight at once.
CALLS = 6
CONCURRENCY = 3
#: Fault name -> the engine fault rule (``none``: the control, no fault).
FAULTS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "fixed_delay 3 s": {"type": "fixed_delay", "ms": 3000},
    "hang": {"type": "hang", "max_ms": 20_000},
    "status 500": {"type": "status", "status": 500},
    "down": {"type": "down"},
    "non_json_body": {"type": "non_json_body"},
    "reset": {"type": "connection_reset_by_peer"},
}
PROMPT = "Hello, please summarise the weather report for Lisbon."
#: How long a connector may take to call the engine again after a fault (its circuit breaker probes after a
#: back-off that doubles up to 30 s while the engine keeps failing).
SETTLE_DEADLINE_S = 60.0


@dataclass
class Cell:
    """What the clients of one connector x fail mode x fault saw."""

    connector: str
    fail_mode: str
    fault: str
    elapsed_ms: list[float]
    statuses: Counter[str]
    #: Calls the engine journaled (none under ``down``: the namespace's listener refuses them).
    engine_calls: int

    @property
    def count(self) -> int:
        return len(self.elapsed_ms)

    @property
    def within(self) -> float:
        """Share answered within the timeout + margin."""
        bound = TIMEOUT_S * 1000 + MARGIN_MS
        return sum(1 for took in self.elapsed_ms if took <= bound) / self.count if self.count else 0.0


def outcome(response: ClientResponse) -> str:
    return f"error {response.error.split(':')[0]}" if response.error else str(response.status)


def settle(instance: ConnectorInstance) -> None:
    """Send control requests until one reaches the engine: a connector whose circuit breaker opened under the
    previous fault decides at once without calling the engine, and the next cell would measure the breaker,
    not its fault. Each request paces the next (an open breaker answers in milliseconds)."""
    client = instance.engine.client
    deadline = time.monotonic() + SETTLE_DEADLINE_S
    while not client.journal():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the connector did not call the engine again within {SETTLE_DEADLINE_S:g} s")
        instance.send(Traffic(prompt=PROMPT))


def measure_cell(instance: ConnectorInstance, fault: dict[str, Any] | None,
                 calls: int) -> tuple[list[float], Counter[str], int]:
    client = instance.engine.client
    client.reset()
    settle(instance)
    client.reset()
    if fault is not None:
        client.add_fault(fault)
    try:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            responses = list(pool.map(lambda _: instance.send(Traffic(prompt=PROMPT)), range(calls)))
        engine_calls = len(client.journal())
    finally:
        client.clear_faults()  # a hang or a down must not outlive its cell
    return ([response.elapsed_ms for response in responses], Counter(outcome(response) for response in responses),
            engine_calls)


def run(calls: int = CALLS, connectors: Sequence[str] = CONNECTORS) -> list[Check]:
    """Measure every cell and print the table; one check per connector x fail mode (every cell at 100%)."""
    cells: list[Cell] = []
    skipped: list[str] = []
    with EngineProcess() as engine, FakeLLMServer() as llm:
        assert engine.url is not None
        pool = InstancePool(engine.url, llm)
        try:
            for name in connectors:
                connector = registry.get(name)
                unavailable = connector.available()
                if unavailable:
                    skipped.append(f"{name}: {unavailable}")
                    continue
                for fail_mode in FAIL_MODES:
                    instance = pool.get(connector, ConnectorConfig(fail_mode=fail_mode, timeout_s=TIMEOUT_S))
                    for fault_name, fault in FAULTS.items():
                        elapsed, statuses, engine_calls = measure_cell(instance, fault, calls)
                        cells.append(Cell(name, fail_mode, fault_name, elapsed, statuses, engine_calls))
                        console.print(f"  {name} {fail_mode} {fault_name}: {dict(statuses)}, "
                                      f"slowest {max(elapsed):.0f} ms")
        finally:
            pool.close()
    print_cells(cells)
    for reason in skipped:
        console.print(f"skipped {reason}")
    checks = []
    for name in dict.fromkeys(cell.connector for cell in cells):
        for fail_mode in FAIL_MODES:
            group = [cell for cell in cells if cell.connector == name and cell.fail_mode == fail_mode]
            late = [cell.fault for cell in group if cell.within < 1.0]
            checks.append(Check(f"{name} {fail_mode}: answered within {TIMEOUT_S} s + {MARGIN_MS} ms",
                                "every fault" if not late else "late under " + ", ".join(late), "every fault", not late))
    return checks


def print_cells(cells: list[Cell]) -> None:
    table = Table(title=f"clients answered within {TIMEOUT_S} s engine timeout + {MARGIN_MS} ms, per fault")
    for column in ("connector", "fail mode", "fault", "calls", "engine saw", "within", "statuses", "p50 ms", "slowest ms"):
        table.add_column(column)
    for cell in cells:
        statuses = ", ".join(f"{status} x{count}" for status, count in sorted(cell.statuses.items()))
        table.add_row(cell.connector, cell.fail_mode, cell.fault, str(cell.count), str(cell.engine_calls),
                      f"{cell.within:.0%}", statuses, f"{sorted(cell.elapsed_ms)[(cell.count - 1) // 2]:.0f}",
                      f"{max(cell.elapsed_ms):.0f}")
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench connector_faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=CALLS, help=f"client requests per cell (default {CALLS})")
    parser.add_argument("--connector", action="append", choices=registry.names(),
                        help=f"connector to run (repeatable; default {', '.join(CONNECTORS)})")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    console.print(machine_notes())
    ok = print_checks(run(args.calls, args.connector or CONNECTORS))
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
