"""``akto-harness scenarios ...``: list, check and run the contract scenarios outside pytest.

    akto-harness scenarios run --connector litellm --connector litellm-builtin \\
        --junit reports/scenarios.xml --markdown reports/scenarios.md

It starts the fake engine (or uses ``--engine-url``) and the fake LLM, runs every selected scenario on every
selected connector (one host instance per distinct connector config), prints one line per result and
exits 1 when any result is a failure (a known gap that holds is not one). The scenarios are the shipped
catalogue (:func:`harness.resources.scenario_catalogue`) unless ``--dir`` names a folder of your own; a
command that finds none is an error naming where it looked (exit 2), never an empty success.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Iterator

import httpx

from harness.connectors import Connector, registry
from harness.process import StartupError
from harness.resources import scenario_catalogue
from harness.scenarios.model import Scenario, ScenarioError, load_scenarios
from harness.scenarios.report import write_reports
from harness.scenarios.runner import InstancePool, ScenarioResult, run_scenario
from mock_akto.client import AdminError



def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("scenarios", help="list, check and run the contract scenarios")
    commands = parser.add_subparsers(dest="scenarios_command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", type=Path, help="directory of scenario YAML files (default: the shipped catalogue)")
    common.add_argument("--scenario", default="*", help="glob on scenario names (default: all)")

    listing = commands.add_parser("list", parents=[common], help="list scenario names and descriptions")
    listing.set_defaults(handler=list_command)
    check = commands.add_parser("check", parents=[common], help="validate the scenario files only")
    check.set_defaults(handler=check_command)

    run = commands.add_parser("run", parents=[common], help="run scenarios against connectors in their real hosts")
    run.add_argument("--connector", action="append", required=True, choices=registry.names(),
                     help="connector to run against (repeatable)")
    run.add_argument("--junit", help="write JUnit XML here")
    run.add_argument("--markdown", help="write the scenario x connector matrix here")
    run.add_argument("--engine-url", help="use this running engine instead of starting one")
    run.add_argument("--include-slow", action="store_true", help="also run scenarios marked slow")
    run.add_argument("--litellm-guardrail", metavar="CLASS_PATH",
                     help="for --connector litellm: load this guardrail class instead of the reference hook")
    run.set_defaults(handler=run_command)


def selected_scenarios(args: argparse.Namespace) -> list[Scenario]:
    """The scenarios ``--dir`` and ``--scenario`` select; none at all is a :class:`ScenarioError`."""
    directory: Path = args.dir or scenario_catalogue()
    scenarios = load_scenarios(directory, args.scenario)
    if not scenarios:
        where = f"{directory}/*.yaml" + ("" if directory.is_dir() else " (no such directory)")
        raise ScenarioError(f"no scenario matches {args.scenario!r} in {where}")
    return scenarios


def list_command(args: argparse.Namespace) -> int:
    for scenario in selected_scenarios(args):
        print(f"{scenario.name:34} {scenario.description}")
    return 0


def check_command(args: argparse.Namespace) -> int:
    scenarios = selected_scenarios(args)
    print(f"{len(scenarios)} scenarios OK in {args.dir or scenario_catalogue()}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    scenarios = [s for s in selected_scenarios(args) if args.include_slow or not s.slow]
    if not scenarios:
        raise ScenarioError(f"every scenario matching {args.scenario!r} is slow: add --include-slow")
    if args.litellm_guardrail:
        from harness.connectors.litellm import GUARDRAIL_ENV

        os.environ[GUARDRAIL_ENV] = args.litellm_guardrail
    results: list[ScenarioResult] = []
    with running_engine(args.engine_url) as engine_url, running_fake_llm() as llm:
        pool = InstancePool(engine_url, llm)
        try:
            for name in args.connector:
                connector = registry.get(name)
                for scenario in scenarios:
                    result = _run_one(scenario, connector, pool)
                    results.append(result)
                    print(f"{result.outcome:8} {name:16} {scenario.name} ({result.elapsed_ms:.0f} ms)"
                          + "".join(f"\n         {p}" for p in result.problems), flush=True)
        finally:
            pool.close()
    write_reports(results, junit=args.junit, markdown=args.markdown,
                  descriptions={s.name: s.description for s in scenarios})
    failed = [r for r in results if not r.ok]
    print(f"{len(results)} results, {len(failed)} failing")
    return 1 if failed else 0


def _run_one(scenario: Scenario, connector: Connector, pool: InstancePool) -> ScenarioResult:
    """A scenario that cannot even run (host did not start, engine refused) is an ``error`` result."""
    try:
        return run_scenario(scenario, connector, pool)
    except (StartupError, AdminError, httpx.HTTPError, OSError) as exc:
        return ScenarioResult(scenario.name, connector.name, "error", reason=f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def running_engine(url: str | None) -> Iterator[str]:
    if url:
        yield url.rstrip("/")
        return
    from harness.engine import EngineProcess

    with EngineProcess() as engine:
        assert engine.url is not None
        yield engine.url


@contextlib.contextmanager
def running_fake_llm() -> Iterator[object]:
    from harness.fakes.llm import FakeLLMServer

    with FakeLLMServer() as server:
        yield server
