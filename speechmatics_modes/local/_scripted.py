"""A speech engine that "recognises" words you scripted, at the times you scripted them.

Use it where the words do not matter but their timing and flow do: protocol tests, and tests
of your own code against :class:`~speechmatics_modes.local.LocalServer` that must be fast and
deterministic. The audio is only measured, never listened to, so silence works as well as
speech: a word is heard once the audio fed reaches its end time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path

import anyio

from speechmatics_modes._exceptions import ConfigurationError
from speechmatics_modes.local._engine import (
    ENGINE_SAMPLE_RATE,
    EngineWord,
    NothingToStart,
    StreamUpdate,
)
from speechmatics_modes.local._insights import EngineInsights

__all__ = ["ScriptedEngine", "ScriptedStream"]

_BYTES_PER_SECOND = ENGINE_SAMPLE_RATE * 2


class ScriptedEngine(NothingToStart):
    """An :class:`~speechmatics_modes.local._engine.Engine` that returns scripted words.

    Example::

        engine = ScriptedEngine.from_text("hello world. how are you", word_seconds=0.4)
        async with LocalServer(engine=engine) as server:
            ...
    """

    name = "scripted"

    def __init__(
        self,
        words: Sequence[EngineWord],
        *,
        final_lag: float = 0.3,
        pause: float = 0.6,
        insights: EngineInsights | None = None,
    ) -> None:
        """Script the words every file and every stream will contain.

        Args:
            words: The words, in time order (times in seconds from the start of the audio).
            insights: Translations, a summary, sentiment, topics, chapters and audio events
                to report when a config asks for them (a config asking for one not scripted
                is refused, as with every offline engine).
            final_lag: Seconds of audio past a word's end before a stream makes it final
                (capped by the session's ``max_delay``), so partials can be seen first.
            pause: A gap between words at least this long ends an utterance, as an
                endpointer would.

        Raises:
            ConfigurationError: The words overlap or are out of order, or a delay is negative.
        """
        if final_lag < 0 or pause <= 0:
            raise ConfigurationError("final_lag must be >= 0 and pause > 0")
        for earlier, later in pairwise(words):
            if later.start < earlier.end:
                raise ConfigurationError(
                    f"scripted words overlap or are out of order: {earlier.text!r} ends at "
                    f"{earlier.end}, {later.text!r} starts at {later.start}"
                )
        self.words = tuple(words)
        """The scripted words."""
        self.final_lag = final_lag
        """Seconds of audio past a word's end before it becomes final."""
        self.pause = pause
        """The gap that ends an utterance."""
        self.insights = insights or EngineInsights()
        """What the engine reports besides words."""

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        start: float = 0.5,
        word_seconds: float = 0.4,
        gap: float = 0.1,
        sentence_gap: float = 1.0,
        insights: EngineInsights | None = None,
    ) -> ScriptedEngine:
        """Script ``text`` as evenly spaced words; a ``.`` in the text marks a long pause.

        Args:
            text: Words separated by spaces; sentences separated by ``.``.
            start: When the first word starts.
            word_seconds: How long each word lasts.
            gap: Silence between words of a sentence.
            sentence_gap: Silence between sentences (long enough to end an utterance).
            insights: What to report besides words (see :class:`ScriptedEngine`).
        """
        words: list[EngineWord] = []
        clock = start
        for sentence in text.split("."):
            for token in sentence.split():
                words.append(EngineWord(token, clock, clock + word_seconds, 0.9))
                clock += word_seconds + gap
            clock += sentence_gap - gap
        return cls(words, pause=min(sentence_gap, 0.6), insights=insights)

    async def recognize_file(self, path: Path) -> list[EngineWord]:
        """Return the scripted words that fit in the file's duration."""
        heard = (await anyio.Path(path).stat()).st_size / _BYTES_PER_SECOND
        return [word for word in self.words if word.end <= heard]

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> ScriptedStream:
        """Start a stream over the scripted words (partials cost nothing, so always made)."""
        return ScriptedStream(self, min(self.final_lag, max_delay))


class ScriptedStream:
    """One session's view of a :class:`ScriptedEngine`: words appear as audio reaches them."""

    def __init__(self, engine: ScriptedEngine, final_lag: float) -> None:
        self._engine = engine
        self._final_lag = final_lag
        self._bytes = 0
        self._next_final = 0
        self._utterance_open = False
        self.closed = False
        """Whether :meth:`aclose` was called (tests check that servers release streams)."""

    @property
    def heard(self) -> float:
        """Seconds of audio fed so far."""
        return self._bytes / _BYTES_PER_SECOND

    async def feed(self, pcm: bytes) -> StreamUpdate:
        """Count the audio and report the words it reached."""
        self._bytes += len(pcm)
        finals = self._take_finals(lambda word: word.end + self._final_lag <= self.heard)
        return StreamUpdate(finals, self._partial(), self._utterance_ended())

    async def flush(self) -> StreamUpdate:
        """Make every word already begun final."""
        finals = self._take_finals(lambda word: word.start < self.heard)
        ended = self._utterance_open
        self._utterance_open = False
        return StreamUpdate(finals, (), ended)

    def retune(self, *, max_delay: float, partials: bool) -> None:
        """Take a ``max_delay`` set mid-session: words are final within it from now on."""
        self._final_lag = min(self._engine.final_lag, max_delay)

    async def aclose(self) -> None:
        """Mark the stream closed."""
        self.closed = True

    def _take_finals(self, is_final: Callable[[EngineWord], bool]) -> tuple[EngineWord, ...]:
        words = self._engine.words
        first = self._next_final
        while self._next_final < len(words) and is_final(words[self._next_final]):
            self._next_final += 1
        finals = words[first : self._next_final]
        self._utterance_open = self._utterance_open or bool(finals)
        return finals

    def _partial(self) -> tuple[EngineWord, ...]:
        pending = self._engine.words[self._next_final :]
        return tuple(word for word in pending if word.start < self.heard)

    def _utterance_ended(self) -> bool:
        if not self._utterance_open or self._next_final == 0:
            return False
        last_end = self._engine.words[self._next_final - 1].end
        pending = self._engine.words[self._next_final :]
        next_start = pending[0].start if pending else float("inf")
        pause = self._engine.pause
        if next_start - last_end >= pause and self.heard >= last_end + pause:
            self._utterance_open = False
            return True
        return False
