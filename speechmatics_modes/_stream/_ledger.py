"""Bookkeeping of a real-time stream that spans sessions: plain code, no sockets, no clocks.

The rolling stream (``_rolling.py``) only pumps bytes and events; every decision about
*which* audio and *which* words lives here, where it is tested on its own:

- :class:`AudioRing` keeps the stream's audio by absolute byte offset (the stream's sample
  clock), bounded, and remembers where each run of quiet audio began (the pauses to switch at);
- :class:`Leg` is one server session's view: where its audio starts on the stream's clock, how
  much it was sent, how far its finals reach;
- :class:`WordLedger` turns a session's events into the stream's: times rebased onto the one
  clock, words already emitted by an earlier session dropped;
- :class:`SpeakerLedger` keeps the speakers every session identified, so the stream's speakers
  are all of them, not only the current session's.

Reconnection attempts are spaced out by :class:`~speechmatics_modes._retry.Backoff`, which batch
requests share.
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from speechmatics_modes._config import AudioFormat
from speechmatics_modes._insights import (
    AudioEventEnded,
    AudioEventStarted,
    FinalTranslation,
    IdentifiedSpeaker,
    PartialTranslation,
    SpeakersResult,
    TranslatedSentence,
)
from speechmatics_modes._models import EndOfUtterance, Final, Partial, StreamEvent, Word

__all__ = ["AudioRing", "Leg", "SpeakerLedger", "WordLedger", "level_dbfs"]

_DEDUP_EPSILON = 1e-3
"""Seconds of slack when comparing a replayed word with what was already emitted."""


def level_dbfs(chunk: bytes, audio_format: AudioFormat) -> float:
    """The RMS level of ``chunk`` in dB of full scale (``-inf`` for digital silence)."""
    samples, full_scale = _samples(chunk, audio_format.encoding)
    if not samples:
        return -math.inf
    mean_square = sum(map(operator.mul, samples, samples)) / len(samples)
    if mean_square <= 0:
        return -math.inf
    return 10 * math.log10(mean_square / (full_scale * full_scale))


def _samples(chunk: bytes, encoding: str) -> tuple[Sequence[float], float]:
    """The samples of ``chunk`` and the value of full scale in their unit."""
    if encoding == "mulaw":
        return [_MULAW[byte] for byte in chunk], 1.0
    values = array("h" if encoding == "pcm_s16le" else "f", chunk)
    if sys.byteorder == "big":
        values.byteswap()
    return values, 32768.0 if encoding == "pcm_s16le" else 1.0


def _mulaw_to_linear(byte: int) -> float:
    byte = ~byte & 0xFF
    magnitude = ((byte & 0x0F) << 3) + 0x84
    magnitude <<= (byte & 0x70) >> 4
    value = magnitude - 0x84
    return (-value if byte & 0x80 else value) / 32768.0


_MULAW = [_mulaw_to_linear(byte) for byte in range(256)]


@dataclass
class _Block:
    start: int
    data: bytes
    quiet_since: int | None
    """Where the run of quiet audio this block ends began; ``None`` if the block is loud."""

    @property
    def end(self) -> int:
        return self.start + len(self.data)


class AudioRing:
    """The stream's recent audio by absolute byte offset, at most ``capacity`` bytes.

    ``end`` is the stream's sample clock: every byte the source ever gave, whether or not it
    is still held. ``start`` is the oldest byte still held; audio before it was released (its
    words are final) or discarded (:meth:`append` beyond capacity).
    """

    def __init__(self, capacity: int, audio_format: AudioFormat, silence_dbfs: float) -> None:
        self.capacity = max(capacity, audio_format.chunk_size)
        self.audio_format = audio_format
        self.silence_dbfs = silence_dbfs
        self._blocks: deque[_Block] = deque()
        self.start = 0
        self.end = 0
        self.loud_discarded_until = 0
        """End of the last loud audio discarded for lack of room (0 if none ever was)."""

    @property
    def held(self) -> int:
        """Bytes currently held."""
        return self.end - self.start

    @property
    def full(self) -> bool:
        """Whether the next append would discard audio."""
        return self.held >= self.capacity

    def append(self, chunk: bytes) -> None:
        """Add the source's next chunk; discard the oldest audio beyond capacity."""
        previous = self._blocks[-1] if self._blocks else None
        quiet = level_dbfs(chunk, self.audio_format) < self.silence_dbfs
        quiet_since = None
        if quiet:
            continuing = previous is not None and previous.end == self.end
            run = previous.quiet_since if continuing and previous is not None else None
            quiet_since = self.end if run is None else run
        self._blocks.append(_Block(self.end, chunk, quiet_since))
        self.end += len(chunk)
        if self.held > self.capacity:
            self._discard(self.end - self.capacity)

    def _discard(self, before: int) -> None:
        for block in self._blocks:
            if block.start >= before:
                break
            if block.quiet_since is None:
                self.loud_discarded_until = min(block.end, before)
        self.release(before)

    def lost_since(self, offset: int) -> bool:
        """Whether loud audio after ``offset`` was discarded (not merely quiet audio)."""
        return self.loud_discarded_until > offset

    def release(self, before: int) -> None:
        """Forget the audio before offset ``before`` (it is final, or discarded)."""
        before = min(before, self.end)
        while self._blocks and self._blocks[0].end <= before:
            self._blocks.popleft()
        if self._blocks and self._blocks[0].start < before:
            block = self._blocks[0]
            self._blocks[0] = _Block(before, block.data[before - block.start :], block.quiet_since)
        self.start = max(self.start, before)

    def read(self, offset: int) -> bytes:
        """The held audio from ``offset`` to the end of the block holding it (``b""`` at end).

        Raises:
            ValueError: ``offset`` is no longer held (check :attr:`start` first).
        """
        if offset < self.start:
            raise ValueError(f"offset {offset} was released (the ring starts at {self.start})")
        for block in self._blocks:
            if block.start <= offset < block.end:
                return block.data[offset - block.start :]
        return b""

    def copy(self, start: int, end: int) -> bytes:
        """The held audio in ``[start, end)``, as one copy.

        Raises:
            ValueError: ``start`` is no longer held.
        """
        parts: list[bytes] = []
        while start < end:
            data = self.read(start)[: end - start]
            if not data:
                break
            parts.append(data)
            start += len(data)
        return b"".join(parts)

    def quiet_run(self, offset: int) -> int:
        """How many bytes of quiet audio end exactly at ``offset`` (0 if the audio is loud)."""
        for block in reversed(self._blocks):
            if block.start < offset <= block.end:
                if block.quiet_since is None:
                    return 0
                return offset - block.quiet_since
        return 0

    def first_loud(self, offset: int) -> int | None:
        """The start of the first loud block at or after ``offset``, if the ring holds one."""
        for block in self._blocks:
            if block.end > offset and block.quiet_since is None:
                return max(block.start, offset)
        return None


@dataclass
class Leg:
    """One server session's place on the stream: its audio is ``[base, sent)`` of the stream.

    Times the session reports count from its own first byte; adding :attr:`offset` puts them
    on the stream's clock.
    """

    bytes_per_second: int
    sample_width: int
    base: int = 0
    """Stream offset of the first byte this session was sent."""
    sent: int = 0
    """Stream offset just after the last byte this session was sent."""
    final_end: int = 0
    """Stream offset up to which this session's finals cover the audio."""
    settled: bool = True
    """No partial words are pending after the last final (a safe place to switch)."""
    session_id: str | None = None
    owned_from: int = 0
    """Stream offset where the session's own audio begins. What it was sent before that is its
    lead-in: audio an earlier session transcribed, sent again so that the session hears its
    first words after what came before them."""

    def commit(self, base: int, *, owned_from: int | None = None) -> None:
        """The session's audio starts at stream offset ``base``; its own at ``owned_from``."""
        self.base = self.sent = self.final_end = base
        self.owned_from = base if owned_from is None else owned_from

    @property
    def offset(self) -> float:
        """Seconds to add to the session's times to put them on the stream's clock."""
        return self.base / self.bytes_per_second

    @property
    def owned_since(self) -> float:
        """Stream seconds where the session's own audio begins (:attr:`owned_from`)."""
        return self.owned_from / self.bytes_per_second

    def to_offset(self, seconds: float) -> int:
        """The stream byte offset of a time the session reported (whole samples, in range)."""
        samples = round(seconds * self.bytes_per_second / self.sample_width)
        raw = self.base + samples * self.sample_width
        return min(max(raw, self.base), self.sent)

    def observe(self, event: StreamEvent) -> None:
        """Note how far the session's output is final, from one of its events."""
        if isinstance(event, Final):
            self.final_end = max(self.final_end, self.to_offset(event.end))
            self.settled = True
        elif isinstance(event, EndOfUtterance):
            self.final_end = max(self.final_end, self.to_offset(event.time))
        elif isinstance(event, Partial):
            self.settled = not event.words


@dataclass
class WordLedger:
    """What the stream has emitted: its words (optionally) and where its last final word ends.

    Only a *different* session can repeat a word: one session never finalises the same audio
    twice, so its own words are never compared with each other (engines let a word start a
    little before the previous one ends, and such a word is new). A session's word repeats an
    earlier session's when most of it (its midpoint) lies before the end of what those sessions
    emitted: replayed audio is heard again at the same place, a cut word's second half is not.
    A word that ends by that end repeats one too, however short: times come in whole
    milliseconds, so a replay can start a fraction of one before the end of the last final
    word, and an engine may hear that sliver as the word again.
    """

    keep_words: bool = True
    emitted_until: float = 0.0
    """Stream seconds: the end of the last final word emitted."""
    words: list[Word] = field(default_factory=list)
    deduplicated: int = 0
    """Words dropped because an earlier session had emitted them already."""
    _emitting: Leg | None = field(default=None, repr=False)
    """The session whose finals were emitted last."""
    _earlier_until: float = 0.0
    """Stream seconds: the end of the words emitted by the sessions before ``_emitting``."""

    def rebase(self, event: StreamEvent, leg: Leg) -> StreamEvent | None:
        """``leg``'s event on the stream's clock, without words an earlier session emitted.

        Returns ``None`` if nothing new is left. A final's surviving words are recorded as
        emitted; a partial's are only shown.
        """
        offset = leg.offset
        if isinstance(event, Final):
            if leg is not self._emitting:
                self._emitting, self._earlier_until = leg, self.emitted_until
            words = self._fresh(event.words, offset, self._until(leg), count=True)
            if not words:  # a forced final still answers force_end_of_utterance()
                return event.model_copy(update=_span(event, offset, ())) if event.forced else None
            self.emitted_until = max(self.emitted_until, max(word.end for word in words))
            if self.keep_words:
                self.words.extend(words)
            return event.model_copy(update=_span(event, offset, words))
        if isinstance(event, Partial):
            words = self._fresh(event.words, offset, self._until(leg), count=False)
            return event.model_copy(update=_span(event, offset, words))
        if isinstance(event, (FinalTranslation, PartialTranslation)):
            return self._translation(event, leg)
        moment = _moment(event)
        if moment is None:
            return event
        if moment + offset < leg.owned_since:  # in the lead-in: an earlier session said it
            return None
        return event.model_copy(update={_MOMENTS[type(event)]: moment + offset})

    def _until(self, leg: Leg) -> float:
        """Stream seconds before which ``leg``'s words repeat what earlier sessions emitted."""
        emitted = self._earlier_until if leg is self._emitting else self.emitted_until
        return max(emitted, leg.owned_since)

    def _translation(
        self, event: FinalTranslation | PartialTranslation, leg: Leg
    ) -> FinalTranslation | PartialTranslation | None:
        """Sentences on the stream's clock, without those an earlier session translated.

        A sentence translates finals, so it is stale by the rule for words (its midpoint lies
        in what earlier sessions emitted); translations are never compared within a session.
        """
        until = self._until(leg)
        sentences = tuple(
            _shifted(sentence, leg.offset)
            for sentence in event.sentences
            if (sentence.start + sentence.end) / 2 + leg.offset >= until - _DEDUP_EPSILON
        )
        if not sentences and isinstance(event, FinalTranslation):
            return None
        return event.model_copy(update={"sentences": sentences})

    def _fresh(
        self, words: tuple[Word, ...], offset: float, until: float, *, count: bool
    ) -> tuple[Word, ...]:
        """``words`` on the stream's clock, without those lying mostly before ``until``."""
        kept: list[Word] = []
        dropped_previous = False
        for word in words:
            start, end = word.start + offset, word.end + offset
            sliver = not word.is_punctuation and end <= until + _DEDUP_EPSILON
            stale = sliver or (start + end) / 2 < until - _DEDUP_EPSILON
            dangling = dropped_previous and word.joins_previous
            if stale or dangling:
                dropped_previous = True
                if count and not word.is_punctuation:
                    self.deduplicated += 1
                continue
            dropped_previous = False
            kept.append(word.model_copy(update={"start": start, "end": end}))
        return tuple(kept)


@dataclass
class SpeakerLedger:
    """The speakers each session of the stream identified, in session order.

    The service labels speakers afresh in every session (``S1`` of one session and ``S1`` of
    the next may be different people, or the same), so the sessions' answers are neither merged
    nor relabelled: each speaker is kept with the :attr:`~IdentifiedSpeaker.session_id` of the
    session that heard them, and a session's later answer replaces its earlier one (it lists
    everyone that session heard so far).
    """

    _sessions: dict[int, tuple[IdentifiedSpeaker, ...]] = field(default_factory=dict)

    def record(self, order: int, session_id: str | None, result: SpeakersResult) -> None:
        """Session number ``order`` of the stream (0 first) answered ``result``."""
        self._sessions[order] = tuple(
            speaker.model_copy(update={"session_id": session_id}) for speaker in result.speakers
        )

    def result(self) -> SpeakersResult:
        """Every session's speakers, earliest session first."""
        return SpeakersResult(
            speakers=tuple(
                speaker for order in sorted(self._sessions) for speaker in self._sessions[order]
            )
        )


_MOMENTS: dict[type[StreamEvent], str] = {
    EndOfUtterance: "time",
    AudioEventStarted: "start",
    AudioEventEnded: "end",
}
"""Events that mark a moment, and the field that holds it (session seconds)."""


def _moment(event: StreamEvent) -> float | None:
    """The moment ``event`` marks, if it marks one (:data:`_MOMENTS`)."""
    name = _MOMENTS.get(type(event))
    return None if name is None else float(getattr(event, name))


def _shifted(sentence: TranslatedSentence, offset: float) -> TranslatedSentence:
    return sentence.model_copy(
        update={"start": sentence.start + offset, "end": sentence.end + offset}
    )


def _span(event: Final | Partial, offset: float, words: tuple[Word, ...]) -> dict[str, object]:
    start = max(event.start + offset, words[0].start) if words else event.start + offset
    return {"words": words, "start": start, "end": event.end + offset}
