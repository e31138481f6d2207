"""``python -m bench`` runs every benchmark script; ``python -m bench NAME [args...]`` runs one.

A script is a module in this package with a ``main(argv) -> int`` (the engine ones here, and the
connectors' ``<connector>_overhead`` scripts as they are added). Each runs in its own process, so one
script's servers, CPU pinning and event loop never leak into the next.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import bench

#: Run first, in this order; any other script found in the package follows alphabetically.
ORDER = ("engine_throughput", "engine_delay_precision", "engine_memory")
#: Modules of the package that are tooling, not benchmarks.
NOT_SCRIPTS = {"_common", "stats", "load", "payloads", "rawhttp", "raw_app", "servers", "wrk"}


def scripts() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(bench.__path__)
             if not m.name.startswith("_") and m.name not in NOT_SCRIPTS}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def main(argv: list[str]) -> int:
    available = scripts()
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("scripts:", ", ".join(available))
        return 0
    if argv:
        name, rest = argv[0], argv[1:]
        if name not in available:
            print(f"unknown benchmark {name!r}; choose one of: {', '.join(available)}", file=sys.stderr)
            return 2
        selected = [(name, rest)]
    else:
        selected = [(name, []) for name in available]
    root = Path(__file__).resolve().parent.parent
    failed = []
    for name, rest in selected:
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *rest], cwd=root)
        if code != 0:
            failed.append(f"{name} (exit {code})")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
