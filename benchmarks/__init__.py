"""Measurements too slow or noisy for tests: ``python -m benchmarks.<name>``.

The clips of :data:`AUDIO`, and the helpers that read them, serve the speech tests too.
"""

from __future__ import annotations

import wave
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, TypeVar

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


class _Clip(Protocol):
    @property
    def path(self) -> Path: ...
    @property
    def duration(self) -> float: ...


_C = TypeVar("_C", bound=_Clip)


def joined_speech(
    clips: Iterable[_C], seconds: float, *, pause_seconds: float = 1.0
) -> tuple[bytes, list[_C]]:
    """The clips in the order given, each followed by a pause, until ``seconds`` are reached.

    Returns:
        The joined PCM, and the clips it holds (for their references).
    """
    pause = b"\x00\x00" * int(pause_seconds * RATE)
    parts: list[bytes] = []
    used: list[_C] = []
    total = 0.0
    for clip in clips:
        if total >= seconds:
            break
        parts += [read_pcm(clip.path), pause]
        used.append(clip)
        total += clip.duration + pause_seconds
    return b"".join(parts), used
