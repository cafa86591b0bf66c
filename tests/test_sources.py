"""A source is classified once into a kind, and the kind decides the mode and how it is opened."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from speechmatics_modes import AudioSourceError, Microphone, Mode
from speechmatics_modes._sources import SourceKind, classify


async def _chunks() -> AsyncIterator[bytes]:
    yield b"\0\0"


@pytest.mark.parametrize(
    ("source", "kind", "mode"),
    [
        ("https://example.com/talk.mp3", "url", Mode.BATCH),
        ("talk.wav", "path", Mode.BATCH),
        (Path("talk.wav"), "path", Mode.BATCH),
        (b"RIFF", "bytes", Mode.BATCH),
        (bytearray(b"RIFF"), "bytes", Mode.BATCH),
        (io.BytesIO(b"RIFF"), "file", Mode.BATCH),
        ([b"\0\0"], "chunks", Mode.REALTIME),
        (_chunks(), "chunks", Mode.REALTIME),
        (Microphone(), "microphone", Mode.REALTIME),
    ],
    ids=["url", "str", "path", "bytes", "bytearray", "file", "iterable", "async", "microphone"],
)
def test_each_accepted_source_has_one_kind_and_mode(
    source: object, kind: SourceKind, mode: Mode
) -> None:
    classified = classify(source)
    assert (classified.kind, classified.natural_mode) == (kind, mode)
    assert classified.value is source
    assert classified.never_ends == (kind == "microphone")


def test_a_text_mode_file_and_a_number_are_refused_with_the_reason() -> None:
    with pytest.raises(AudioSourceError, match="open in text mode"):
        classify(io.StringIO("words"))
    with pytest.raises(AudioSourceError, match="cannot transcribe a int: expected a file path"):
        classify(42)
