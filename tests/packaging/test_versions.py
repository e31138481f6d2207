"""``--version`` on both CLIs reports the installed distribution's version (importlib.metadata)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Callable

import pytest

from harness import cli as harness_cli
from mock_akto import cli as engine_cli


@pytest.mark.parametrize("prog, main", [("mock-akto", engine_cli.main), ("akto-harness", harness_cli.main)])
def test_version_is_the_distribution_version(prog: str, main: Callable[[list[str]], int],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"{prog} {version('akto-harness')}"
