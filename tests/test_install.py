"""What a user installing the package gets: a wheel with its data, a demo that runs anywhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import wave
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_wheel_carries_the_sample_and_the_licence(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path, ROOT],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("speechmatics_modes-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "speechmatics_modes/_data/sample.wav" in names
    assert "speechmatics_modes/_data/NOTICE" in names, "the sample's credits travel with it"
    assert any(name.endswith("licenses/LICENSE") for name in names), names
    assert not any(name.startswith("tests/") for name in names)


def test_demo_finds_its_sample_from_any_directory(tmp_path: Path) -> None:
    """The full demo runs in ``nox -s demo`` (from a scratch directory); here, its default."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    env["COLUMNS"] = "1000"  # argparse would wrap the path
    result = subprocess.run(
        [sys.executable, "-m", "speechmatics_modes", "demo", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    default = re.search(r"\(default: (.+?\.wav)\)", result.stdout)
    assert default, result.stdout
    sample = Path(default.group(1))
    assert sample.is_absolute()
    with wave.open(str(sample)) as audio:
        assert audio.getnframes() / audio.getframerate() > 5
