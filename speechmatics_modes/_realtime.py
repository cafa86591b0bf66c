"""The real-time backend: the only module that imports ``speechmatics.rt``.

Everything real-time-specific that touches the SDK lives here: translating our options into the
SDK's dataclasses, running one session (audio out, typed events in), and translating the SDK's
exceptions and the service's ``Error`` messages into ours (:data:`REALTIME_ERRORS`).

What the raw SDK leaves to its caller, this module does: an ``Error`` after
``RecognitionStarted`` raises (the SDK only logs it); a dropped connection raises instead of
ending quietly; a server that never sends ``EndOfTranscript`` hits a timeout instead of hanging;
and audio is sent no faster than the service acknowledges it.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import anyio
import speechmatics.rt as sm
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from speechmatics_modes._config import AudioFormat, RealtimeOptions, TranscriptionOptions
from speechmatics_modes._exceptions import (
    AUDIO_SENT_WAS_TRANSCRIBED,
    AudioSourceError,
    AuthenticationError,
    ConfigurationError,
    ErrorFactory,
    ServerError,
    SessionLimitError,
    SpeechmaticsModesError,
    TranscriptionTimeout,
    TransportError,
    describe,
    source_failed,
    translated,
)
from speechmatics_modes._insights import SpeakersResult
from speechmatics_modes._models import Final, SessionInfo, StreamEvent, Transcript, stream_event
from speechmatics_modes._sdk_logging import tend_sdk_loggers
from speechmatics_modes._settings import Settings

__all__ = [
    "REALTIME_ERRORS",
    "RealtimeSession",
    "realtime_audio_format",
    "realtime_transcription_config",
]

logger = logging.getLogger(__name__)


def realtime_transcription_config(options: TranscriptionOptions) -> sm.TranscriptionConfig:
    """Build the real-time SDK's ``TranscriptionConfig`` from options checked for real time.

    The caller checks (:meth:`TranscriptionOptions.check_mode`) once, at the public door: a
    rolling stream translates the same options for every session it opens.
    """
    wire = options.to_wire()
    kwargs: dict[str, Any] = dict(wire)
    if "model" in wire:
        kwargs["model"] = sm.Model(wire["model"])
    if "conversation_config" in wire:
        kwargs["conversation_config"] = sm.ConversationConfig(**wire["conversation_config"])
    if "speaker_diarization_config" in wire:
        kwargs["speaker_diarization_config"] = _speaker_diarization(
            wire["speaker_diarization_config"]
        )
    return sm.TranscriptionConfig(**kwargs)


def realtime_session_features(
    features: RealtimeOptions,
) -> tuple[sm.TranslationConfig | None, sm.AudioEventsConfig | None]:
    """The real-time SDK's ``TranslationConfig`` and ``AudioEventsConfig``, if asked for."""
    translation = features.translation_config
    types = features.audio_event_types
    return (
        None if translation is None else sm.TranslationConfig(**translation.to_wire()),
        None if types is None else sm.AudioEventsConfig(types=list(types) or None),
    )


def _speaker_diarization(wire: dict[str, Any]) -> sm.SpeakerDiarizationConfig:
    speakers = wire.get("speakers")
    return sm.SpeakerDiarizationConfig(
        **{
            **wire,
            "speakers": None
            if speakers is None
            else [sm.SpeakerIdentifier(**speaker) for speaker in speakers],
        }
    )


def realtime_audio_format(audio: AudioFormat) -> sm.AudioFormat:
    """Build the real-time SDK's ``AudioFormat`` (always raw PCM: files describe themselves)."""
    return sm.AudioFormat(
        encoding=sm.AudioEncoding(audio.encoding),
        sample_rate=audio.sample_rate,
        chunk_size=audio.chunk_size,
    )


_HANDSHAKE_STATUS = re.compile(r"HTTP (\d{3})")


def _from_connection_error(exc: BaseException) -> SpeechmaticsModesError:
    """The SDK reports a refused key as a ConnectionError; we say what it is."""
    text = describe(exc)
    match = _HANDSHAKE_STATUS.search(text)
    if match and match.group(1) in ("401", "403"):
        return AuthenticationError(
            f"the real-time service refused the API key (HTTP {match.group(1)} at the "
            "WebSocket handshake): check SPEECHMATICS_API_KEY"
        )
    return TransportError(text)


REALTIME_ERRORS: dict[type[BaseException], ErrorFactory] = {
    sm.AudioError: lambda exc: AudioSourceError(describe(exc)),
    sm.AuthenticationError: lambda exc: AuthenticationError(describe(exc)),
    sm.ConfigurationError: lambda exc: ConfigurationError(describe(exc)),
    sm.ConnectionError: _from_connection_error,
    sm.EndOfTranscriptError: lambda exc: ServerError(describe(exc)),
    sm.SessionError: lambda exc: ServerError(describe(exc)),
    # Handshake or RecognitionStarted timeouts: the connection, not the caller's deadline.
    sm.TimeoutError: lambda exc: TransportError(describe(exc)),
    sm.TranscriptionError: lambda exc: ServerError(describe(exc)),
    sm.TransportError: lambda exc: TransportError(describe(exc)),
}
"""Every exception class ``speechmatics.rt`` exports, and the error of ours it becomes."""


def _error_from_message(message: dict[str, Any]) -> SpeechmaticsModesError:
    """Our error for the service's ``Error`` message, by its ``type``."""
    error_type = str(message.get("type", "unknown_error"))
    reason = str(message.get("reason", "")) or error_type
    text = f"the real-time service ended the session: {error_type}: {reason}"
    if error_type == "not_authorised":
        return AuthenticationError(text)
    if error_type in _SESSION_LIMIT_TYPES:
        return SessionLimitError(
            text, error_type=error_type, retryable=error_type in _RETRYABLE_TYPES
        )
    return ServerError(text, error_type=error_type, retryable=error_type in _RETRYABLE_TYPES)


_SESSION_LIMIT_TYPES = frozenset(
    {"quota_exceeded", "session_timeout", "idle_timeout", "timelimit_exceeded"}
)
_RETRYABLE_TYPES = frozenset(
    {"quota_exceeded", "session_timeout", "idle_timeout", "job_error", "internal_error"}
)
"""Types after which a new session may well succeed (the service says retry after 5-10 s)."""

_SESSION_MESSAGES = (
    sm.ServerMessageType.RECOGNITION_STARTED,
    sm.ServerMessageType.AUDIO_ADDED,
    sm.ServerMessageType.CHANNEL_AUDIO_ADDED,
    sm.ServerMessageType.ADD_PARTIAL_TRANSCRIPT,
    sm.ServerMessageType.ADD_TRANSCRIPT,
    sm.ServerMessageType.END_OF_UTTERANCE,
    sm.ServerMessageType.WARNING,
    sm.ServerMessageType.ERROR,
    sm.ServerMessageType.END_OF_TRANSCRIPT,
    sm.ServerMessageType.ADD_TRANSLATION,
    sm.ServerMessageType.ADD_PARTIAL_TRANSLATION,
    sm.ServerMessageType.AUDIO_EVENT_STARTED,
    sm.ServerMessageType.AUDIO_EVENT_ENDED,
    sm.ServerMessageType.SPEAKERS_RESULT,
)
Chunk = bytes | tuple[str, bytes]
"""Audio to send: raw bytes, or (channel label, bytes) in a multichannel session."""


async def _send_chunk(client: sm.AsyncClient, channel: str | None, chunk: bytes) -> None:
    """One chunk: a binary frame, or in a multichannel session an ``AddChannelAudio``.

    The SDK's ``AsyncMultiChannelClient`` would read whole files round-robin and stop at the
    first to end, and returns before ``EndOfTranscript``; the messages themselves are
    plain JSON, sent here on the one client, with our flow control.
    """
    if channel is None:
        await client.send_audio(chunk)
        return
    data = base64.b64encode(chunk).decode("ascii")
    await client.send_message({"message": "AddChannelAudio", "channel": channel, "data": data})


_START_WAIT_SECONDS = 15.0
"""How long a control waits for the session to start (the SDK's handshake takes up to 15 s)."""
_KEPT_MESSAGES = frozenset(
    {"AddTranscript", "AddTranslation", "AudioEventStarted", "AudioEventEnded", "SpeakersResult"}
)
"""What the transcript is built from, besides ``RecognitionStarted``."""


@dataclass
class _Uncompressed(sm.ConnectionConfig):
    """The SDK's connection settings, without ``permessage-deflate``.

    The SDK lets ``websockets`` offer compression, and raw PCM hardly compresses: deflating
    every audio frame was most of the client's CPU and a good part of the server's (see
    docs/performance.md). Not offering an extension is always allowed (RFC 7692), so every
    server accepts the connection. The SDK hands ``to_dict()`` to ``websockets.connect`` as
    keywords; ``tests/test_sdk_internals.py`` fails the day it stops doing so.
    """

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "compression": None}


@functools.cache
def _connection_config() -> _Uncompressed:
    """One for every session: each builds a TLS context, which reads the CA store."""
    return _Uncompressed()


def _break_cycles(client: sm.AsyncClient) -> None:
    """Let a closed client, and the session whose handlers it holds, go by reference counting.

    The client holds its handlers (bound methods of itself and of our session) and a lambda
    closed over itself (``_build_transport``, private: the gc tests in
    tests/test_realtime_flow.py fail if it moves). Left alone, these cycles keep the client,
    our session and every final it parsed until a full collection, which in a long stream of
    sessions is rare: memory rose in a sawtooth.
    """
    client.remove_all_listeners()
    vars(client).pop("_build_transport", None)


class RealtimeSession:
    """One real-time session: sends audio, turns what comes back into events and a transcript.

    Each server message is handled where the SDK delivers it: an acknowledgement updates the
    window, a message becomes its event once (the transcript is built from the same events),
    and the event goes straight into ``events``.

    Flow control: at most ``max_in_flight_seconds`` of audio is sent ahead of the service's
    ``AudioAdded`` acknowledgements, so a fast source (a file read at full speed) never floods
    the socket. Once the window is full the sender sleeps until half of it is acknowledged,
    then sends a burst, rather than waking for every acknowledgement. A caller who stops
    reading fills ``events``; what does not fit waits in order in a backlog, and no audio is
    sent until the caller has taken it, so memory stays bounded by the window.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        options: TranscriptionOptions,
        audio_format: AudioFormat,
        events: MemoryObjectSendStream[StreamEvent] | None = None,
        features: RealtimeOptions | None = None,
        max_in_flight_seconds: float = 10.0,
        end_of_transcript_timeout: float = 30.0,
        final_speakers: bool = False,
    ) -> None:
        self._settings = settings
        self._options = options
        self._unsent: set[str] = set()
        """Fields :meth:`update` changed before the session started: sent once it has."""
        self._final_speakers = final_speakers
        self._config = realtime_transcription_config(options)
        self._translation, self._audio_events = realtime_session_features(
            features or RealtimeOptions()
        )
        self._audio_format = audio_format
        self._events = events
        self._window_bytes = max(
            audio_format.chunk_size, int(max_in_flight_seconds * audio_format.bytes_per_second)
        )
        self._low_water = self._window_bytes // 2
        self._end_timeout = end_of_transcript_timeout
        self._sent_sizes: dict[str | None, deque[int]] = {}
        """Sizes of the chunks not yet acknowledged, per channel (``None``: single channel)."""
        self._bytes_sent = 0
        self._in_flight = 0
        self._room = anyio.Event()
        """Set when a waiting sender may go on: window half empty, backlog taken, or the end."""
        self._backlog: deque[StreamEvent] = deque()
        self._group: TaskGroup | None = None
        self._flushing = False
        self._kept: list[StreamEvent] = []
        """The events the transcript is built from, as parsed once for the caller."""
        self._started: dict[str, Any] | None = None
        self._client: sm.AsyncClient | None = None
        self._settled = anyio.Event()
        """Set once the session runs (``_client`` is set) or is over: controls may act."""
        self._speakers_reply: anyio.Event | None = None
        self._speakers: SpeakersResult | None = None
        self.started = anyio.Event()
        """Set once the service confirmed the session (``RecognitionStarted``)."""
        self._error: SpeechmaticsModesError | None = None
        self._ended = False
        self._conversing = anyio.CancelScope()
        """Sending audio and ending the stream: cancelled when the connection closes early."""

    @property
    def session_id(self) -> str | None:
        """The service's id for the session, once it started."""
        return None if self._started is None else self._started.get("id")

    def transcript(self) -> Transcript:
        """Every final so far, as a transcript (complete once :meth:`run` returned)."""
        started = [self._started] if self._started is not None else []
        return Transcript._from_realtime_events(self._kept, recognition_started=started)

    async def run(self, chunks: AsyncIterator[Chunk]) -> None:
        """Start the session, send every chunk, end the stream and wait for the last final.

        Raises:
            AuthenticationError, ServerError, SessionLimitError, TransportError: as the
                service or the connection decided; the finals received so far stay available
                through :meth:`transcript`.
            TranscriptionTimeout: no ``EndOfTranscript`` arrived in time after the audio ended.
        """
        client = sm.AsyncClient(
            _auth(self._settings), url=self._settings.rt_url, conn_config=_connection_config()
        )
        tend_sdk_loggers("speechmatics.rt")
        for message_type in _SESSION_MESSAGES:
            client.on(message_type, self._receive)
        try:
            await self._start(client)
            await self._after_start(client)
            self._client = client
            self._settled.set()
            async with anyio.create_task_group() as group:
                self._group = group  # for the backlog's flusher, which the group waits for
                self._start_flushing()
                watching = anyio.CancelScope()
                group.start_soon(self._watch_connection, client, watching)
                try:
                    with self._conversing:
                        await self._converse(client, chunks)
                finally:
                    watching.cancel()  # the conversation is over, whatever the connection does
        finally:
            self._client = None
            self._group = None
            self._settled.set()
            if self._speakers_reply is not None:
                self._speakers_reply.set()  # no reply is coming: get_speakers() gives up
            with anyio.CancelScope(shield=True):
                await client.close()
            _break_cycles(client)
        if not self._ended and self._error is None:
            self._error = TransportError(
                "the real-time connection closed before EndOfTranscript: the last words may "
                "be missing"
            )
        if self._error is not None:
            self._error.partial_transcript = self.transcript()
            raise self._handed_over_error()

    def _handed_over_error(self) -> SpeechmaticsModesError:
        """The error :meth:`run` raises, which the session no longer keeps.

        Raised, the error's traceback holds the frames it left, and they hold the session
        (``self``): kept here too, it would close a cycle that only a full collection frees,
        and a failed session, its SDK client and every final it parsed would outlive it (in a
        rolling stream, until the next collection). Raised and not kept, a failed session goes
        by reference counting alone, as one that completed does.
        """
        error, self._error = self._error, None
        assert error is not None
        return error

    async def _start(self, client: sm.AsyncClient) -> None:
        """``StartRecognition``; a refusal raises the error its ``Error`` message names.

        The SDK turns an ``Error`` before ``RecognitionStarted`` into a bare
        ``TranscriptionError`` carrying only the reason; the message itself (its ``type``:
        ``quota_exceeded`` is retryable, ``invalid_config`` is not) reached our handler first.
        """
        try:
            with translated(REALTIME_ERRORS):
                await client.start_session(
                    transcription_config=self._config,
                    audio_format=realtime_audio_format(self._audio_format),
                    translation_config=self._translation,
                    audio_events_config=self._audio_events,
                )
        except SpeechmaticsModesError as exc:
            if self._error is None:  # no Error message came, or none we could read
                raise
            raise self._handed_over_error() from exc

    async def _after_start(self, client: sm.AsyncClient) -> None:
        """What must reach the session before anything else.

        Settings changed while it was starting (its ``StartRecognition`` carried the old
        ones), and with ``final_speakers`` a ``GetSpeakers`` answered at the end (a rolling
        stream keeps every session's speakers). The changes go last: an :meth:`update`
        made while anything here is being sent still finds the session not yet running and
        is kept in ``_unsent``, which is read until it stays empty.
        """
        if self._final_speakers:
            with translated(REALTIME_ERRORS):
                await client.send_message({"message": "GetSpeakers", "final": True})
        while self._unsent:
            changes, self._unsent = self._unsent, set()
            await self._set_config(client, changes)

    async def _converse(self, client: sm.AsyncClient, chunks: AsyncIterator[Chunk]) -> None:
        """Send the audio and end the stream, recording (not raising) what goes wrong.

        Errors are kept rather than raised so they leave the task group as themselves, not
        wrapped in an exception group. When the caller's source fails, the audio already sent
        is still finished properly, so its finals are kept.
        """
        source_failure: Exception | None = None
        try:
            try:
                await self._send_audio(client, chunks)
            except SpeechmaticsModesError:
                raise
            except Exception as exc:
                source_failure = exc
            if source_failure is None and self._bytes_sent == 0 and not self._ended:
                raise AudioSourceError("the audio stream was empty: there is nothing to transcribe")
            await self._finish(client)
        except SpeechmaticsModesError as exc:
            self._error = self._error or exc
        finally:
            if source_failure is not None:
                self._source_error(source_failure)  # the cause of whatever followed it

    def _source_error(self, exc: Exception) -> None:
        self._error = source_failed(exc, AUDIO_SENT_WAS_TRANSCRIBED)

    async def _send_audio(self, client: sm.AsyncClient, chunks: AsyncIterator[Chunk]) -> None:
        async for item in chunks:
            channel, chunk = item if isinstance(item, tuple) else (None, item)
            while self._must_wait(len(chunk)):
                await self._wait_for_room()  # an Error or a drop ends the wait
            if self._error is not None or self._ended:
                return
            try:
                with translated(REALTIME_ERRORS):
                    await _send_chunk(client, channel, chunk)
            except TransportError:
                if self._error is None:
                    self._error = TransportError(
                        "the real-time connection closed while audio was still being sent"
                    )
                return
            self._sent_sizes.setdefault(channel, deque()).append(len(chunk))
            self._in_flight += len(chunk)
            self._bytes_sent += len(chunk)

    def _must_wait(self, size: int) -> bool:
        if self._error is not None or self._ended:
            return False
        window_full = bool(self._in_flight) and self._in_flight + size > self._window_bytes
        return window_full or bool(self._backlog)

    async def _wait_for_room(self) -> None:
        """Wait for the low-water mark, the backlog to clear, an error or the end.

        A dropped connection ends the whole conversation (:meth:`_watch_connection`).
        """
        self._room = anyio.Event()
        await self._room.wait()

    async def _watch_connection(self, client: sm.AsyncClient, watching: anyio.CancelScope) -> None:
        """End the conversation as soon as the connection closes before ``EndOfTranscript``.

        Nothing else would notice while no audio is being sent (a paused source, a full
        window): the session would wait for the source's next chunk, or for acknowledgements
        that never come, and a rolling stream would reconnect only then. ``_closed_evt`` is
        the SDK's private flag; the drop tests in tests/test_realtime_flow.py and
        tests/test_rolling_stream.py fail if it moves. :meth:`run` cancels ``watching`` (which
        may happen before this task enters it) when the conversation is over.
        """
        with watching:
            await client._closed_evt.wait()
            if not self._ended:
                self._fail(
                    TransportError(
                        "the real-time connection closed before EndOfTranscript: the last "
                        "words may be missing"
                    )
                )
                self._ended = True
                self._conversing.cancel()

    async def _finish(self, client: sm.AsyncClient) -> None:
        """Send EndOfStream and wait until the service has sent its last final."""
        if self._error is not None or self._ended:
            return
        try:
            with anyio.fail_after(self._end_timeout), translated(REALTIME_ERRORS):
                await client.stop_session()
        except TimeoutError:
            raise TranscriptionTimeout(
                f"the real-time service sent no EndOfTranscript within {self._end_timeout:g} s "
                "of the end of the audio"
            ) from None
        except TransportError:
            pass  # the connection ended first; run() tells whether the session completed

    # What the SDK's receive loop calls, once per message ----------------------------------

    def _receive(self, message: dict[str, Any]) -> None:
        """Handle one server message where the SDK delivers it.

        The SDK only logs a handler's exception, so ours are recorded and :meth:`run` raises.
        """
        try:
            self._handle(message)
        except SpeechmaticsModesError as exc:  # a malformed message from the service
            self._fail(exc)
        except Exception as exc:
            error = ServerError(
                f"could not handle the service's {message.get('message')} message: {describe(exc)}"
            )
            error.__cause__ = exc
            self._fail(error)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("message")
        if kind in ("AudioAdded", "ChannelAudioAdded"):
            self._acknowledge(message.get("channel"))
            return
        if kind == "Error":
            self._fail(_error_from_message(message))
            return
        if kind == "EndOfTranscript":
            self._ended = True
            self._room.set()
            return
        event = stream_event(message)
        if event is None:
            return
        if kind in _KEPT_MESSAGES or isinstance(event, SessionInfo):
            self._kept.append(event)
        if isinstance(event, SessionInfo):
            self._started = message
            self.started.set()
        elif isinstance(event, SpeakersResult) and self._speakers_reply is not None:
            self._speakers = event
            self._speakers_reply.set()
        elif isinstance(event, Final) and not event.words and not event.forced:
            return  # empty, it carries nothing, unless it answers a forced end
        self._deliver(event)

    def _acknowledge(self, channel: str | None) -> None:
        sizes = self._sent_sizes.get(channel)
        if sizes:
            self._in_flight -= sizes.popleft()
        if self._in_flight <= self._low_water and not self._backlog:
            self._room.set()

    def _fail(self, error: SpeechmaticsModesError) -> None:
        self._error = self._error or error
        self._room.set()

    def _deliver(self, event: StreamEvent) -> None:
        """Into the caller's stream at once if it has room, else behind what already waits."""
        if self._events is None:
            return
        if not self._backlog:
            try:
                self._events.send_nowait(event)
                return
            except anyio.WouldBlock:
                pass
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return  # the caller has gone (its scope is being cancelled)
        self._backlog.append(event)
        self._start_flushing()

    def _start_flushing(self) -> None:
        if self._backlog and not self._flushing and self._group is not None:
            self._flushing = True
            self._group.start_soon(self._flush)

    async def _flush(self) -> None:
        """Hand the backlog over as the caller reads, then let the sender go on."""
        assert self._events is not None
        try:
            while self._backlog:
                await self._events.send(self._backlog[0])
                self._backlog.popleft()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._backlog.clear()
        finally:
            self._flushing = False
            self._room.set()

    # Controls on the running session ------------------------------------------------------

    @property
    def _multichannel(self) -> bool:
        """Whether audio goes as ``AddChannelAudio`` (any chunk sent with a channel label)."""
        return any(channel is not None for channel in self._sent_sizes)

    @property
    def options(self) -> TranscriptionOptions:
        """The transcription options in force (after any :meth:`update`)."""
        return self._options

    async def force_end_of_utterance(self) -> None:
        """Ask the service to finalise what it has heard now (``ForceEndOfUtterance``).

        The answer is a :class:`Final` with ``forced=True`` (and an :class:`EndOfUtterance`)
        among the events. The SDK stamps the request with the seconds of audio it sent as
        binary frames; a multichannel session sends ``AddChannelAudio`` messages instead, so
        that stamp would be 0.0 (nothing to finalise): there the stamp is left out, and the
        service finalises all it has.

        Raises:
            TransportError: The session is not running.
        """
        client = await self._running_client()
        with translated(REALTIME_ERRORS):
            if self._multichannel:
                await client.force_end_of_utterance(timestamp=None)
            else:
                await client.force_end_of_utterance()

    async def update(self, options: TranscriptionOptions, changes: Iterable[str]) -> None:
        """Send ``SetRecognitionConfig`` with the fields ``changes``; ``options`` are the result.

        Before the session has started the change is kept and sent as soon as it has (its
        ``StartRecognition`` may already be on its way with the old settings), so an update
        never waits for a session being opened, and never misses it.

        Raises:
            TransportError: The session is over.
        """
        if self._client is None and not self._settled.is_set():
            self._options = options
            self._unsent.update(changes)
            return
        client = await self._running_client()
        self._options = options
        await self._set_config(client, changes)

    async def _set_config(self, client: sm.AsyncClient, changes: Iterable[str]) -> None:
        wire = self._options.to_wire()
        config = {"language": self._options.language} | {
            name: wire[name] for name in changes if name in wire
        }
        with translated(REALTIME_ERRORS):
            await client.send_message(
                {"message": "SetRecognitionConfig", "transcription_config": config}
            )

    async def get_speakers(self, timeout: float) -> SpeakersResult:
        """Ask for the speakers heard so far (``GetSpeakers``) and wait for the answer.

        Raises:
            TransportError: The session is not running, or ended before it answered.
            TranscriptionTimeout: No answer within ``timeout`` seconds.
        """
        client = await self._running_client()
        reply = self._speakers_reply = anyio.Event()
        self._speakers = None
        with translated(REALTIME_ERRORS):
            await client.send_message({"message": "GetSpeakers"})
        with anyio.move_on_after(timeout):
            await reply.wait()
        self._speakers_reply = None
        speakers = self._answered_speakers()
        if speakers is not None:
            return speakers
        if reply.is_set():
            raise TransportError("the session ended before the service sent the speakers")
        raise TranscriptionTimeout(f"the service sent no SpeakersResult within {timeout:g} s")

    def _answered_speakers(self) -> SpeakersResult | None:
        """The ``SpeakersResult`` stored for the pending request, if it came."""
        return self._speakers

    async def _running_client(self) -> sm.AsyncClient:
        """The client of the running session, waiting (briefly) for it to start."""
        with anyio.move_on_after(_START_WAIT_SECONDS):
            await self._settled.wait()
        if self._client is None or self._ended:
            raise TransportError("the real-time session is not running (not started, or ended)")
        return self._client


def _auth(settings: Settings) -> sm.AuthBase:
    """The long-lived key, or (``temporary_keys``) a fresh temporary key minted with it."""
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    if settings.temporary_keys:
        return sm.JWTAuth(api_key, ttl=60, mp_url=settings.management_url)
    return sm.StaticKeyAuth(api_key)
