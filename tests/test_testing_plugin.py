"""The pytest plugin as a user meets it: an application's own test run, in a project of its own."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).parents[1] / "examples" / "testing"


@pytest.mark.slow
def test_the_documented_example_passes_with_the_plugin_from_its_entry_point(
    tmp_path: Path,
) -> None:
    for source in EXAMPLE.glob("*.py"):
        shutil.copy(source, tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,  # no conftest.py: the fixtures can only come from the installed plugin
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_the_marker_takes_keyword_arguments_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.anyio
        @pytest.mark.speechmatics("whisper")
        async def test_it(speechmatics_server):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*takes LocalServer keyword arguments*"])
