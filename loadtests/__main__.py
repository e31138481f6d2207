"""``python -m loadtests <suite> --users N --run-time S [--budget-p99-ms X]``: bounded load, gated on raw timings.

Suites: ``engine`` (the engine's contract route, allow/block/redact mix), ``timeout`` (latency budgets
around a connector's engine timeout in both fail modes: a slow, hanging, garbled, down or flaky engine, and
a slow guardrails-service behind Akto's gateway with its fail-open on and off), ``target`` (any URL with a
body template). Exit code 0 when every budget holds, 1 when one does not.
"""

from locust import events  # noqa: F401  (imported first: locust monkey-patches the standard library with gevent)

import argparse
import sys

from harness.connectors import registry
from harness.payloads import ALLOW_PROMPT
from loadtests.suites import run_engine_suite, run_target_suite, run_timeout_suite


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__.split("\n")[0])
    suites = parser.add_subparsers(dest="suite", required=True)

    def common(p: argparse.ArgumentParser, users: int, run_time: float) -> None:
        p.add_argument("--users", type=int, default=users, help=f"concurrent users (default {users})")
        p.add_argument("--run-time", type=float, default=run_time, help=f"seconds of load (default {run_time:g})")
        p.add_argument("--engine-url", help="use this running engine instead of starting one")
        p.add_argument("--min-requests", type=int, default=1, help="fewer samples than this fails the gate")

    engine = suites.add_parser("engine", help="engine direct: allow/block/redact mix")
    common(engine, users=20, run_time=10)
    engine.add_argument("--budget-p99-ms", type=float, default=250.0, help="p99 over all requests (default 250)")
    engine.add_argument("--budget-min-ms", type=float, help="every request at least this slow (proves a delay)")
    engine.add_argument("--delay-ms", type=int, default=0, help="add a fixed_delay fault to the engine namespace")

    timeout = suites.add_parser("timeout", help="latency budgets around a connector's engine timeout")
    common(timeout, users=16, run_time=12)
    timeout.add_argument("--connector", choices=registry.names(), default="truefoundry",
                         help="a registered connector (harness/connectors/), started in its real host")
    timeout.add_argument("--timeout", type=float, default=5.0, help="connector engine timeout, whole s (default 5)")
    timeout.add_argument("--delta-ms", type=int, default=200, help="engine delays are timeout -/+ this (default 200)")
    timeout.add_argument("--margin-ms", type=int, default=250, help="allowed lateness past the timeout (default 250)")
    timeout.add_argument("--gateway-timeout-ms", type=int,
                         help="Akto's GUARDRAILS_CLIENT_TIMEOUT_MS for the gateway fail-open case (default: "
                              "3000 under a 5 s timeout, scaled in proportion, at least 500)")
    timeout.add_argument("--wait", type=float, default=0.1, help="seconds between a user's requests (default 0.1)")

    target = suites.add_parser("target", help="any endpoint: URL + body template")
    common(target, users=10, run_time=10)
    target.add_argument("--target-url", required=True)
    target.add_argument("--body-template", help="JSON file with a {{prompt}} slot (default: OpenAI chat request)")
    target.add_argument("--header", action="append", help="'name: value', repeatable")
    target.add_argument("--prompt", default=ALLOW_PROMPT)
    target.add_argument("--expect-status", type=int, default=200)
    target.add_argument("--budget-p99-ms", type=float, default=1000.0)
    target.add_argument("--network-timeout", type=float, default=30.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.users < 1 or args.run_time <= 0:
        raise SystemExit("--users must be >= 1 and --run-time > 0")
    run = {"engine": run_engine_suite, "timeout": run_timeout_suite, "target": run_target_suite}[args.suite]
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
