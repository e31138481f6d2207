"""``mock-akto`` commands around the matcher: scripted verdicts, verification, and recording a real Akto.

    mock-akto verdict add --match '{"prompt": {"contains": "wire money"}}' --block "fraud"
    mock-akto verdict add --sequence '[{"policies": true}, {"verdict": {"Allowed": false}}]' --match '{"connector": "litellm"}'
    mock-akto verdict list | verdict rm ID | verdict clear
    mock-akto verify --match '{"connector": "litellm", "allowed": false}' --count 1 --timeout 5
    mock-akto record --target https://akto.example:9090 --out calls.jsonl --ca-file ca.pem --scrub 'acct-[0-9]+'

Matchers, verdicts and steps are given as JSON (the admin API's own bodies) and validated with the engine's
models before anything is sent; ``verify`` exits 1 with the near-misses when the count is wrong.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import ValidationError
from rich.markup import escape

from .errors import CliError, VerificationError
from .matching import Matcher
from .policies import describe_validation_error
from .scripted import ScriptedVerdict

Sub = Callable[[Any, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def json_arg(text: str | None, flag: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"{flag}: not valid JSON: {exc}") from None


def matcher_arg(text: str | None) -> Matcher:
    data = json_arg(text, "--match") or {}
    try:
        return Matcher.model_validate(data)
    except ValidationError as exc:
        raise CliError(f"--match: {describe_validation_error(exc, data)}") from None


def scripts_from_args(args: argparse.Namespace) -> list[ScriptedVerdict]:
    """Scripted verdicts from ``verdict add`` flags or ``--file`` (one mapping or a list)."""
    if args.file is not None:
        try:
            data = yaml.safe_load(args.file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CliError(f"{args.file}: cannot read: {exc}") from None
        if isinstance(data, dict) and "verdicts" in data:
            data = data["verdicts"]
        items = data if isinstance(data, list) else [data]
    else:
        given = [name for name in ("verdict", "sequence", "block") if getattr(args, name) is not None]
        if len(given) != 1:
            raise CliError("verdict add: give one of --verdict JSON, --sequence JSON, --block REASON (or --file)")
        item: dict[str, Any] = {"match": json_arg(args.match, "--match") or {}}
        if args.block is not None:
            item["answer"] = {"verdict": {"Allowed": False, "Reason": args.block, "behaviour": "block"}}
        elif args.verdict is not None:
            item["answer"] = {"verdict": json_arg(args.verdict, "--verdict")}
        else:
            item["sequence"] = json_arg(args.sequence, "--sequence")
            item["cycle"] = args.cycle
        for name in ("id", "first_n"):
            if getattr(args, name) is not None:
                item[name] = getattr(args, name)
        items = [item]
    scripts = []
    for index, item in enumerate(items):
        try:
            scripts.append(ScriptedVerdict.model_validate(item))
        except ValidationError as exc:
            where = f"verdict {index}: " if len(items) > 1 else ""
            raise CliError(f"verdict add: {where}{describe_validation_error(exc, item)}") from None
    return scripts


def describe_script(script: ScriptedVerdict) -> str:
    steps = [script.answer] if script.answer is not None else script.sequence or []
    shown = []
    for step in steps:
        if step.policies:
            shown.append("policies")
        elif step.fail is not None:
            shown.append(f"fail {step.fail!r}")
        else:
            parts = [f"{side}: {'allow' if v.allowed else 'block'}{' modified' if v.modified else ''}"
                     + (f" {v.reason!r}" if v.reason else "")
                     for side, v in (("verdict", step.verdict), ("request", step.request), ("response", step.response))
                     if v is not None]
            shown.append(", ".join(parts))
    match = json.dumps(script.match.model_dump(mode="json", by_alias=True, exclude_defaults=True)) or "{}"
    return f"{' -> '.join(shown)}{' (cycle)' if script.cycle else ''} on {match}"


def add_commands(commands: Any, sub: Sub, client_of: Callable[[argparse.Namespace], Any], out: Any,
                 parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``verdict``, ``verify`` and ``record`` on the ``mock-akto`` parser."""

    def cmd_verdict_add(args: argparse.Namespace) -> int:
        scripts = scripts_from_args(args)
        with client_of(args) as client:
            for script in scripts:
                stored = client.add_verdict(script)
                out.print(escape(f"added scripted verdict {stored.id}: {describe_script(stored)}"))
        return 0

    def cmd_verdict_list(args: argparse.Namespace) -> int:
        with client_of(args) as client:
            scripts = client.verdicts()
        if args.json:
            out.print_json(data=[s.model_dump(mode="json", by_alias=True) for s in scripts])
        elif not scripts:
            out.print("no scripted verdicts")
        for script in scripts if not args.json else []:
            out.print(escape(f"{script.id}: {describe_script(script)} (matched {script.matched}, applied {script.applied})"))
        return 0

    def cmd_verdict_rm(args: argparse.Namespace) -> int:
        with client_of(args) as client:
            for script_id in args.ids:
                client.remove_verdict(script_id)
                out.print(f"removed scripted verdict {escape(script_id)}")
        return 0

    def cmd_verdict_clear(args: argparse.Namespace) -> int:
        with client_of(args) as client:
            client.clear_verdicts()
        out.print("cleared the scripted verdicts")
        return 0

    def cmd_verify(args: argparse.Namespace) -> int:
        matcher = matcher_arg(args.match)
        with client_of(args) as client:
            try:
                result = client.verify(matcher, args.exactly, at_least=args.at_least, at_most=args.at_most,
                                       timeout=args.wait or 0.0, since=args.since or 0)
            except VerificationError as exc:
                raise CliError(f"verify failed: {exc}", 1) from None
        out.print(escape(result.message))
        return 0

    def cmd_record(args: argparse.Namespace) -> int:
        from .record import Recorder, run_recorder, target_token_from_env

        if not args.target.startswith(("http://", "https://")):
            raise CliError(f"record: --target must be an http:// or https:// URL, got {args.target!r}")
        for pattern in args.scrub or []:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise CliError(f"record: --scrub {pattern!r}: {exc}") from None
        if args.ca_file is not None and not args.ca_file.is_file():
            raise CliError(f"record: --ca-file {args.ca_file}: no such file")
        recorder = Recorder(args.target, args.out, token=args.target_token or target_token_from_env(),
                            ca_file=args.ca_file, scrub=args.scrub, timeout=args.target_timeout)
        run_recorder(recorder, args.host, args.port)
        return 0

    verdict = commands.add_parser("verdict", help="scripted verdicts: add, list, rm, clear")
    verdict_commands = verdict.add_subparsers(dest="verdict_command", required=True, metavar="ACTION",
                                              parser_class=parser_class)
    add = sub(verdict_commands, "add", cmd_verdict_add, "answer matching calls with a verdict, or a sequence of them")
    add.add_argument("--match", metavar="JSON", help="a matcher (default: every call)")
    add.add_argument("--block", metavar="REASON", help="shorthand: Allowed false, behaviour block, this Reason")
    add.add_argument("--verdict", metavar="JSON", help='a verdict, e.g. {"Allowed": false, "Reason": "x"}')
    add.add_argument("--sequence", metavar="JSON", help='steps, e.g. [{"policies": true}, {"verdict": {"Allowed": false}}]')
    add.add_argument("--cycle", action="store_true", help="with --sequence: start again after the last step")
    add.add_argument("--first-n", type=int, help="only the first N matching calls")
    add.add_argument("--id")
    add.add_argument("--file", type=Path, help="scripted verdict(s) from YAML/JSON (one, a list, or an apply file)")
    listing = sub(verdict_commands, "list", cmd_verdict_list, "the namespace's scripted verdicts and their counters")
    listing.add_argument("--json", action="store_true")
    remove = sub(verdict_commands, "rm", cmd_verdict_rm, "remove scripted verdicts by id")
    remove.add_argument("ids", nargs="+", metavar="ID")
    sub(verdict_commands, "clear", cmd_verdict_clear, "remove every scripted verdict")

    verify = sub(commands, "verify", cmd_verify, "check how many journal calls match; exit 1 with the near-misses")
    verify.add_argument("--match", metavar="JSON", help="a matcher (default: every call)")
    verify.add_argument("--count", dest="exactly", type=int, help="exactly this many (default: at least one)")
    verify.add_argument("--at-least", type=int)
    verify.add_argument("--at-most", type=int)
    verify.add_argument("--wait", type=float, metavar="S", help="wait up to S seconds for enough calls")
    verify.add_argument("--since", type=int, help="only entries after this seq")

    record = commands.add_parser("record", help="proxy a real Akto and write a replay file (`serve --replay`)",
                                 description="Proxy a real Akto (or any engine speaking the contract) on loopback "
                                             "and record each call, scrubbed, for `mock-akto serve --replay FILE`.")
    record.set_defaults(handler=cmd_record)
    record.add_argument("--target", required=True, help="the Akto base URL, e.g. https://akto.example:9090")
    record.add_argument("--out", type=Path, required=True, metavar="FILE", help="the replay file to write (JSON lines)")
    record.add_argument("--host", default="127.0.0.1")
    record.add_argument("--port", type=int, default=8091, help="where connectors reach the recorder (0: any free)")
    record.add_argument("--target-token", default=None,
                        help="Authorization sent to the target (default $MOCK_AKTO_TARGET_TOKEN; else the caller's)")
    record.add_argument("--ca-file", type=Path, help="CA bundle that signed the target's certificate")
    record.add_argument("--scrub", action="append", metavar="REGEX", help="replace matches with [SCRUBBED] (repeatable)")
    record.add_argument("--target-timeout", type=float, default=10.0, metavar="S", help="seconds per forwarded call")
