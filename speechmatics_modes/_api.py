"""The façade: ``transcribe()``, ``stream()`` and ``transcribe_sync()``.

One call for both APIs. The *source* decides the mode unless the caller forces one: finished
audio goes through batch, live audio through real-time, and both give back a
:class:`~speechmatics_modes.Transcript`. Options are validated and checked against the chosen
mode before any connection is made.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
from collections.abc import AsyncIterable, Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import BaseModel, ValidationError

from speechmatics_modes._channels import open_batch_audio, open_stream_audio, with_channels
from speechmatics_modes._config import (
    AudioFormat,
    BatchOptions,
    RealtimeOptions,
    TranscriptionOptions,
)
from speechmatics_modes._endpoint import endpoint
from speechmatics_modes._exceptions import (
    AudioSourceError,
    ConfigurationError,
    SpeechmaticsModesError,
    TranscriptionTimeout,
    innermost,
)
from speechmatics_modes._insights import SpeakersResult
from speechmatics_modes._lifetime import StackOwner
from speechmatics_modes._models import Mode, StreamEvent, Transcript
from speechmatics_modes._retry import RetryPolicy
from speechmatics_modes._settings import Settings
from speechmatics_modes._sources import Source, classify
from speechmatics_modes._stream._policy import RolloverPolicy, StreamMetrics

if TYPE_CHECKING:
    from speechmatics_modes._realtime import RealtimeSession
    from speechmatics_modes._stream._rolling import RollingStream

__all__ = [
    "AudioSource",
    "TranscriptStream",
    "run_to_end",
    "stream",
    "transcribe",
    "transcribe_sync",
]

logger = logging.getLogger(__name__)

AudioSource: TypeAlias = (
    "str | os.PathLike[str] | bytes | IO[bytes] | Iterable[bytes] | AsyncIterable[bytes]"
)
"""What ``transcribe`` accepts: a finished file (path, URL, bytes, file object) or live chunks."""

ModeName: TypeAlias = Mode | Literal["auto", "batch", "realtime"]
OptionsLike: TypeAlias = "TranscriptionOptions | Mapping[str, Any] | None"

_EVENT_BUFFER = 256
"""Events held for a caller who reads slowly, before the session pauses sending audio."""

M = TypeVar("M", bound=BaseModel)


async def transcribe(
    source: AudioSource,
    mode: ModeName = "auto",
    *,
    options: OptionsLike = None,
    batch_options: BatchOptions | Mapping[str, Any] | None = None,
    audio_format: AudioFormat | None = None,
    settings: Settings | None = None,
    timeout: float | None = None,
    pace: float | None = None,
    rollover: RolloverPolicy | None = None,
    retry: RetryPolicy | None = None,
    realtime_options: RealtimeOptions | Mapping[str, Any] | None = None,
) -> Transcript:
    """Transcribe ``source``: batch for a finished file, real-time for a live stream.

    Args:
        source: A path, ``http(s)://`` URL (fetched by the service, not by us), ``bytes`` or
            binary file object (batch), or a sync or async iterable of audio chunks, or a
            :class:`Microphone` (real-time), or a dict of channel name to any of those (one
            channel each: real-time, or with ``mode="batch"`` one multichannel file).
        mode: ``"auto"`` picks by the kind of source (the choice is on ``transcript.mode`` and
            logged at debug level); ``"batch"`` or ``"realtime"`` force one. A forced real-time
            file is read as WAV and streamed; a forced batch stream is spooled to a temporary
            file and uploaded.
        options: How to transcribe; a field the chosen mode lacks is a
            :class:`ConfigurationError`, raised before any connection.
        batch_options: Job features only batch offers.
        audio_format: What raw PCM chunks (or a headerless file) contain; defaults to 16 kHz
            16-bit mono for iterables. WAV files describe themselves.
        settings: Where to connect and with which key; from the environment when omitted.
        timeout: Seconds for the whole call; ``None`` waits as long as it takes.
        pace: Real-time from a file only: send at ``pace`` times real time (1.0 simulates a live
            feed); ``None`` sends as fast as the service acknowledges.
        rollover: Real-time only: carry the transcription across session ends (limits,
            drops); see :func:`stream`.
        retry: Batch only: how requests ride out transient failures and how often the job is
            polled; :class:`RetryPolicy` defaults when omitted.
        realtime_options: Session features only real-time offers (translation, audio
            events); their results land in ``transcript.translations`` and ``audio_events``.

    Raises:
        AudioSourceError: the source cannot be transcribed (the message says why).
        ConfigurationError: options that cannot work, or that the chosen mode does not have.
        AuthenticationError: no key, or the key was refused.
        JobFailedError: the batch job was rejected; ``reasons`` holds the service's words.
        ServerError, SessionLimitError, TransportError: the service or the connection failed.
        TranscriptionTimeout: ``timeout`` passed; ``partial_transcript`` holds what was done.
    """
    audio = classify(source)
    chosen = _choose_mode(audio, mode)
    transcription = _validated(options, TranscriptionOptions, "options")
    transcription.check_mode("batch" if chosen is Mode.BATCH else "realtime")
    _check_timeout(timeout)
    _check_pace(pace)
    if chosen is Mode.REALTIME:
        if batch_options is not None:
            raise _only_in(Mode.BATCH, "batch_options only apply", "them")
        if retry is not None:
            raise _only_in(Mode.BATCH, "retry only applies", "it")
        return await run_to_end(
            TranscriptStream(
                audio,
                options=transcription,
                audio_format=audio_format,
                settings=settings,
                timeout=timeout,
                pace=pace,
                rollover=rollover,
                realtime_options=_validated(realtime_options, RealtimeOptions, "realtime_options"),
            )
        )
    if rollover is not None:
        raise _only_in(Mode.REALTIME, "rollover only applies", "it")
    if realtime_options is not None:
        raise _only_in(Mode.REALTIME, "realtime_options only apply", "them")
    job = _validated(batch_options, BatchOptions, "batch_options")
    if audio.kind == "channels":  # uploaded as one multichannel file, split again by the service
        transcription = with_channels(transcription, tuple(audio.value))
    from speechmatics_modes._batch import (
        run_batch_job,  # here, so that a real-time caller never loads the batch SDK
    )

    try:
        with anyio.fail_after(timeout):
            async with (
                endpoint(settings) as resolved,
                open_batch_audio(audio, audio_format) as upload,
            ):
                return await run_batch_job(
                    upload, options=transcription, batch_options=job, settings=resolved, retry=retry
                )
    except TimeoutError as exc:
        if isinstance(exc, SpeechmaticsModesError):
            raise
        raise TranscriptionTimeout(
            f"the batch transcription did not finish within {timeout:g} s (a job already "
            "submitted was deleted)"
        ) from None


def stream(
    source: AudioSource,
    *,
    options: OptionsLike = None,
    audio_format: AudioFormat | None = None,
    settings: Settings | None = None,
    timeout: float | None = None,
    pace: float | None = None,
    rollover: RolloverPolicy | None = None,
    realtime_options: RealtimeOptions | Mapping[str, Any] | None = None,
) -> TranscriptStream:
    """Transcribe audio in real time, yielding events as they arrive.

    Use it as ``async with stream(source) as events: async for event in events: ...``. Events
    are :class:`Partial`, :class:`Final`, :class:`EndOfUtterance`, :class:`ServerWarning` and
    :class:`SessionInfo` (with ``realtime_options``, also translations and audio events);
    afterwards ``events.transcript`` holds every final word. While it runs,
    :meth:`TranscriptStream.force_end_of_utterance`, :meth:`~TranscriptStream.update` and
    :meth:`~TranscriptStream.get_speakers` steer the session.

    A caller who stops reading pauses the session (it stops sending audio once
    ``256`` events wait unread and the service's acknowledgements stop being processed), so
    memory stays bounded; a live :class:`Microphone` then drops its oldest audio and counts it.

    Args:
        source: Anything :func:`transcribe` accepts; files are streamed from their WAV data.
        options: How to transcribe (real-time fields such as ``enable_partials`` apply here).
        audio_format: What raw chunks contain; 16 kHz 16-bit mono when omitted.
        settings: Where to connect; from the environment when omitted.
        timeout: Seconds for the whole stream; ``None`` for no limit (a live feed).
        pace: For files: send at ``pace`` times real time; ``None`` as fast as acknowledged.
        rollover: Keep one stream across many sessions: hand over before the service's
            session limit, close while the source is quiet, reconnect after drops, all on one
            clock and without duplicated words (see docs/streaming.md). ``None``: one session,
            which ends the stream when it ends.
        realtime_options: Translation (:class:`FinalTranslation` events) and audio events
            (:class:`AudioEventStarted`/:class:`AudioEventEnded`), asked of every session.
    """
    transcription = _validated(options, TranscriptionOptions, "options")
    transcription.check_mode("realtime")
    return TranscriptStream(
        classify(source),
        options=transcription,
        audio_format=audio_format,
        settings=settings,
        timeout=timeout,
        pace=pace,
        rollover=rollover,
        realtime_options=_validated(realtime_options, RealtimeOptions, "realtime_options"),
    )


class TranscriptStream(StackOwner):
    """A running real-time transcription: an async iterator of events, then a transcript.

    Returned by :func:`stream`, which has checked the options for real time; the session starts
    on ``async with`` and is closed (every task and socket) when the block ends, however it ends.
    """

    def __init__(
        self,
        source: Source,
        *,
        options: TranscriptionOptions,
        audio_format: AudioFormat | None,
        settings: Settings | None,
        timeout: float | None,
        pace: float | None,
        rollover: RolloverPolicy | None = None,
        realtime_options: RealtimeOptions | None = None,
    ) -> None:
        _check_timeout(timeout)
        _check_pace(pace)
        self._source = source
        self._options = options
        self._audio_format = audio_format
        self._settings = settings
        self._timeout = timeout
        self._pace = pace
        self._rollover = rollover
        self._session: RealtimeSession | RollingStream | None = None
        self._deadline = math.inf
        self._features = realtime_options
        self._events: MemoryObjectReceiveStream[StreamEvent] | None = None
        self._error: SpeechmaticsModesError | None = None

    async def _acquire(self, stack: AsyncExitStack) -> None:
        self._deadline = anyio.current_time() + (self._timeout or math.inf)
        # Outside the deadline's scope: a local endpoint starts a server whose task group
        # outlives this method, and a cancel scope cannot be left with it still open.
        resolved = await stack.enter_async_context(endpoint(self._settings))
        try:
            # Opening counts against the timeout too: reading a WAV header from a caller's
            # pipe can wait for ever.
            with anyio.fail_at(self._deadline):
                live = await stack.enter_async_context(
                    open_stream_audio(
                        self._source, self._audio_format, self._options, pace=self._pace
                    )
                )
        except TimeoutError as exc:
            if isinstance(exc, SpeechmaticsModesError):
                raise
            raise self._timed_out() from None
        if live.channels is not None:
            if self._rollover is not None:
                raise ConfigurationError(
                    "rollover cannot carry several channels: its replay buffer, each session's "
                    "place and its deduplication keep one audio clock, and a multichannel "
                    "session has one per channel. Stream the channels in one session without "
                    "rollover, or give each channel its own stream(..., rollover=...) (see "
                    "'Several channels and rollover' in docs/streaming.md)"
                )
            self._options = with_channels(self._options, live.channels)
        send, self._events = anyio.create_memory_object_stream[StreamEvent](_EVENT_BUFFER)
        stack.callback(self._events.close)
        self._session = self._new_session(resolved, live.audio_format, send)
        group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(group.cancel_scope.cancel)
        group.start_soon(self._run, send, live.chunks)

    def _new_session(
        self,
        settings: Settings,
        audio_format: AudioFormat,
        send: MemoryObjectSendStream[StreamEvent],
    ) -> RealtimeSession | RollingStream:
        # Imported here, so that a batch caller never loads the real-time SDK.
        from speechmatics_modes._realtime import RealtimeSession
        from speechmatics_modes._stream._rolling import RollingStream

        if self._rollover is None:
            return RealtimeSession(
                settings=settings,
                options=self._options,
                audio_format=audio_format,
                events=send,
                features=self._features,
            )
        return RollingStream(
            settings=settings,
            options=self._options,
            audio_format=audio_format,
            events=send,
            policy=self._rollover,
            live=self._source.natural_mode is Mode.REALTIME,
            features=self._features,
        )

    async def _run(self, send: MemoryObjectSendStream[StreamEvent], chunks: Any) -> None:
        assert self._session is not None
        async with send:
            try:
                with anyio.fail_at(self._deadline):
                    await self._session.run(chunks)
            except SpeechmaticsModesError as exc:
                self._error = exc
            except TimeoutError:
                self._error = self._timed_out()
                self._error.partial_transcript = self._session.transcript()

    def _timed_out(self) -> TranscriptionTimeout:
        return TranscriptionTimeout(
            f"the real-time transcription did not finish within {self._timeout:g} s"
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc, tb)
        except BaseException as closing:
            # What a task inside raised (the caller's own SystemExit from their source, say)
            # arrives as itself, not wrapped in the exception groups of our task groups.
            inner = innermost(closing)
            if inner is closing:
                raise
            raise inner from None

    def __aiter__(self) -> TranscriptStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._events is None:
            raise RuntimeError("iterate inside 'async with stream(...) as events'")
        try:
            return await self._events.receive()
        except anyio.EndOfStream:
            if self._error is not None:
                raise self._error from self._error.__cause__
            raise StopAsyncIteration from None

    async def force_end_of_utterance(self) -> None:
        """Have the service finalise what it has heard so far, without waiting for a pause.

        For a push-to-talk button or an agent that knows the user finished: the words come
        as a :class:`Final` with ``forced=True`` (then an :class:`EndOfUtterance`) among the
        events. With ``rollover`` it goes to the session that holds the audio given so far:
        a handover waits while it is on its way, and after a drop it waits until the new
        session has been sent the replayed audio.

        Raises:
            TransportError: No session is running (before it started, after it ended, or
                while a rolling stream is closed for idleness).
        """
        await self._running().force_end_of_utterance()

    async def update(self, options: TranscriptionOptions | Mapping[str, Any]) -> None:
        """Change settings mid-stream (``SetRecognitionConfig``), e.g. ``{"max_delay": 2.0}``.

        Only what the service lets a session change can be given: ``max_delay``,
        ``max_delay_mode``, ``enable_partials``, ``conversation_config`` and
        ``audio_filtering_config`` (``language`` only to its own value). A session still
        starting gets the change as soon as it has started. With ``rollover``, the change
        also reaches a session being opened (a handover's next one, a reconnection's), and
        every later session starts with it.

        Args:
            options: The fields to change; of a :class:`TranscriptionOptions`, those set.

        Raises:
            ConfigurationError: A field that cannot change mid-session, or a bad value;
                raised before anything is sent.
            TransportError: The session has ended (without ``rollover``).
        """
        session = self._running()
        changes = (
            {name: getattr(options, name) for name in options.model_fields_set}
            if isinstance(options, TranscriptionOptions)
            else dict(options)
        )
        updated = session.options.updated_mid_session(changes)
        await session.update(updated, changes)

    async def get_speakers(self, *, timeout: float = 10.0) -> SpeakersResult:
        """The speakers heard so far and their identifiers (``GetSpeakers``).

        Enrol them in a later stream by giving each a name in
        ``speaker_diarization_config.speakers``. With ``rollover`` the answer holds every
        session's speakers, earliest first, each with its ``session_id``: labels (``S1``...)
        start afresh with each session, so they are neither merged nor relabelled.

        Raises:
            TransportError: No session is running, or it ended before answering.
            TranscriptionTimeout: No answer within ``timeout`` seconds.
        """
        return await self._running().get_speakers(timeout)

    def _running(self) -> RealtimeSession | RollingStream:
        if self._session is None:
            raise RuntimeError("the stream has not started: use 'async with stream(...)'")
        return self._session

    @property
    def metrics(self) -> StreamMetrics | None:
        """Sessions, handovers, reconnections, replayed audio and gaps, with ``rollover``."""
        from speechmatics_modes._stream._rolling import (
            RollingStream,  # loaded already if a stream rolls over
        )

        return self._session.metrics if isinstance(self._session, RollingStream) else None

    @property
    def transcript(self) -> Transcript:
        """Every final word so far; complete once iteration has ended."""
        if self._session is None:
            raise RuntimeError("the stream has not started: use 'async with stream(...)'")
        return self._session.transcript()


async def run_to_end(events: TranscriptStream) -> Transcript:
    """Run a real-time transcription whose options were checked to its end: its transcript."""
    async with events:
        async for _ in events:
            pass
    return events.transcript


def transcribe_sync(source: AudioSource, mode: ModeName = "auto", **kwargs: Any) -> Transcript:
    """:func:`transcribe` for synchronous callers (scripts, notebooks without await).

    Raises:
        ConfigurationError: called from inside a running event loop, where it would block that
            loop; ``await transcribe(...)`` there instead.
        Everything :func:`transcribe` raises.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(functools.partial(transcribe, source, mode, **kwargs))
    raise ConfigurationError(
        "transcribe_sync() was called inside a running event loop, which it would block: "
        "use 'await transcribe(...)' there"
    )


def _choose_mode(source: Source, mode: ModeName) -> Mode:
    try:
        requested = Mode(mode)
    except ValueError:
        raise ConfigurationError(
            f"mode must be 'auto', 'batch' or 'realtime', got {mode!r}"
        ) from None
    chosen = source.natural_mode if requested is Mode.AUTO else requested
    if chosen is Mode.BATCH and source.never_ends:
        raise AudioSourceError(
            "a Microphone never finishes, so it cannot be uploaded as a batch job: "
            "use mode='realtime' (or 'auto')"
        )
    logger.debug(
        "mode=%s: transcribing %s in %s mode",
        requested.value,
        type(source.value).__name__,
        chosen.value,
    )
    return chosen


def _only_in(mode: Mode, what: str, pronoun: str) -> ConfigurationError:
    """An option of the other mode than the one chosen: say which, and how to get it."""
    adjective = {Mode.BATCH: "batch", Mode.REALTIME: "real-time"}
    manner = {Mode.BATCH: "batch", Mode.REALTIME: "real time"}
    chosen = Mode.REALTIME if mode is Mode.BATCH else Mode.BATCH
    return ConfigurationError(
        f"{what} to {adjective[mode]} transcription, and this source is being transcribed in "
        f"{manner[chosen]}: remove {pronoun}, or use mode={mode.value!r}"
    )


def _validated(value: M | Mapping[str, Any] | None, model: type[M], name: str) -> M:
    if value is None:
        return model()
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid {name}: {exc}") from exc


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and not (_is_number(timeout) and timeout > 0):
        raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")


def _check_pace(pace: float | None) -> None:
    if pace is not None and not (_is_number(pace) and 0 < pace < math.inf):
        raise ConfigurationError(
            f"pace must be a positive number (1.0 sends in real time), or None, got {pace!r}"
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
