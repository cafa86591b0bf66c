"""The README's two commands are what CI and a newcomer actually run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _nox_arguments(line: str) -> list[str]:
    command = line.split("#", 1)[0].split("&&")[-1]
    words = shlex.split(command)
    return words[words.index("nox") + 1 :]


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", readme, re.DOTALL)
    assert first_block, "the README's first screen has no shell block"
    return [line for line in first_block.group(1).splitlines() if line.strip()]


def test_readme_gives_the_two_commands_first() -> None:
    demo, tests = _readme_commands()
    assert _nox_arguments(demo) == ["-s", "demo"]
    assert "tests" in _nox_arguments(tests)


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines() if "nox -s" in line
    ]
    assert len(ci_lines) == 1
    assert _nox_arguments(ci_lines[0]) == _nox_arguments(_readme_commands()[1])


def test_noxfile_has_every_session_the_readme_names() -> None:
    noxfile = (ROOT / "noxfile.py").read_text()
    for command in _readme_commands():
        for session in _nox_arguments(command)[1:]:
            assert f"def {session}(" in noxfile
