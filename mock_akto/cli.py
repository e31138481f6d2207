"""``mock-akto``: run the fake engine, and script a running one from a shell.

    mock-akto serve --port 8090 [--policies FILE] [--token T] [--akto-profile NAME]
    mock-akto fault add --type fixed_delay --ms 200 --probability 0.5 --seed 1 --first-n 3
    mock-akto fault list | fault rm ID | fault clear | fault types
    mock-akto policy list | policy load FILE | policy load --preset block-all | policy presets
    mock-akto profile list | profile show | profile set gateway-fail-open-off [--guardrails-client-timeout-ms 500]
    mock-akto journal [--follow] [--limit N] [--json]
    mock-akto ingest | reset [--all] | apply FILE
    mock-akto verdict add|list|rm|clear | verify --match JSON --count N | record --target URL --out FILE

Control commands talk to ``--url`` (default ``$MOCK_AKTO_URL`` or http://127.0.0.1:8090) through the
typed :class:`~mock_akto.client.MockAktoClient`, in ``--namespace`` (default ``$MOCK_AKTO_NAMESPACE`` or
``default``). Everything is validated with the engine's own models before it is sent. Exit codes: 0 ok,
1 the engine is unreachable or refused the call, 2 bad flags or files (a message, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import typing
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable, Sequence

import httpx
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from akto_wire import FLAG_NAMES

from .client import MockAktoClient
from .errors import AdminError, CliError, JournalTimeout, PolicyLoadError, PresetFileError
from .faults import FAULTS, parse_fault
from .journal import JournalEntryModel
from .policies import available_presets, describe_validation_error, load_policies
from .presets import PresetFile, bundled_apply_files, load_bundled_apply_file, load_preset_file, load_rules_file
from .profiles import PROFILES, AktoProfile
from .rules import FaultRule, Match

URL_ENV = "MOCK_AKTO_URL"
NAMESPACE_ENV = "MOCK_AKTO_NAMESPACE"
DEFAULT_PORT = 8090
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
#: The installed distribution whose metadata ``--version`` reports.
DISTRIBUTION = "akto-harness"

#: Fault fields whose flag would clash with a rule flag, and the flag they get instead.
_FAULT_FLAG_NAMES = {"seed": "fault-seed"}
#: Fault fields with their own dedicated flag (``--then``, ``--header``), left out of the generated ones.
_SPECIAL_FAULT_FIELDS = {"type", "then", "headers"}

#: Piped output is not cut to 80 columns (rich's default without a terminal).
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _Parser(argparse.ArgumentParser):
    """argparse, but ``error`` goes through the same one-line report (still exit code 2)."""

    def error(self, message: str) -> typing.NoReturn:
        self.print_usage(sys.stderr)
        raise CliError(f"{self.prog}: {message}", 2)


# --------------------------------------------------------------------------------------------- flags


def _fault_fields() -> dict[str, bool]:
    """Every configurable fault field across the catalogue -> whether it is a boolean (a bare flag)."""
    fields: dict[str, bool] = {}
    for cls in FAULTS.values():
        for name, info in cls.model_fields.items():
            if name not in _SPECIAL_FAULT_FIELDS:
                fields[name] = info.annotation is bool
    return fields


def _flag_of(field: str) -> str:
    return "--" + _FAULT_FLAG_NAMES.get(field, field).replace("_", "-")


def _add_fault_flags(parser: argparse.ArgumentParser) -> None:
    fault = parser.add_argument_group("the fault (see `mock-akto fault types` for which fields each type takes)")
    fault.add_argument("--type", choices=sorted(FAULTS), help="fault type")
    for field, is_bool in _fault_fields().items():
        names = [_flag_of(field)]
        if "_" in field and field not in _FAULT_FLAG_NAMES:
            names.append("--" + field)  # --lower_ms works as well as --lower-ms
        if is_bool:
            fault.add_argument(*names, dest=f"fault__{field}", action="store_const", const=True, default=None)
        else:
            fault.add_argument(*names, dest=f"fault__{field}", metavar=field.upper(), default=None)
    fault.add_argument("--header", dest="fault__headers", action="append", metavar="NAME:VALUE",
                       help="a response header of a `status` fault (repeatable)")
    fault.add_argument("--then", dest="fault__then", metavar="TYPE|JSON",
                       help="after a delay, this fault instead of the answer (a type name or a fault as JSON)")
    rule = parser.add_argument_group("the rule")
    rule.add_argument("--id", help="rule id (default: generated)")
    rule.add_argument("--probability", type=float, help="0..1, rolled per matching call")
    rule.add_argument("--seed", type=int, help="seed of the rule's dice: the same applied/not pattern every run")
    rule.add_argument("--first-n", type=int, help="only the first N matching calls, then recover")
    rule.add_argument("--ramp-ms", type=int, help="probability grows from 0 over this long")
    match = parser.add_argument_group("which calls (all given must hold)")
    match.add_argument("--path", help="exact path or glob, e.g. /api/http-proxy")
    match.add_argument("--method")
    match.add_argument("--direction", choices=["request", "response"])
    match.add_argument("--flag", action="append", choices=FLAG_NAMES,
                       help="a flag that must be on (repeatable)")
    match.add_argument("--connector", help="akto_connector value")
    match.add_argument("--app", help="the Akto app (host)")
    match.add_argument("--body-contains", help="substring of the raw request body")
    match.add_argument("--match", metavar="JSON", help="a matcher (JSON paths, headers, prompt...); the flags above add to it")
    parser.add_argument("--file", type=Path, help="rule(s) from YAML/JSON instead of flags (a rule or a list)")
    parser.add_argument("--global", dest="global_scope", action="store_true", help="a rule for every namespace")
    parser.add_argument("--json", action="store_true", help="print the stored rule(s) as JSON")


def _given_fault_fields(args: argparse.Namespace) -> dict[str, Any]:
    return {key[len("fault__"):]: value for key, value in vars(args).items()
            if key.startswith("fault__") and value is not None}


def _parse_then(value: str) -> Any:
    if value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise CliError(f"--then: not valid JSON: {exc}") from None
    return {"type": value}


def _parse_headers(values: list[str]) -> dict[str, str]:
    headers = {}
    for item in values:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise CliError(f"--header {item!r}: expected NAME:VALUE")
        headers[name.strip()] = value.strip()
    return headers


def rule_from_flags(args: argparse.Namespace) -> FaultRule:
    """A :class:`FaultRule` from ``fault add`` flags, validated; a precise error names the flag."""
    fields = _given_fault_fields(args)
    if args.type is None:
        raise CliError("fault add: give --type TYPE (or --file RULE.yaml); types: " + ", ".join(sorted(FAULTS)))
    accepted = set(FAULTS[args.type].model_fields) - {"type"}
    stray = sorted(set(fields) - accepted)
    if stray:
        takes = ", ".join(_flag_of(f) for f in sorted(accepted)) or "no fields"
        raise CliError(f"fault add: {', '.join(_flag_of(f) for f in stray)} does not apply to --type {args.type} "
                       f"(it takes: {takes})")
    if "then" in fields:
        fields["then"] = _parse_then(fields["then"])
    if "headers" in fields:
        fields["headers"] = _parse_headers(fields["headers"])
    fault_data = {"type": args.type, **fields}
    try:
        fault = parse_fault(fault_data)
    except ValidationError as exc:
        raise CliError(f"fault add: {_flag_problems(exc)}") from None
    match_data = {key: value for key, value in {
        "path": args.path, "method": args.method, "direction": args.direction, "flags": args.flag,
        "connector": args.connector, "app": args.app, "body_contains": args.body_contains,
    }.items() if value is not None}
    rule_data = {key: value for key, value in {
        "id": args.id, "probability": args.probability, "seed": args.seed, "first_n": args.first_n,
        "ramp_ms": args.ramp_ms,
    }.items() if value is not None}
    if args.match is not None:
        from .cli_features import json_arg

        match_data = {**(json_arg(args.match, "--match") or {}), **match_data}
    try:
        return FaultRule(fault=fault, match=Match.model_validate(match_data), **rule_data)
    except ValidationError as exc:
        raise CliError(f"fault add: {_flag_problems(exc, rule=True)}") from None


_SPECIAL_FLAGS = {"then": "--then", "headers": "--header"}
_RULE_FLAGS = {"id", "probability", "seed", "first_n", "ramp_ms"}


def _flag_problems(exc: ValidationError, *, rule: bool = False) -> str:
    """pydantic's problems, each named by the flag the user typed (``--ms: ...``). ``rule``: the error
    came from the rule's own fields (``--seed`` is the rule's seed there, ``--fault-seed`` otherwise)."""
    fault_fields = _fault_fields()
    problems = []
    for problem in exc.errors():
        names = [part for part in problem["loc"] if isinstance(part, str)]
        where = ".".join(str(part) for part in problem["loc"]) or "the fault"
        if not rule and "then" in names[:-1]:  # inside the --then fault: name its type and field
            problems.append(f"--then {'.'.join(names[names.index('then') + 1:])}: {problem['msg']}")
            continue
        for name in reversed(names):
            if rule and name in _RULE_FLAGS:
                where = "--" + name.replace("_", "-")
                break
            if not rule and (name in fault_fields or name in _SPECIAL_FLAGS):
                where = _SPECIAL_FLAGS.get(name) or _flag_of(name)
                break
        problems.append(f"{where}: {problem['msg']}")
    return "; ".join(problems)


# --------------------------------------------------------------------------------------------- output


def describe_fault(fault: Any) -> str:
    """``fixed_delay ms=800 then connection_reset_by_peer``: a fault in one line, defaults left out."""
    data = fault.model_dump(mode="json", exclude_defaults=True, exclude={"type", "then"})
    text = " ".join([fault.type] + [f"{key}={json.dumps(value) if isinstance(value, (dict, list)) else value}"
                                    for key, value in data.items()])
    then = getattr(fault, "then", None)
    return f"{text} then {describe_fault(then)}" if then is not None else text


def describe_match(match: Match) -> str:
    data = match.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return " ".join(f"{key}={_short(value)}" for key, value in data.items()) or "every call"


def _short(value: Any) -> str:
    """A matcher field in a line: ``litellm`` for a plain (any-case) equal, ``a,b`` for flags, else JSON."""
    if isinstance(value, dict) and "equal" in value and set(value) <= {"equal", "ignore_case"}:
        return str(value["equal"])
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def describe_rule(rule: FaultRule) -> str:
    what = describe_fault(rule.fault) if rule.fault is not None else \
        "sequence[" + ", ".join(describe_fault(step) for step in rule.sequence or []) + "]" + (" cycle" if rule.cycle else "")
    knobs = []
    if rule.probability != 1:
        knobs.append(f"probability {rule.probability:g}")
    if rule.seed is not None:
        knobs.append(f"seed {rule.seed}")
    if rule.first_n is not None:
        knobs.append(f"first {rule.first_n}")
    if rule.ramp_ms:
        knobs.append(f"ramp {rule.ramp_ms} ms")
    return f"{what} on {describe_match(rule.match)}" + (f" ({', '.join(knobs)})" if knobs else "")


def print_rules(rules: list[FaultRule], as_json: bool) -> None:
    if as_json:
        out.print_json(data=[rule.model_dump(mode="json") for rule in rules])
        return
    if not rules:
        out.print("no fault rules")
        return
    table = Table("id", "fault", "match", "probability", "first n", "matched", "applied", box=None)
    for rule in rules:
        what = describe_fault(rule.fault) if rule.fault is not None else \
            " -> ".join(describe_fault(step) for step in rule.sequence or [])
        table.add_row(rule.id, escape(what), escape(describe_match(rule.match)), f"{rule.probability:g}",
                      str(rule.first_n or "-"), str(rule.matched), str(rule.applied))
    out.print(table)


def _verdict_text(label: str, verdict: Any) -> str:
    if verdict is None:
        return ""
    if not verdict.allowed:
        behaviour = verdict.behaviour.value or "block"
        return f"{label}:{behaviour.upper()}" + (f"({verdict.reason})" if verdict.reason else "")
    return f"{label}:{'modified' if verdict.modified else 'allowed'}"


def journal_line(entry: JournalEntryModel) -> str:
    stamp = datetime.fromtimestamp(entry.time).strftime("%H:%M:%S.%f")[:-3]
    parts = [f"#{entry.seq}", stamp, entry.method, entry.path, "->", str(entry.status) if entry.status else "(no answer)"]
    if entry.duration_ms is not None:
        parts.append(f"{entry.duration_ms:.1f}ms")
    if entry.connector:
        parts.append(f"connector={entry.connector}")
    if entry.app:
        parts.append(f"app={entry.app}")
    if entry.fault:
        parts.append(f"fault={entry.fault}")
    parts += [text for text in (_verdict_text("req", entry.request_verdict), _verdict_text("resp", entry.response_verdict)) if text]
    if entry.error:
        parts.append(f"error={entry.error!r}")
    if entry.note:
        parts.append(f"note={entry.note!r}")
    return " ".join(parts)


def _emit_entry(entry: JournalEntryModel, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(entry.model_dump(mode="json", by_alias=True)) + "\n")
        sys.stdout.flush()
    else:
        out.print(escape(journal_line(entry)))


# --------------------------------------------------------------------------------------------- commands


def _client(args: argparse.Namespace) -> MockAktoClient:
    url = getattr(args, "url", None) or os.environ.get(URL_ENV) or DEFAULT_URL
    namespace = getattr(args, "namespace", None) or os.environ.get(NAMESPACE_ENV) or None
    return MockAktoClient(url, namespace, timeout=getattr(args, "timeout", None) or 10.0)


def _scope(args: argparse.Namespace) -> str:
    return "global" if getattr(args, "global_scope", False) else "namespace"


def _serve_parser() -> argparse.ArgumentParser:
    from . import server  # uvicorn and the engine: imported only to serve, so control commands start fast

    parser = _Parser(prog="mock-akto serve", description="Run the engine in the foreground (Ctrl-C stops it).")
    server.add_serve_arguments(parser)
    # Serve where the control commands look by default (the engine's own default, 0, suits harnesses).
    parser.set_defaults(port=DEFAULT_PORT)
    parser._option_string_actions["--port"].help = f"port; 0 picks a free one (default {DEFAULT_PORT})"
    return parser


def cmd_serve(argv: Sequence[str]) -> int:
    from . import server

    args = _serve_parser().parse_args(argv)
    if args.policies is not None:
        try:
            load_policies(args.policies)
        except PolicyLoadError as exc:
            raise CliError(str(exc)) from None
    try:  # refuse a bad start-up file with one line, before anything binds
        from .record import load_recording
        from .startup import load_state

        if args.state is not None:
            load_state(args.state)
        if args.replay is not None:
            load_recording(args.replay)
    except PresetFileError as exc:
        raise CliError(f"serve: {exc}") from None
    try:
        config = server.config_from_args(args)
    except ValidationError as exc:
        raise CliError(f"serve: {describe_validation_error(exc)}") from None
    server.run(config)
    return 0


def cmd_fault_add(args: argparse.Namespace) -> int:
    if args.file is not None:
        given = _given_fault_fields(args)
        if args.type or given:
            raise CliError("fault add: --file and fault flags (--type, --ms, ...) do not mix; put everything in the file")
        try:
            rules = load_rules_file(args.file)
        except PresetFileError as exc:
            raise CliError(str(exc)) from None
    else:
        rules = [rule_from_flags(args)]
    with _client(args) as client:
        stored = [client.add_fault(rule, scope=_scope(args)) for rule in rules]
    if args.json:
        out.print_json(data=[rule.model_dump(mode="json") for rule in stored])
    else:
        for rule in stored:
            out.print(escape(f"added fault rule {rule.id}: {describe_rule(rule)}"))
    return 0


def cmd_fault_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print_rules(client.faults(scope=_scope(args)), args.json)
    return 0


def cmd_fault_rm(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for rule_id in args.ids:
            client.remove_fault(rule_id, scope=_scope(args))
            out.print(f"removed fault rule {escape(rule_id)}")
    return 0


def cmd_fault_clear(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.clear_faults(scope=_scope(args))
    out.print(f"cleared the {'global' if args.global_scope else 'namespace'} fault rules")
    return 0


def cmd_fault_types(args: argparse.Namespace) -> int:
    table = Table("type", "flags", "what the client sees", box=None)
    for name, cls in sorted(FAULTS.items()):
        flags = [_SPECIAL_FLAGS.get(f) or _flag_of(f) for f in cls.model_fields if f != "type"]
        summary = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        table.add_row(name, " ".join(flags) or "-", summary)
    out.print(table)
    return 0


def cmd_policy_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        policies = client.policies()
    if args.json:
        out.print_json(data=[policy.model_dump(mode="json") for policy in policies])
        return 0
    if not policies:
        out.print("no policies")
        return 0
    table = Table("name", "direction", "action", "matcher", "apps", "enabled", box=None)
    for policy in policies:
        matcher = policy.matcher.model_dump(exclude_defaults=True)
        text = " ".join(f"{key}={','.join(value)}" for key, value in matcher.items())
        table.add_row(escape(policy.name), policy.direction, policy.action, escape(text),
                      escape(",".join(policy.apps) or "all"), "yes" if policy.enabled else "no")
    out.print(table)
    return 0


def cmd_policy_load(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.preset is None):
        raise CliError("policy load: give a FILE or --preset NAME (one of them)")
    with _client(args) as client:
        if args.preset is not None:
            if args.preset not in available_presets():
                raise CliError(f"policy load: unknown preset {args.preset!r}; available: {', '.join(available_presets())}")
            policies = client.load_preset(args.preset)
            source = f"preset {args.preset}"
        else:
            try:
                policy_set = load_policies(args.file)
            except PolicyLoadError as exc:
                raise CliError(str(exc)) from None
            policies = client.set_policies(policy_set.policies)
            source = str(args.file)
    out.print(f"loaded {len(policies)} polic{'y' if len(policies) == 1 else 'ies'} from {escape(source)}: "
              + escape(", ".join(policy.name for policy in policies)))
    return 0


def cmd_policy_presets(args: argparse.Namespace) -> int:
    for name in available_presets():
        out.print(name)
    return 0


def _print_profile(profile: AktoProfile, as_json: bool) -> None:
    if as_json:
        out.print_json(data=profile.model_dump(mode="json"))
        return
    out.print(f"{escape(profile.name)}: {escape(profile.description)}")
    out.print(f"  legacy_payload={profile.legacy_payload} gateway_fail_open={profile.gateway_fail_open} "
              f"guardrails_client_timeout_ms={profile.guardrails_client_timeout_ms} "
              f"truefoundry_sync={profile.truefoundry_sync}")
    out.print(f"  source: {escape(profile.source)}")


def cmd_profile_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        profiles = client.akto_profiles()
    if args.json:
        out.print_json(data=[profile.model_dump(mode="json") for profile in profiles])
        return 0
    for profile in profiles:
        _print_profile(profile, False)
    return 0


def cmd_profile_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _print_profile(client.akto_profile(), args.json)
    return 0


def cmd_profile_set(args: argparse.Namespace) -> int:
    if args.name not in PROFILES:
        raise CliError(f"profile set: unknown Akto profile {args.name!r}; known: {', '.join(PROFILES)}")
    with _client(args) as client:
        profile = client.set_akto_profile(args.name, guardrails_client_timeout_ms=args.guardrails_client_timeout_ms)
    _print_profile(profile, args.json)
    return 0


def cmd_journal(args: argparse.Namespace) -> int:
    filters = {key: value for key, value in {
        "path": args.path, "connector": args.connector, "app": args.app, "flag": args.flag,
        "status": args.status, "fault": args.fault,
    }.items() if value is not None}
    with _client(args) as client:
        if args.match is not None:
            if args.follow or filters:
                raise CliError("journal: --match goes without --follow and the other filters (put them in the matcher)")
            from .cli_features import matcher_arg

            entries = client.find(matcher_arg(args.match), since=args.since or 0, limit=args.limit)
        else:
            entries = client.journal(limit=args.limit, since=args.since, **filters)
        if not args.follow:
            for entry in entries:
                _emit_entry(entry, args.json)
            return 0
        _follow(client, args, filters, entries)
    return 0


class _FollowState:
    """Which entries ``journal --follow`` printed, and where to resume: before the first still-pending
    entry (a call a fault is holding), so it is printed once it finishes, after later ones if need be."""

    def __init__(self, since: int) -> None:
        self.printed: set[int] = set()
        self.cursor = since

    def take(self, entries: list[JournalEntryModel], as_json: bool, limit: int | None) -> bool:
        """Print the finished, unprinted entries; True once ``limit`` entries have been printed."""
        for entry in entries:
            if entry.done and entry.seq not in self.printed:
                _emit_entry(entry, as_json)
                self.printed.add(entry.seq)
                if limit is not None and len(self.printed) >= limit:
                    return True
        pending = [entry.seq for entry in entries if not entry.done]
        self.cursor = min(pending) - 1 if pending else max([self.cursor, *(entry.seq for entry in entries)])
        return False

    def has_pending(self, entries: list[JournalEntryModel]) -> bool:
        return any(not entry.done for entry in entries)


def _follow(client: MockAktoClient, args: argparse.Namespace, filters: dict[str, Any], backlog: list[JournalEntryModel]) -> None:
    """Print entries as they finish until ``--count`` were printed (backlog included), ``--wait`` seconds
    passed, or Ctrl-C. Waits on the engine's server-side journal wait, so nothing polls while idle."""
    state = _FollowState(args.since or (backlog[0].seq - 1 if backlog else 0))
    if state.take(backlog, args.json, args.count):
        return
    deadline = time.monotonic() + args.wait if args.wait is not None else None
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            if args.count is not None:
                raise CliError(f"journal --follow: saw {len(state.printed)} of {args.count} entries within {args.wait:g}s", 1)
            return
        try:
            entries = client.wait_for(1, timeout=5.0 if remaining is None else min(5.0, remaining),
                                      since=state.cursor, **filters)
        except JournalTimeout:
            continue
        if state.take(entries, args.json, args.count):
            return
        if state.has_pending(entries):
            time.sleep(0.1)  # the engine's wait returns at once while an entry is pending: do not spin


def cmd_ingest(args: argparse.Namespace) -> int:
    with _client(args) as client:
        records = client.ingest_records(limit=args.limit)
    if args.json:
        for record in records:
            sys.stdout.write(json.dumps(record.model_dump(mode="json")) + "\n")
        return 0
    if not records:
        out.print("no ingest records")
    for record in records:
        stamp = datetime.fromtimestamp(record.time).strftime("%H:%M:%S.%f")[:-3]
        out.print(escape(f"#{record.seq} {stamp} {record.method} {record.path} status={record.statusCode or '-'} "
                         f"connector={record.connector or '-'} app={record.app or '-'} tag={record.tag or '-'}"))
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    with _client(args) as client:
        names = client.reset(everything=args.all)
    out.print(f"reset {escape(', '.join(names))}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.preset is None):
        raise CliError("apply: give a FILE or --preset NAME (one of them); bundled: " + (", ".join(bundled_apply_files()) or "none"))
    try:
        preset: PresetFile = load_preset_file(args.file) if args.file is not None else load_bundled_apply_file(args.preset)
    except PresetFileError as exc:
        raise CliError(str(exc)) from None
    done = []
    with _client(args) as client:
        if preset.policy_preset is not None:
            done.append(f"{len(client.load_preset(preset.policy_preset))} policies (preset {preset.policy_preset})")
        elif preset.policies is not None:
            done.append(f"{len(client.set_policies(preset.policies))} policies")
        if preset.faults is not None:
            client.clear_faults()
            stored = [client.add_fault(rule) for rule in preset.faults]
            done.append(f"{len(stored)} fault rule(s)" + (f": {', '.join(rule.id for rule in stored)}" if stored else ""))
        if preset.verdicts is not None:
            client.clear_verdicts()
            scripted = [client.add_verdict(script) for script in preset.verdicts]
            done.append(f"{len(scripted)} scripted verdict(s)")
    out.print(f"applied {escape(str(args.file or args.preset))}: {escape('; '.join(done) or 'nothing to change')}")
    return 0


# --------------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument("--url", default=argparse.SUPPRESS,
                            help=f"the engine (default ${URL_ENV} or {DEFAULT_URL})")
    connection.add_argument("-n", "--namespace", default=argparse.SUPPRESS,
                            help=f"namespace to act on (default ${NAMESPACE_ENV} or 'default')")
    connection.add_argument("--timeout", type=float, default=argparse.SUPPRESS, help="seconds per call (default 10)")

    parser = _Parser(prog="mock-akto", description="The fake Akto guardrail engine: run it, script it.",
                     parents=[connection])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version(DISTRIBUTION)}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    # Listed for --help only: main() hands `serve ...` to its own parser before this one runs.
    commands.add_parser("serve", help="run the engine in the foreground (see `serve --help`)")

    def sub(group: Any, name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        command = group.add_parser(name, help=help_text, description=help_text, parents=[connection])
        command.set_defaults(handler=handler)
        return command

    fault = commands.add_parser("fault", help="fault rules: add, list, rm, clear, types")
    fault_commands = fault.add_subparsers(dest="fault_command", required=True, metavar="ACTION", parser_class=_Parser)
    _add_fault_flags(sub(fault_commands, "add", cmd_fault_add, "add a fault rule from flags or a file"))
    fault_list = sub(fault_commands, "list", cmd_fault_list, "list fault rules with how often they fired")
    fault_list.add_argument("--global", dest="global_scope", action="store_true")
    fault_list.add_argument("--json", action="store_true")
    fault_rm = sub(fault_commands, "rm", cmd_fault_rm, "remove fault rules by id")
    fault_rm.add_argument("ids", nargs="+", metavar="ID")
    fault_rm.add_argument("--global", dest="global_scope", action="store_true")
    fault_clear = sub(fault_commands, "clear", cmd_fault_clear, "remove every fault rule")
    fault_clear.add_argument("--global", dest="global_scope", action="store_true")
    sub(fault_commands, "types", cmd_fault_types, "the fault catalogue and each type's flags")

    policy = commands.add_parser("policy", help="policies: list, load, presets")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION", parser_class=_Parser)
    sub(policy_commands, "list", cmd_policy_list, "the namespace's policies").add_argument("--json", action="store_true")
    policy_load = sub(policy_commands, "load", cmd_policy_load, "replace the namespace's policies")
    policy_load.add_argument("file", nargs="?", type=Path, metavar="FILE", help="policies YAML")
    policy_load.add_argument("--preset", help="a bundled preset instead (see `policy presets`)")
    sub(policy_commands, "presets", cmd_policy_presets, "the bundled policy presets")

    profile = commands.add_parser("profile", help="the Akto contract version a namespace plays: list, show, set")
    profile_commands = profile.add_subparsers(dest="profile_command", required=True, metavar="ACTION",
                                              parser_class=_Parser)
    sub(profile_commands, "list", cmd_profile_list, "every Akto profile").add_argument("--json", action="store_true")
    sub(profile_commands, "show", cmd_profile_show, "the namespace's profile").add_argument("--json", action="store_true")
    profile_set = sub(profile_commands, "set", cmd_profile_set, "play another profile until the next reset")
    profile_set.add_argument("name", metavar="NAME", help=", ".join(PROFILES))
    profile_set.add_argument("--guardrails-client-timeout-ms", type=int, metavar="MS",
                             help="the gateway's GUARDRAILS_CLIENT_TIMEOUT_MS (at least 500; default the profile's)")
    profile_set.add_argument("--json", action="store_true")

    journal = sub(commands, "journal", cmd_journal, "what the engine received and answered")
    journal.add_argument("--limit", type=int, default=50, help="the latest N entries (default 50)")
    journal.add_argument("--since", type=int, help="only entries after this seq")
    journal.add_argument("-f", "--follow", action="store_true", help="keep printing entries as they finish")
    journal.add_argument("--count", type=int, help="with --follow: stop once N entries were printed (backlog included)")
    journal.add_argument("--wait", type=float, help="with --follow: stop after S seconds (exit 1 if --count not reached)")
    journal.add_argument("--json", action="store_true", help="one JSON object per line")
    journal.add_argument("--path")
    journal.add_argument("--connector")
    journal.add_argument("--app")
    journal.add_argument("--flag", choices=FLAG_NAMES)
    journal.add_argument("--status", type=int)
    journal.add_argument("--fault", help="fault type applied")

    ingest = sub(commands, "ingest", cmd_ingest, "records of ingest_data=true calls")
    ingest.add_argument("--limit", type=int, default=50)
    ingest.add_argument("--json", action="store_true", help="one JSON object per line")

    reset = sub(commands, "reset", cmd_reset, "fresh policies, no fault rules, empty journal and ingest records")
    reset.add_argument("--all", action="store_true", help="every namespace and the global rules")

    from .cli_features import add_commands  # verdict, verify, record

    add_commands(commands, sub, _client, out, _Parser)
    journal.add_argument("--match", metavar="JSON", help="a matcher (JSON paths, headers, prompt, verdicts...)")

    apply = sub(commands, "apply", cmd_apply, "set policies, fault rules and scripted verdicts from one YAML file")
    apply.add_argument("file", nargs="?", type=Path, metavar="FILE")
    apply.add_argument("--preset", help="a bundled apply file: " + (", ".join(bundled_apply_files()) or "none"))
    return parser


def _check_numbers(args: argparse.Namespace) -> None:
    for name in ("limit", "count"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise CliError(f"--{name} must be at least 1")
    if getattr(args, "wait", None) is not None and args.wait <= 0:
        raise CliError("--wait must be positive")
    if getattr(args, "timeout", None) is not None and args.timeout <= 0:
        raise CliError("--timeout must be positive")
    if (getattr(args, "count", None) or getattr(args, "wait", None)) and not getattr(args, "follow", True):
        raise CliError("--count and --wait go with --follow")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mock-akto`` and ``python -m mock_akto``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["serve"]:
            return cmd_serve(argv[1:])
        args = build_parser().parse_args(argv)
        _check_numbers(args)
        return args.handler(args)
    except CliError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return exc.code
    except AdminError as exc:
        err.print(f"[red]error:[/red] the engine refused: {exc.status} {escape(_detail(exc.detail))}")
        return 1
    except httpx.TransportError as exc:
        try:
            url = exc.request.url
            where = f" at {url.scheme}://{url.netloc.decode()}"
        except RuntimeError:  # no request attached
            where = ""
        err.print(f"[red]error:[/red] cannot reach the engine{where}: "
                  f"{escape(str(exc) or type(exc).__name__)} (is `mock-akto serve` running? set --url or ${URL_ENV})")
        return 1
    except KeyboardInterrupt:
        return 130


def _detail(detail: Any) -> str:
    if isinstance(detail, list):  # FastAPI's 422: name each field
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" if isinstance(d, dict) else str(d)
                         for d in detail)
    return str(detail)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
