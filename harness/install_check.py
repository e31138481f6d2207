"""``python -m harness.install_check NAME ... [NAME!]``: fail fast when an environment is incomplete.

The Makefile's pip steps filter pip's noise, so they cannot fail the build themselves; this check does,
naming what is missing. It only looks packages up (``importlib.util.find_spec``), never imports them:
importing litellm starts network threads, and locust then monkey-patches them with gevent and hangs.
A name ending in ``!`` must be *absent* (litellm and mitmproxy must never share an environment).
"""

from __future__ import annotations

import importlib.util
import sys


def main(names: list[str]) -> int:
    problems = []
    for name in names:
        must_be_absent = name.endswith("!")
        module = name.rstrip("!")
        present = importlib.util.find_spec(module) is not None
        if must_be_absent and present:
            problems.append(f"{module} must not be installed in this environment")
        elif not must_be_absent and not present:
            problems.append(f"{module} is not installed")
    for problem in problems:
        print(f"install check: {problem} ({sys.prefix})", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
