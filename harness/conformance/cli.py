"""``akto-harness conformance``: run the catalogue against your connector, judged by a profile.

    akto-harness conformance --target my-litellm.yaml --html reports/conformance.html
    akto-harness conformance --litellm-config ./config.yaml --profile ./profile.yaml
    akto-harness conformance --mitm-addon ./akto_guardrails.py
    akto-harness conformance --guardrail-url 'http://127.0.0.1:{port}/guard' --command 'my-endpoint --port {port}'
    akto-harness conformance --reference litellm --reference litellm-builtin

Exit 0: every outcome is what the profile says (passes, expected failures, not applicable). Exit 1: at
least one differs (a new failure, or an expected failure that now passes: update the profile). Exit 2:
bad input (a target or profile file, a host that does not start, an unreachable endpoint), with one
message naming what failed and the host's last log lines.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.conformance.html import html_matrix
from harness.conformance.profile import load_profile
from harness.conformance.run import Subject, TargetFailed, run_subject
from harness.conformance.target import Target, load_target, make_target
from harness.resources import scenario_catalogue
from harness.scenarios.cli import running_engine, running_fake_llm
from harness.scenarios.model import Scenario, ScenarioError, load_scenarios
from harness.scenarios.report import write_reports
from harness.scenarios.runner import ScenarioResult


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("conformance", help="run the scenario catalogue against your connector",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_argument_group("the connector(s) under test (repeatable, any mix)")
    what.add_argument("--target", action="append", type=Path, default=[], help="a target YAML file")
    what.add_argument("--litellm-config", action="append", type=Path, default=[], help="a LiteLLM config.yaml")
    what.add_argument("--mitm-addon", action="append", type=Path, default=[], help="a mitmproxy addon file")
    what.add_argument("--guardrail-url", action="append", default=[], help="a TrueFoundry-style guardrail endpoint URL")
    what.add_argument("--command", help="for one --guardrail-url: how to start it ({port}, {engine_url}, {fail_mode}, {timeout_s})")
    what.add_argument("--reference", action="append", default=[], help="a shipped reference connector (litellm, egress, ...)")
    parser.add_argument("--profile", help="for command-line targets: a profile file or a shipped profile name")
    parser.add_argument("--dir", type=Path, help="directory of scenario YAML files (default: the shipped catalogue)")
    parser.add_argument("--scenario", default="*", help="glob on scenario names (default: all)")
    parser.add_argument("--include-slow", action="store_true", help="also run scenarios marked slow")
    parser.add_argument("--stop-on-difference", action="store_true", help="stop a target at its first differing outcome")
    parser.add_argument("--engine-url", help="use this running engine instead of starting one")
    parser.add_argument("--junit", help="write JUnit XML here")
    parser.add_argument("--markdown", help="write the Markdown matrix here")
    parser.add_argument("--html", help="write the self-contained HTML matrix here")
    parser.set_defaults(handler=conformance_command)


def targets_from(args: argparse.Namespace) -> list[Target]:
    targets = [load_target(path) for path in args.target]
    common = {"profile": args.profile} if args.profile else {}
    targets += [make_target({"name": p.stem, "litellm_config": p.resolve(), **common}) for p in args.litellm_config]
    targets += [make_target({"name": p.stem, "mitm_addon": p.resolve(), **common}) for p in args.mitm_addon]
    for url in args.guardrail_url:
        command = shlex.split(args.command) if args.command else None
        targets.append(make_target({"name": f"endpoint-{len(targets) + 1}", "guardrail_url": url, "command": command, **common}))
    targets += [make_target({"reference": name, "name": name, **common}) for name in args.reference]
    if not targets:
        raise ScenarioError("name a connector: --target FILE, --litellm-config, --mitm-addon, --guardrail-url or --reference")
    if args.command and len(args.guardrail_url) != 1:
        raise ScenarioError("--command goes with exactly one --guardrail-url")
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ScenarioError(f"two targets share a name: {', '.join(names)} (give each target file a name)")
    for target in targets:
        target.check_input()
        if target.kind == "guardrail_url" and target.command is None and not args.engine_url:
            raise ScenarioError(f"target {target.name}: an endpoint you run needs --engine-url (the engine it "
                                f"calls at <engine-url>/ns/{target.namespace}), or a command to start it")
    return targets


def select(args: argparse.Namespace) -> list[Scenario]:
    directory: Path = args.dir or scenario_catalogue()
    scenarios = [s for s in load_scenarios(directory, args.scenario) if args.include_slow or not s.slow]
    if not scenarios:
        raise ScenarioError(f"no scenario matches {args.scenario!r} in {directory} (slow ones need --include-slow)")
    return scenarios


def conformance_command(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    scenarios = select(args)
    subjects = []
    for target in targets_from(args):
        profile = load_profile(target.profile or target.default_profile(), target.default_profile())
        profile.check_marks(load_scenarios(args.dir or scenario_catalogue()))
        subjects.append(Subject(target.connector(), profile))
    results: list[ScenarioResult] = []
    try:
        with running_engine(args.engine_url) as engine_url, running_fake_llm() as llm, _progress(console) as progress:
            for subject in subjects:
                task = progress.add_task(subject.connector.name, total=len(scenarios))

                def report(result: ScenarioResult, task: int = task) -> None:
                    progress.advance(task)
                    if not result.ok:
                        progress.console.print(f"[red]{result.outcome}[/red] {result.connector} {result.scenario}"
                                               + "".join(f"\n    {p}" for p in result.problems))

                results += run_subject(subject, scenarios, engine_url, llm,
                                       stop_on_difference=args.stop_on_difference, progress=report)
    except TargetFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    descriptions = {s.name: s.description for s in scenarios}
    write_reports(results, junit=args.junit, markdown=args.markdown, descriptions=descriptions)
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(html_matrix(results, descriptions))
    differing = [r for r in results if not r.ok]
    console.print(f"{len(results)} results, {len(differing)} differ from the profile")
    return 1 if differing else 0


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
        yield progress
