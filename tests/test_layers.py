"""The import layers of docs/architecture.md, checked by import-linter (contracts in pyproject.toml).

Runs the ``lint-imports`` command installed next to this interpreter, from the repository root, and
reads its summary: the check must pass AND must have checked the contracts, because a misconfigured
linter that finds no contracts (or no code) would pass while checking nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
#: The contracts this test vouches for (pyproject.toml may hold more).
LAYER_CONTRACTS = (
    "reference_impl (the connectors) never imports mock_akto or harness",
    "mock_akto (the fake engine) never imports reference_impl or harness",
    "akto_wire (the wire contract) imports nothing else of ours",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_lint_imports() -> tuple[int, str]:
    """``lint-imports`` from the repository root (which is how it finds the layer packages), bounded."""
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} missing: install the test extra (pip install -e '.[test]')"
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": str(LINT_IMPORTS.parent), "NO_COLOR": "1"},
    )
    return done.returncode, _ANSI.sub("", done.stdout + done.stderr)


def test_layers_are_kept_and_actually_checked() -> None:
    code, output = run_lint_imports()
    summary = re.search(r"Contracts: (\d+) kept, (\d+) broken", output)
    assert summary is not None, f"lint-imports printed no contract summary:\n{output}"
    kept, broken = int(summary[1]), int(summary[2])
    assert code == 0 and broken == 0, f"import layers broken:\n{output}"
    assert kept >= len(LAYER_CONTRACTS), f"only {kept} contracts checked:\n{output}"
    analysed = re.search(r"Analyzed (\d+) files", output)
    assert analysed is not None and int(analysed[1]) > 50, f"lint-imports analysed too little:\n{output}"
    for name in LAYER_CONTRACTS:
        assert re.search(rf"{re.escape(name)}\s+KEPT", output), f"contract not checked: {name!r}\n{output}"
