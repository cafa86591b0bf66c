"""Measurements too slow or noisy for tests: ``python -m benchmarks.<name>``.

The clips of :data:`AUDIO`, and the helpers that read them, serve the speech tests too.
"""

from __future__ import annotations

import wave
from pathlib import Path

AUDIO = Path(__file__).parents[1] / "tests" / "data"
"""The test clips with their reference transcripts (manifest.tsv; credits in NOTICE)."""

RATE = 16_000
"""The sample rate of every clip in :data:`AUDIO` (16-bit mono)."""


def read_pcm(path: Path) -> bytes:
    """A 16 kHz mono 16-bit WAV file's samples (every clip in :data:`AUDIO` is one)."""
    with wave.open(str(path), "rb") as reader:
        found = (reader.getframerate(), reader.getnchannels(), reader.getsampwidth())
        assert found == (RATE, 1, 2), f"{path.name}: {found}, not 16 kHz mono 16-bit"
        return reader.readframes(reader.getnframes())
