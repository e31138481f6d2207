"""``akto-harness``: the harness command line. Subcommands live next to what they drive."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

from harness import load_cli, up
from harness.conformance import cli as conformance_cli
from harness.scenarios import cli as scenarios_cli
from harness.scenarios.model import ScenarioError

#: The installed distribution whose metadata ``--version`` reports.
DISTRIBUTION = "akto-harness"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="akto-harness", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version(DISTRIBUTION)}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    scenarios_cli.add_parser(subparsers)
    conformance_cli.add_parser(subparsers)
    up.add_parser(subparsers)
    load_cli.add_parser(subparsers)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
