"""What every shipped locustfile gets, wired through Locust's own events (``import`` it in a locustfile).

* command-line options (``events.init_command_line_parser``): ``--budget FILE``, ``--akto-report FILE.html``,
  ``--akto-csv FILE.csv``, ``--arrival-rate R`` (open-model files), ``--dump-timings FILE.json``;
* exact timings (:class:`RawTimings`) on a local run; on ``--worker`` they are shipped to the master as HDR
  histograms, on ``--master`` merged (:mod:`loadtests.distributed`);
* the budget table printed when a test stops (``events.test_stop``: also after a web-UI run's Stop) and
  the exit code set on ``events.quitting`` (0 every bound held, 1 one broke), with the HTML and CSV reports.

Nothing happens at import but listener registration: a locustfile that imports this is still a plain
locustfile (``locust -f FILE``, ``--headless``, ``--csv``, ``--html``, ``--master``/``--worker``, tags).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.timing import console
from loadtests.budgets import BudgetFileError, Check, RequestBudget, check_all, load_budgets, table
from loadtests.distributed import MasterMerger, WorkerShipper
from loadtests.recorder import RawTimings


@dataclass
class RunState:
    """The timings of this process's run (merged ones on a master), its budgets and their last check."""

    raw: RawTimings = field(default_factory=RawTimings)
    budgets: list[RequestBudget] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    role: str = "local"
    checked_at: int = -1  # request count when the table was last printed (the same table is printed once)
    worker_raw: RawTimings | None = None  # a worker's own record of everything it sent (for --dump-timings)


#: This process's run (one Locust run per process, as Locust itself assumes).
state = RunState()


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_: Any) -> None:
    group = parser.add_argument_group("akto-harness", "exact timings, budgets and reports (loadtests/)")
    group.add_argument("--budget", default="", help="YAML budget file checked on exact timings; exit 1 when a bound breaks")
    group.add_argument("--akto-report", default="", help="write an HTML report (offline) to this file")
    group.add_argument("--akto-csv", default="", help="write the exact percentiles per request and status to this CSV")
    group.add_argument("--arrival-rate", type=float, default=0.0,
                       help="open-model files: requests per second per user (latency from the scheduled start)")
    group.add_argument("--dump-timings", default="", help="write this process's timings as JSON (workers: PATH.worker-PID.json)")


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        state.role = "worker"
        state.worker_raw = RawTimings().attach(environment)
        WorkerShipper().attach(environment)
        return
    if isinstance(runner, MasterRunner):
        state.role = "master"
        MasterMerger(state.raw).attach(environment)
    else:
        state.raw.attach(environment)
    budget_file = getattr(options, "budget", "") if options is not None else ""
    if budget_file:
        try:
            state.budgets = load_budgets(budget_file)
        except BudgetFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if state.role != "worker" and state.budgets and state.raw.total.count:
        _check_and_print()


def _check_and_print() -> None:
    state.checks = check_all(state.budgets, state.raw)
    if state.checked_at != state.raw.total.count:
        console.print(table(state.checks))
        state.checked_at = state.raw.total.count


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    dump = getattr(options, "dump_timings", "") if options is not None else ""
    if state.role == "worker":
        if dump and state.worker_raw is not None:
            dump_timings(state.worker_raw, dump)
        return
    if dump:
        dump_timings(state.raw, dump)
    if state.budgets:
        _check_and_print()
        environment.process_exit_code = 0 if all(c.held for c in state.checks) else 1
    report = getattr(options, "akto_report", "") if options is not None else ""
    csv_path = getattr(options, "akto_csv", "") if options is not None else ""
    if report or csv_path:
        from loadtests import report as reports  # plotting is imported only when a report is asked for

        if report and state.raw.total.count:
            reports.write_html(report, state.raw, state.checks, run_configuration(environment))
            console.print(f"HTML report: {report}")
        if csv_path:
            reports.write_csv(csv_path, state.raw)


def run_configuration(environment: Environment) -> dict[str, str]:
    """The options a report shows (what was run against what), credentials never included."""
    options = vars(environment.parsed_options) if environment.parsed_options is not None else {}
    shown = ("locustfile", "host", "num_users", "spawn_rate", "run_time", "arrival_rate", "budget", "delay_ms",
             "lognormal_median_ms", "lognormal_p99_ms", "guardrail_timeout",
             "tags", "exclude_tags", "engine_url", "connector", "fail_mode", "target_url", "expect_status")
    config = {key: str(options[key]) for key in shown if options.get(key) not in (None, "", [], 0, 0.0)}
    config["host"] = str(environment.host or "")
    config["role"] = state.role
    return config


def dump_timings(raw: RawTimings, path: str) -> None:
    """Per (name, outcome): the count, the percentiles (HDR ones on a master) and every exact value kept.

    Locust hands a master's custom options to its workers, so a worker writes ``PATH.worker-<pid>.json``
    beside the master's ``PATH``, never over it.
    """
    if state.role == "worker":
        path = f"{path}.worker-{os.getpid()}.json"
    data = {}
    for (name, outcome), timings in raw.by_outcome.items():
        summary = timings.summary((50.0, 90.0, 99.0, 99.9))
        data[f"{name}\t{outcome}"] = {
            "count": summary.count, "max_ms": summary.max_ms,
            **{f"p{p:g}_ms": v for p, v in summary.percentiles_ms.items()}, "samples_us": timings.samples_us,
        }
    Path(path).write_text(json.dumps(data), encoding="utf-8")
