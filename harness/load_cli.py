"""``akto-harness load``: find and run the shipped locustfiles (the short form of ``locust -f <path>``).

``load list`` names them and the example budget files, ``load path NAME`` prints one's path (so
``locust -f $(akto-harness load path engine)`` works from any installed wheel), ``load run NAME ARGS...``
runs ``locust -f <path> ARGS...`` with this Python (every Locust option passes through: ``--headless``,
``-u``, ``-r``, ``-t``, ``--csv``, ``--html``, ``--master``, ``--worker``, ``--tags``, ``--budget``...).
"""

from __future__ import annotations

import argparse
import os
import sys

from harness import resources


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    load = subparsers.add_parser("load", help="the shipped locustfiles: list, path NAME, run NAME [locust args]",
                                 description=__doc__.split("\n\n")[0])
    actions = load.add_subparsers(dest="load_command", required=True)
    actions.add_parser("list", help="the shipped locustfiles and example budget files").set_defaults(handler=list_files)
    path = actions.add_parser("path", help="print the path of a locustfile (or of an example budget file)")
    path.add_argument("name", help="engine, engine_open, connector, target, or an example such as engine-budget.yaml")
    path.set_defaults(handler=print_path)
    run = actions.add_parser("run", help="locust -f <locustfile> ARGS... (every Locust option passes through)")
    run.add_argument("name", help="engine, engine_open, connector or target")
    run.add_argument("locust_args", nargs=argparse.REMAINDER, help="passed to locust as they are")
    run.set_defaults(handler=run_locust)


def _find(name: str) -> str:
    shipped = {**resources.locustfiles(), **resources.loadtest_examples()}
    if name not in shipped:
        raise SystemExit(f"no shipped locustfile or example named {name!r}; there are: {', '.join(shipped)}")
    return str(shipped[name])


def list_files(args: argparse.Namespace) -> int:
    for name, path in {**resources.locustfiles(), **resources.loadtest_examples()}.items():
        print(f"{name:22} {path}")
    return 0


def print_path(args: argparse.Namespace) -> int:
    print(_find(args.name))
    return 0


def run_locust(args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "locust", "-f", _find(args.name), *args.locust_args]
    os.execv(sys.executable, argv)  # Locust owns the process from here (signals, exit code)
    return 0  # pragma: no cover
