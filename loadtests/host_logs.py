"""After a failed gate, what each connector's host said about its engine calls.

A request on the wrong side of the timeout is either the connector's fault or the host's: the reference
connectors log their engine failures, their breaker's changes and any decision the host's busy event loop
ran late (``akto: a request was decided N ms past its 1s engine deadline ...``). Printed beside the budget
table, those lines tell which it was without a rerun.
"""

from __future__ import annotations

import re
from typing import Mapping

from harness.connectors import ConnectorInstance
from harness.timing import console

#: How the reference connectors' own log lines speak: ``akto: ...`` (the LiteLLM hook and the shared core),
#: ``akto truefoundry: ...``, ``akto egress: ...``; LiteLLM's own tracebacks say "Akto guardrail ...".
CONNECTOR_LINE = re.compile(r"\bakto(?: [a-z]+)?: ")


def connector_log_lines(instance: ConnectorInstance) -> list[str]:
    """The connector's own lines in its host's whole log (LiteLLM's own tracebacks would bury a tail)."""
    return [line.strip() for line in instance.log_tail(1_000_000).splitlines() if CONNECTOR_LINE.search(line)]


def print_connector_log_lines(instances: Mapping[tuple[str, str], ConnectorInstance], *, last: int = 12) -> None:
    """Per (fail mode, engine namespace) instance: how many connector lines its host logged, and the last few."""
    for (mode, namespace), instance in instances.items():
        lines = connector_log_lines(instance)
        shown = f", the last {last}:" if len(lines) > last else ":" if lines else ""
        console.print(f"{mode}/{namespace} host log, the connector's lines: {len(lines)}{shown}")
        for line in lines[-last:]:
            console.print(f"  {line}", markup=False)
