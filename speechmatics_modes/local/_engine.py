"""The seam between the local server's protocol code and a speech engine.

The server speaks Speechmatics' wire protocols; an engine only turns 16 kHz mono 16-bit PCM into
timed words. Keeping the two apart lets a stronger engine (Whisper, say) replace pocketsphinx
without touching protocol code, and lets protocol tests run a scripted engine when the words do
not matter.

Engines own *where* decoding runs (threads, worker processes): every method here is async and
must never block the event loop, because one server process serves many sessions and jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

__all__ = [
    "ENGINE_SAMPLE_RATE",
    "Engine",
    "EngineWord",
    "StreamUpdate",
    "StreamingRecognizer",
]

ENGINE_SAMPLE_RATE = 16_000
"""Every engine takes mono signed 16-bit little-endian PCM at this rate; the server resamples."""


@dataclass(frozen=True, slots=True)
class EngineWord:
    """One recognised word, before the server shapes it into the service's result format."""

    text: str
    """The word as spoken, without punctuation (see :attr:`punctuation`); case as the engine
    gives it."""
    start: float
    """Seconds from the first sample given to this recogniser (or file)."""
    end: float
    """Seconds from the first sample given to this recogniser (or file); ``end >= start``."""
    confidence: float
    """Between 0 and 1."""
    punctuation: str = ""
    """Punctuation the engine heard right after the word (``","``, ``"."``, ``"?"``), if it
    punctuates at all; the server sends it as a separate result attached to this word."""


@dataclass(frozen=True, slots=True)
class StreamUpdate:
    """What a streaming recogniser learned from the audio it was just given."""

    finals: tuple[EngineWord, ...] = ()
    """Words that became final with this update, in order. Once returned, never revised."""
    partial: tuple[EngineWord, ...] = ()
    """The current hypothesis for audio after the last final word. Replaces the previous one."""
    utterance_ended: bool = False
    """The engine's endpointer closed an utterance (a pause) with these finals."""


class StreamingRecognizer(Protocol):
    """Incremental recognition for one real-time session. One per session: never shared."""

    async def feed(self, pcm: bytes) -> StreamUpdate:
        """Add audio (mono s16le at :data:`ENGINE_SAMPLE_RATE`, even length) and report progress."""
        ...

    async def flush(self) -> StreamUpdate:
        """Make every word heard so far final (ForceEndOfUtterance, EndOfStream).

        The recogniser stays usable: audio fed afterwards starts a new utterance, with times
        still counted from the first sample of the session.
        """
        ...

    async def aclose(self) -> None:
        """Release the decoder. Safe to call more than once."""
        ...


class Engine(Protocol):
    """A speech engine: whole-file recognition and per-session streaming recognition."""

    name: str
    """Short name used in logs, ``RecognitionStarted`` and benchmarks (e.g. ``"pocketsphinx"``)."""

    async def recognize_file(self, path: Path) -> list[EngineWord]:
        """Recognise a whole file of raw mono s16le PCM at :data:`ENGINE_SAMPLE_RATE`.

        The server converts uploads to that form on disk first, so files of any size are read
        in chunks, never held in memory whole.
        """
        ...

    async def open_stream(self, *, max_delay: float) -> StreamingRecognizer:
        """Start a streaming recogniser.

        Args:
            max_delay: Seconds after which a word must be final even without a pause, as the
                service's ``max_delay`` promises.
        """
        ...

    async def __aenter__(self) -> Engine:
        """Start whatever the engine runs on (worker processes, loaded models)."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop workers and release models; pending work is cancelled."""
        ...
