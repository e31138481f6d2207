"""``akto-harness scenarios list|check|run``: the shipped catalogue by default, ``--dir`` for yours, and a
command that finds no scenario is an error naming where it looked (exit 2), never an empty success."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.resources import scenario_catalogue


def test_check_validates_the_shipped_catalogue_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", "check"]) == 0
    count, _, where = capsys.readouterr().out.strip().partition(" scenarios OK in ")
    assert int(count) >= 50
    assert Path(where) == scenario_catalogue()


def test_list_reads_a_folder_of_your_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine.yaml").write_text(
        "description: My own scenario.\ntraffic: {prompt: hello}\nexpect: {default: {status: 200}}\n")
    assert main(["scenarios", "list", "--dir", str(tmp_path)]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.split() == ["mine", "My", "own", "scenario."]


@pytest.mark.parametrize("command", [["list"], ["check"], ["run", "--connector", "truefoundry"]])
def test_an_empty_folder_is_an_error_naming_it(command: list[str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", *command, "--dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert f"no scenario matches '*' in {tmp_path}/*.yaml" in captured.err
    assert captured.out == ""


def test_a_missing_folder_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["scenarios", "check", "--dir", str(missing)]) == 2
    assert f"{missing}/*.yaml (no such directory)" in capsys.readouterr().err


def test_a_pattern_that_matches_nothing_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", "check", "--scenario", "no-such-scenario-*"]) == 2
    assert f"'no-such-scenario-*' in {scenario_catalogue()}/*.yaml" in capsys.readouterr().err
