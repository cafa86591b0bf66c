"""The recording ``speechmatics-modes demo`` transcribes, shipped inside the package.

It is package data rather than a path relative to the repository, so the demo works from any
directory and from an installed wheel (credits: examples/SAMPLE.md in the repository).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["sample_audio"]


def sample_audio() -> Path:
    """The bundled 16 kHz mono WAV sample (about 9 s of read English speech; credits: NOTICE)."""
    # Installed wheels and editable installs are plain directories, so the resource is a file.
    return Path(str(files("speechmatics_modes") / "_data" / "sample.wav"))
