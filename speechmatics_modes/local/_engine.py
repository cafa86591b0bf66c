"""The seam between the local server's protocol code and a speech engine.

The server speaks Speechmatics' wire protocols; an engine only turns 16 kHz mono 16-bit PCM into
timed words. Keeping the two apart lets a stronger engine (Whisper, say) replace pocketsphinx
without touching protocol code, and lets protocol tests run a scripted engine when the words do
not matter.

Engines own *where* decoding runs (threads, worker processes): every method here is async and
must never block the event loop, because one server process serves many sessions and jobs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from typing_extensions import Self

from speechmatics_modes._exceptions import ConfigurationError

__all__ = [
    "ENGINE_SAMPLE_RATE",
    "Engine",
    "EngineWord",
    "NothingToStart",
    "StreamSettings",
    "StreamUpdate",
    "StreamingRecognizer",
    "arriving",
    "force_end_of_utterance",
    "hurry",
    "joins_backlog",
    "open_tuned",
    "retune",
    "stream_capacity",
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
    """Incremental recognition for one real-time session. One per session: never shared.

    Six methods and an attribute are optional, so recognisers written before them keep
    working:

    * ``retune(*, max_delay: float, partials: bool) -> None``, called when
      ``SetRecognitionConfig`` changes either mid-session (without it, a recogniser keeps
      what it was opened with);
    * ``end_utterances_after(seconds: float) -> None``, called once the stream is open and
      whenever ``SetRecognitionConfig`` changes it, with the session's
      ``end_of_utterance_silence_trigger`` (0 when EndOfUtterance is off). EndOfUtterance
      follows the close of an utterance, so a recogniser that closes utterances at pauses of
      its own length can close them at pauses about this short, answering a short trigger
      sooner (without it, EndOfUtterance waits for the recogniser's own pause);
    * ``finish_entities(allowed: bool) -> None``, called the same way, false when the
      session's ``max_delay_mode`` is "fixed": whether a word may wait past ``max_delay`` to
      be part of a whole entity (a number heard to its end; without it, ``max_delay`` is
      kept whatever the mode);
    * ``async force_end_of_utterance() -> StreamUpdate``, called for ForceEndOfUtterance
      instead of :meth:`flush`, for an engine that can answer faster than its flush at some
      cost in accuracy (a client forcing the end of a turn waits for the answer; at the end
      of a stream nobody is in such a hurry);
    * ``hurry() -> None``, called as soon as a ForceEndOfUtterance or EndOfStream arrives,
      while audio sent before it may still be waiting to be fed: work whose only use is
      before the end (a partial) can be dropped, so the end is answered sooner;
    * ``arriving(pcm: bytes) -> None``, called with each message's audio as soon as it is
      read, before it is fed (a :meth:`feed` may be running): a recogniser that sees a pause
      begin in it can drop work whose only use was before the pause, so the turn's end is
      answered sooner;
    * ``joins_backlog: bool``, true if the audio that came while a :meth:`feed` ran may be
      fed in one piece after it (see :func:`joins_backlog`); without it, each message's audio
      is fed on its own.
    """

    async def feed(self, pcm: bytes) -> StreamUpdate:
        """Add audio (mono s16le at :data:`ENGINE_SAMPLE_RATE`, even length) and report progress."""
        ...

    async def flush(self) -> StreamUpdate:
        """Make every word heard so far final (EndOfStream, and ForceEndOfUtterance).

        The recogniser stays usable: audio fed afterwards starts a new utterance, with times
        still counted from the first sample of the session.
        """
        ...

    async def aclose(self) -> None:
        """Release the decoder. Safe to call more than once."""
        ...


class Engine(Protocol):
    """A speech engine: whole-file recognition and per-session streaming recognition.

    An engine may also set ``max_streams`` (``int | None``): how many real-time streams the
    machine can decode at once without falling behind. It is optional, so engines written
    before it existed keep working; see :func:`stream_capacity`.
    """

    name: str
    """Short name used in logs, ``RecognitionStarted`` and benchmarks (e.g. ``"pocketsphinx"``)."""

    async def recognize_file(self, path: Path) -> list[EngineWord]:
        """Recognise a whole file of raw mono s16le PCM at :data:`ENGINE_SAMPLE_RATE`.

        The server converts uploads to that form on disk first, so files of any size are read
        in chunks, never held in memory whole.
        """
        ...

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> StreamingRecognizer:
        """Start a streaming recogniser.

        Args:
            max_delay: Seconds after which a word must be final even without a pause, as the
                service's ``max_delay`` promises.
            partials: Whether the session shows partials; an engine for which they cost extra
                work (Whisper) skips it when they are off.
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


class NothingToStart:
    """The ``async with`` of an engine that runs on nothing: it starts and stops nothing.

    An engine whose words are computed in the calling task (scripted, or a test's fake) mixes
    this in instead of writing an empty :meth:`Engine.__aenter__` and :meth:`Engine.__aexit__`.
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None  # whatever ended the block, there is nothing to release


def stream_capacity(engine: Engine) -> int | None:
    """How many live streams ``engine`` says the machine keeps up with; ``None``: no limit.

    A server that admitted more would not fail, it would fall further behind real time with
    every session and leave all of them late, so it refuses the extra ones instead (as the
    service does with ``quota_exceeded``). Engines without a ``max_streams`` attribute, or
    with ``None``, are taken to have no limit.

    Raises:
        ConfigurationError: ``max_streams`` is set but is not a positive integer.
    """
    capacity = getattr(engine, "max_streams", None)
    if capacity is None:
        return None
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity <= 0:
        raise ConfigurationError(
            f"engine {engine.name!r} has max_streams={capacity!r}; expected int > 0"
        )
    return capacity


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """What a real-time session asks of its engine streams (any of it may change mid-session)."""

    max_delay: float
    partials: bool = False
    """Whether the session shows partials (engines for which they cost work skip it if not)."""
    end_of_utterance_trigger: float = 0.0
    """The session's ``end_of_utterance_silence_trigger``; 0 when EndOfUtterance is off."""
    flexible_delay: bool = True
    """The session's ``max_delay_mode`` is "flexible" (its default): a word may wait past
    ``max_delay`` to be part of a whole entity (a number)."""


async def open_tuned(engine: Engine, settings: StreamSettings) -> StreamingRecognizer:
    """Open a stream on ``engine`` as a session's ``settings`` ask, the optional parts too."""
    stream = await engine.open_stream(max_delay=settings.max_delay, partials=settings.partials)
    _take_optional(stream, settings)
    return stream


def retune(stream: StreamingRecognizer, settings: StreamSettings) -> None:
    """Give ``stream`` the ``settings`` of a session reconfigured mid-way, if it takes them."""
    take: Callable[..., None] | None = getattr(stream, "retune", None)
    if take is not None:
        take(max_delay=settings.max_delay, partials=settings.partials)
    _take_optional(stream, settings)


def _take_optional(stream: StreamingRecognizer, settings: StreamSettings) -> None:
    """Give ``stream`` the settings only some recognisers take, through the methods it has."""
    end_utterances_after: Callable[[float], None] | None = getattr(
        stream, "end_utterances_after", None
    )
    if end_utterances_after is not None:
        end_utterances_after(settings.end_of_utterance_trigger)
    finish_entities: Callable[[bool], None] | None = getattr(stream, "finish_entities", None)
    if finish_entities is not None:
        finish_entities(settings.flexible_delay)


def joins_backlog(stream: StreamingRecognizer) -> bool:
    """Whether ``stream`` takes the audio that came while it was busy in one feed.

    A recogniser whose feeds take long (a decode) hears everything that has come, not only the
    next message's audio, and sees a pause in it at once. One that is quick to feed, such as a
    scripted engine in a protocol test, is better fed message by message: what it says then
    follows the client's chunks, not the server's timing.
    """
    return getattr(stream, "joins_backlog", False) is True


def hurry(stream: StreamingRecognizer) -> None:
    """Tell ``stream`` that an end is coming behind the audio it is given, if it listens."""
    told: Callable[[], None] | None = getattr(stream, "hurry", None)
    if told is not None:
        told()


def arriving(stream: StreamingRecognizer, pcm: bytes) -> None:
    """Show ``stream`` audio just read, before it is fed, if it listens."""
    told: Callable[[bytes], None] | None = getattr(stream, "arriving", None)
    if told is not None:
        told(pcm)


def force_end_of_utterance(stream: StreamingRecognizer) -> Awaitable[StreamUpdate]:
    """Answer ForceEndOfUtterance on ``stream``, as the server does.

    A recogniser's own ``force_end_of_utterance()`` where it has one (faster than its flush,
    at some cost in accuracy), else :meth:`~StreamingRecognizer.flush`. The server and the
    benchmarks both go through this, so what is measured is what a client gets.
    """
    force: Callable[[], Awaitable[StreamUpdate]] = getattr(
        stream, "force_end_of_utterance", stream.flush
    )
    return force()
