"""The real-time session of the local server as a state machine without I/O.

:class:`RealtimeProtocol` is fed what arrives (text, binary frames, the engine's results, the
clock) and answers with :data:`Action` values for the caller to carry out: messages to send,
audio to feed the engine, a close. It never awaits anything, so every protocol rule (message
order, errors and their close codes, limits and their warnings, sentence shaping) is tested
without a socket, and ``_realtime_api.py`` is left with pumping.

Times: the caller passes a monotonic ``now`` (seconds) to every method that cares; the session
compares it with deadlines it computes itself and reports the next one with
:meth:`RealtimeProtocol.next_deadline`. The session limit may instead count seconds of audio
received (:attr:`SessionLimits.session_clock`), which needs no clock at all.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from pydantic import Field, ValidationError

from speechmatics_modes._config import CHANNEL_DIARIZATION, SETTABLE_MID_SESSION
from speechmatics_modes._frozen import FrozenModel
from speechmatics_modes.local._audio import (
    AudioDecodeError,
    FileStreamConverter,
    StreamConverter,
)
from speechmatics_modes.local._engine import StreamSettings, StreamUpdate
from speechmatics_modes.local._insights import EngineInsights, RealtimeInsights, refusal
from speechmatics_modes.local._results import (
    LANGUAGE_NAMES,
    Sentencer,
    labels_for,
    language_pack_info,
)
from speechmatics_modes.local._rt_channel import ChannelTrack
from speechmatics_modes.local._schema import (
    ConfigProblem,
    RealtimeTranscriptionConfig,
    StartRecognition,
    check,
    describe_validation_error,
)

__all__ = [
    "CLOSE_REASONS",
    "ERROR_CLOSE_CODES",
    "MAX_CHANNELS",
    "MAX_MESSAGE_BYTES",
    "Action",
    "Close",
    "Feed",
    "Flush",
    "OpenStream",
    "RealtimeProtocol",
    "Retune",
    "Send",
    "SessionClock",
    "SessionLimits",
    "warning_offsets",
]

MAX_MESSAGE_BYTES = 1024 * 1024
"""The service's limit on one message (text or binary) in either direction."""

MAX_CHANNELS = 2
"""Channels a multichannel session may have (the service's limit)."""

DEFAULT_MAX_DELAY = 4.0
"""The service's ``max_delay`` when a session sets none."""

ERROR_CLOSE_CODES = {
    "invalid_message": 1003,
    "protocol_error": 1003,
    "invalid_config": 1003,
    "invalid_audio_type": 1003,
    "invalid_language": 1003,
    "not_authorised": 4001,
    "quota_exceeded": 4005,
    "idle_timeout": 1008,
    "session_timeout": 1008,
    "job_error": 4013,
    "internal_error": 1011,
}
"""The close code after each ``Error`` type (documented ones per §1.6; bad input -> 1003)."""

CLOSE_REASONS = {
    1000: "",
    1003: "protocol_error",
    1008: "policy_violation",
    1011: "internal_error",
    4001: "not_authorised",
    4005: "quota_exceeded",
    4013: "job_error",
}
"""The close frame's reason text for each code, as the service sends it."""

_SESSION_WARNINGS = (45 * 60.0, 30 * 60.0, 15 * 60.0)
_IDLE_WARNINGS = (15 * 60.0, 10 * 60.0, 5 * 60.0)
_WARNING_SCALE = 3600.0
_DEFAULT_CHANNELS = ("channel_1", "channel_2")
SessionClock = Literal["wall", "audio"]
"""What a limit counts: monotonic seconds, or seconds of audio received."""


class SessionLimits(FrozenModel):
    """The limits of one real-time session, configurable so tests can compress time."""

    max_session_seconds: float = Field(
        default=48 * 3600.0,
        gt=0,
        description="A session ends with session_timeout after this long (service: 48 h).",
    )
    idle_timeout_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="A session ends with idle_timeout after this long without audio "
        "(service: 1 h).",
    )
    session_clock: SessionClock = Field(
        default="wall",
        description="What max_session_seconds counts: wall time, as the service does, or "
        "seconds of audio received, so a client sending faster than real time meets the "
        "limit and its warnings at the same point of its audio however fast the machine is.",
    )


def warning_offsets(limit: float, service_offsets: Sequence[float]) -> tuple[float, ...]:
    """Seconds before ``limit`` at which to warn.

    The service warns 45/30/15 minutes before its 48-hour limit and 15/10/5 minutes before its
    1-hour idle limit. A limit under an hour (tests) keeps the same proportions of an hour:
    a 6-second session limit warns 4.5, 3 and 1.5 seconds before the end.
    """
    scale = min(1.0, limit / _WARNING_SCALE)
    return tuple(offset * scale for offset in service_offsets if offset * scale < limit)


@dataclass(frozen=True, slots=True)
class Send:
    """Send this message as a JSON text frame."""

    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Close:
    """Close the WebSocket with this code and reason; nothing is read afterwards."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class OpenStream:
    """Admit the session (quota), open an engine stream per channel, then call ``started``."""

    settings: StreamSettings
    channels: tuple[str | None, ...] = (None,)


@dataclass(frozen=True, slots=True)
class Feed:
    """Feed engine PCM to the channel's stream, then give the update to ``recognized``."""

    pcm: bytes
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Flush:
    """Flush the channel's stream; the update goes to ``recognized`` or ``finished`` (end)."""

    end_of_stream: bool
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Retune:
    """``SetRecognitionConfig`` changed what the engine streams were opened with."""

    settings: StreamSettings


Action = Send | Close | OpenStream | Feed | Flush | Retune
"""What the caller must do, in order."""


class _State(Enum):
    AWAITING_START = "awaiting_start"
    STARTING = "starting"
    RUNNING = "running"
    ENDED = "ended"
    CLOSED = "closed"


@dataclass
class _Timer:
    """A limit that ends the session, with warnings before it."""

    kind: Literal["session_timeout", "idle_timeout"]
    limit: float
    offsets: tuple[float, ...]
    since: float
    clock: SessionClock = "wall"
    warned: int = 0

    def due(self) -> float:
        """When this timer next needs attention."""
        if self.warned < len(self.offsets):
            return self.since + self.limit - self.offsets[self.warned]
        return self.since + self.limit

    def restart(self, now: float) -> None:
        """Count from ``now`` again (audio arrived: the idle clock restarts)."""
        self.since = now
        self.warned = 0


@dataclass
class _Config:
    """The parts of the session's config that can change mid-session."""

    enable_partials: bool
    end_of_utterance_trigger: float
    final_speakers: bool
    max_delay: float = DEFAULT_MAX_DELAY
    flexible_delay: bool = True
    """``max_delay_mode`` is "flexible", the service's default."""

    @property
    def stream_settings(self) -> StreamSettings:
        """What the engine streams are asked for."""
        return StreamSettings(
            self.max_delay,
            self.enable_partials,
            self.end_of_utterance_trigger,
            flexible_delay=self.flexible_delay,
        )


@dataclass
class RealtimeProtocol:
    """The server side of one real-time session: every rule of the protocol, no I/O.

    Args:
        session_id: The ``id`` of ``RecognitionStarted``.
        limits: Duration and idle limits.
        now: The monotonic time the connection was accepted.
        insights: What the engine reports besides words; a config asking for more is refused.
        engine_name: The engine's name, for those refusals.
    """

    session_id: str
    limits: SessionLimits
    now: float
    insights: EngineInsights = field(default_factory=EngineInsights)
    engine_name: str = "local"
    language: str = "en"
    _state: _State = _State.AWAITING_START
    _config: _Config = field(default_factory=lambda: _Config(False, 0.0, False))
    _channels: dict[str | None, ChannelTrack] = field(default_factory=dict)
    """One track per channel; an ordinary session has one, under ``None``."""
    _finished: set[str | None] = field(default_factory=set)
    """Channels whose last words have gone out."""
    _speaker: str | None = None
    _transcription_config: dict[str, Any] = field(default_factory=dict)
    _timers: list[_Timer] = field(default_factory=list)
    _extras: RealtimeInsights | None = None

    def __post_init__(self) -> None:
        session = self.limits.max_session_seconds
        idle = self.limits.idle_timeout_seconds
        clock = self.limits.session_clock
        self._timers = [
            _Timer(
                "session_timeout",
                session,
                warning_offsets(session, _SESSION_WARNINGS),
                self.now if clock == "wall" else 0.0,
                clock,
            ),
            _Timer("idle_timeout", idle, warning_offsets(idle, _IDLE_WARNINGS), self.now),
        ]

    @property
    def closed(self) -> bool:
        """Whether the session has asked for the socket to close."""
        return self._state is _State.CLOSED

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio received (on the first channel, the session's clock)."""
        return self._clock_track.seconds if self._channels else 0.0

    @property
    def _clock_track(self) -> ChannelTrack:
        """The channel whose audio times translations and audio events: the first one."""
        return next(iter(self._channels.values()))

    @property
    def multichannel(self) -> bool:
        """Whether audio comes in ``AddChannelAudio`` messages, one stream per channel."""
        return bool(self._channels) and None not in self._channels

    def receive_text(self, text: str, now: float) -> list[Action]:
        """A text frame arrived."""
        if self.closed:
            return []
        if len(text.encode()) > MAX_MESSAGE_BYTES:
            return self._error("protocol_error", f"message exceeds {MAX_MESSAGE_BYTES} bytes")
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            return self._error("invalid_message", f"message is not valid JSON: {exc.msg}")
        except RecursionError:
            return self._error("invalid_message", "message is not valid JSON: nested too deeply")
        except ValueError as exc:  # a number too long to convert
            return self._error("invalid_message", f"message is not valid JSON: {exc}")
        if not isinstance(message, dict) or not isinstance(message.get("message"), str):
            return self._error("invalid_message", "expected a JSON object with a 'message' field")
        return self._dispatch(message, now)

    def receive_bytes(self, data: bytes, now: float) -> list[Action]:
        """A binary (audio) frame arrived."""
        if self.closed:
            return []
        if len(data) > MAX_MESSAGE_BYTES:
            return self._error("protocol_error", f"audio frame exceeds {MAX_MESSAGE_BYTES} bytes")
        if self._state in (_State.AWAITING_START, _State.STARTING):
            return self._error("protocol_error", "audio received before RecognitionStarted")
        if self.multichannel:
            return self._error(
                "protocol_error", "binary audio in a multichannel session; send AddChannelAudio"
            )
        return self._audio(self._channels[None], data, now)

    def started(self) -> list[Action]:
        """The caller admitted the session and opened the engine streams."""
        self._state = _State.RUNNING
        message: dict[str, Any] = {
            "message": "RecognitionStarted",
            "id": self.session_id,
            "orchestrator_version": "speechmatics-modes-local",
            "language_pack_info": language_pack_info(self.language),
        }
        if self.multichannel:
            message["channel_ids"] = list(self._channels)
        return [Send(message)]

    def release(self) -> None:
        """The connection is over: stop the audio decoders (threads, for compressed files)."""
        for track in self._channels.values():
            track.close()

    def refuse(self, error_type: str, reason: str) -> list[Action]:
        """End the session with an ``Error`` the caller decided on (quota, engine failure)."""
        return self._error(error_type, reason)

    def recognized(
        self, update: StreamUpdate, *, forced: bool = False, channel: str | None = None
    ) -> list[Action]:
        """The engine's answer to :class:`Feed` (or to a forced :class:`Flush`) on a channel."""
        if self.closed:
            return []
        track = self._channels[channel]
        final = track.finals(update, forced=forced)
        actions: list[Action] = [] if final is None else [Send(final)]
        if self._config.enable_partials and (
            update.partial != track.last_partial or (final is not None and update.partial)
        ):
            actions.append(Send(track.partial(update.partial)))
        track.last_partial = update.partial
        if forced or track.end_of_utterance_due(update, self._config.end_of_utterance_trigger):
            actions.append(Send(track.end_of_utterance(forced=forced)))
        if update.finals and self._extras is not None and track is self._clock_track:
            translations = self._extras.after_finals(track.last_final_end, track.seconds)
            actions.extend(Send(message) for message in translations)
        return actions

    def finished(self, update: StreamUpdate, channel: str | None = None) -> list[Action]:
        """The engine's answer to a channel's end-of-stream :class:`Flush`.

        The channel's last finals; then, once every channel has finished, the end.
        """
        if self.closed:
            return []
        actions = self.recognized(StreamUpdate(update.finals, (), True), channel=channel)
        self._finished.add(channel)
        if len(self._finished) < len(self._channels):
            return actions
        if self._extras is not None:
            seconds = self._clock_track.seconds
            actions.extend(Send(message) for message in self._extras.finish(seconds))
        if self._config.final_speakers:
            actions.append(self._speakers())
        actions.append(Send({"message": "EndOfTranscript"}))
        # The service closes the socket itself once the transcript is complete, which frees
        # the session's quota slot even if the client never closes.
        self._state = _State.CLOSED
        actions.append(Close(1000, ""))
        return actions

    def next_deadline(self) -> float | None:
        """The monotonic time at which :meth:`tick` must next be called, if any."""
        if self.closed or self._state is _State.ENDED:
            return None  # ended: the engine's last words, then EndOfTranscript, end it
        return min(timer.due() for timer in self._timers if timer.clock == "wall")

    def tick(self, now: float) -> list[Action]:
        """Time passed: warnings and limits that fell due."""
        self.now = now
        if self.closed or self._state is _State.ENDED:
            return []
        return self._tick_clock("wall", now)

    def _tick_clock(self, clock: SessionClock, now: float) -> list[Action]:
        """Warnings and limits of the timers on ``clock`` that fell due by ``now``."""
        actions: list[Action] = []
        for timer in self._timers:
            if timer.clock == clock and not self.closed:
                actions.extend(self._tick_timer(timer, now))
        return actions

    def _tick_timer(self, timer: _Timer, now: float) -> list[Action]:
        actions: list[Action] = []
        while timer.warned < len(timer.offsets) and now >= timer.due():
            left = timer.offsets[timer.warned]
            elapsed = timer.limit - left
            timer.warned += 1
            actions.append(_warning(timer.kind, _limit_reason(timer.kind, left, elapsed)))
        if now >= timer.since + timer.limit:
            return [*actions, *self._error(timer.kind, _limit_reason(timer.kind, 0, timer.limit))]
        return actions

    def _dispatch(self, message: dict[str, Any], now: float) -> list[Action]:
        kind = message["message"]
        if kind == "StartRecognition":
            return self._start(message)
        if self._state in (_State.AWAITING_START, _State.STARTING):
            return self._error("protocol_error", f"{kind} received before StartRecognition")
        if kind == "AddChannelAudio":
            return self._channel_audio(message, now)
        if self._state is _State.ENDED:
            return []
        if kind == "EndOfStream":
            return self._end(list(self._channels.values()), message)
        if kind == "EndOfChannel":
            track = self._named_track(message)
            if isinstance(track, ChannelTrack):
                return self._end([track], message)
            return track
        if kind == "ForceEndOfUtterance":
            return self._force_end_of_utterance(message)
        if kind == "SetRecognitionConfig":
            return self._set_config(message)
        if kind == "GetSpeakers":
            return self._get_speakers(message)
        return self._error("invalid_message", f"unknown or unsupported message {kind!r}")

    def _start(self, message: dict[str, Any]) -> list[Action]:
        if self._state is not _State.AWAITING_START:
            return self._error("protocol_error", "StartRecognition may be sent only once")
        try:
            start = StartRecognition.model_validate(message)
        except ValidationError as exc:
            audio_problem = any(error["loc"][:1] == ("audio_format",) for error in exc.errors())
            kind = "invalid_audio_type" if audio_problem else "invalid_config"
            return self._error(kind, describe_validation_error(exc))
        config = start.transcription_config
        if config.language not in LANGUAGE_NAMES:
            return self._error(
                "invalid_language", f"language {config.language!r} is not available locally"
            )
        channels = _channel_labels(config)
        if isinstance(channels, str):
            return self._error("invalid_config", channels)
        unsupported = refusal(message, self.insights, self.engine_name)
        if unsupported is not None:
            return self._error("invalid_config", unsupported)
        self._extras = RealtimeInsights(message, self.insights)
        self.language = config.language
        self._transcription_config = message["transcription_config"]
        for label in channels:
            labels = labels_for(self._transcription_config, realtime=True, channel=label)
            self._speaker = labels.speaker
            self._channels[label] = ChannelTrack(
                label, _converter(start.audio_format), Sentencer(labels)
            )
        self._apply(config)
        speakers = config.speaker_diarization_config
        self._config.final_speakers = bool(speakers and speakers.get_speakers)
        self._state = _State.STARTING
        return [OpenStream(self._config.stream_settings, channels)]

    def _audio(self, track: ChannelTrack, data: bytes, now: float) -> list[Action]:
        track.seq_no += 1
        acknowledged = Send(track.acknowledgement())
        if track.ended:
            return [
                acknowledged,
                _warning("add_audio_after_eos", "audio after EndOfStream ignored"),
            ]
        self._timers[1].restart(now)
        try:
            pcm = track.decode(data)
        except AudioDecodeError as exc:
            return [acknowledged, *self._error("invalid_audio_type", str(exc))]
        limits: list[Action] = []
        extras: list[Action] = []
        if track is self._clock_track:
            limits = self._tick_clock("audio", track.seconds)
            if any(isinstance(action, Close) for action in limits):  # past the limit: not fed
                return [acknowledged, *limits]
            if self._extras is not None:
                extras = [Send(message) for message in self._extras.heard(track.seconds)]
        feed = [Feed(pcm, track.label)] if pcm else []
        return [acknowledged, *extras, *feed, *limits]

    def _channel_audio(self, message: dict[str, Any], now: float) -> list[Action]:
        track = self._named_track(message)
        if not isinstance(track, ChannelTrack):
            return track
        data = message.get("data")
        try:
            if not isinstance(data, str):
                raise ValueError("'data' is missing")
            audio = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            return self._error("invalid_message", f"AddChannelAudio needs base64 'data': {exc}")
        return self._audio(track, audio, now)

    def _named_track(self, message: dict[str, Any]) -> ChannelTrack | list[Action]:
        """The track ``message["channel"]`` names, or the error that ends the session."""
        kind = message["message"]
        if not self.multichannel:
            return self._error(
                "invalid_message",
                f"{kind} needs a multichannel session (diarization 'channel' or "
                "'channel_and_speaker' with channel_diarization_labels)",
            )
        track = self._channels.get(message.get("channel"))
        if track is None:
            names = ", ".join(repr(label) for label in self._channels)
            return self._error(
                "invalid_message",
                f"{kind} for unknown channel {message.get('channel')!r}; this session's "
                f"channels are {names}",
            )
        return track

    def _force_end_of_utterance(self, message: dict[str, Any]) -> list[Action]:
        if message.get("channel") is None:
            tracks = list(self._channels.values())
        else:
            track = self._named_track(message)
            if not isinstance(track, ChannelTrack):
                return track
            tracks = [track]
        return [Flush(end_of_stream=False, channel=t.label) for t in tracks if not t.ended]

    def _apply(self, config: RealtimeTranscriptionConfig) -> None:
        if config.enable_partials is not None:
            self._config.enable_partials = config.enable_partials
        if config.max_delay is not None:
            self._config.max_delay = config.max_delay
        if config.max_delay_mode is not None:
            self._config.flexible_delay = config.max_delay_mode == "flexible"
        conversation = config.conversation_config
        if conversation is not None and conversation.end_of_utterance_silence_trigger is not None:
            self._config.end_of_utterance_trigger = conversation.end_of_utterance_silence_trigger

    def _set_config(self, message: dict[str, Any]) -> list[Action]:
        changes = message.get("transcription_config")
        if not isinstance(changes, dict):
            return self._error("invalid_config", "SetRecognitionConfig needs transcription_config")
        not_settable = sorted(set(changes) - SETTABLE_MID_SESSION)
        if not_settable:
            return self._error("invalid_config", f"cannot change {', '.join(not_settable)}")
        if changes.get("language", self.language) != self.language:
            return self._error("invalid_config", "the language cannot change mid-session")
        try:
            config = check(RealtimeTranscriptionConfig, {"language": self.language, **changes})
        except ConfigProblem as exc:
            return self._error("invalid_config", str(exc))
        settings = self._config.stream_settings
        self._apply(config)
        if self._config.stream_settings == settings:
            return []
        return [Retune(self._config.stream_settings)]

    def _end(self, tracks: list[ChannelTrack], message: dict[str, Any]) -> list[Action]:
        """EndOfStream (every channel) or EndOfChannel (one): each ends with a final flush."""
        if not isinstance(message.get("last_seq_no", 0), int):
            return self._error("invalid_message", "last_seq_no must be an integer")
        actions: list[Action] = []
        for track in tracks:
            if not track.ended:
                track.ended = True
                actions.append(Flush(end_of_stream=True, channel=track.label))
        if all(track.ended for track in self._channels.values()):
            self._state = _State.ENDED
        return actions

    def tail(self, channel: str | None) -> bytes:
        """An ended channel's last engine PCM, to feed before its final flush.

        It may wait for a compressed stream's decoder (see :meth:`ChannelTrack.tail`): call it
        in a worker thread.

        Raises:
            AudioDecodeError: The stream ended inside a header, or is damaged.
        """
        return self._channels[channel].tail()

    def _get_speakers(self, message: dict[str, Any]) -> list[Action]:
        """The speakers now, or (``final``) once, at the end, as the config's ``get_speakers``."""
        if message.get("final"):
            self._config.final_speakers = True
            return []
        return [self._speakers()]

    def _speakers(self) -> Send:
        heard = any(track.last_final_end > 0 for track in self._channels.values())
        speaker = self._speaker
        speakers = [
            {"label": speaker, "speaker_identifiers": [f"local-{self.session_id}-{speaker}"]}
        ]
        found = speaker is not None and heard
        return Send({"message": "SpeakersResult", "speakers": speakers if found else []})

    def _error(self, error_type: str, reason: str) -> list[Action]:
        self._state = _State.CLOSED
        code = ERROR_CLOSE_CODES[error_type]
        return [
            Send({"message": "Error", "type": error_type, "reason": reason}),
            Close(code, CLOSE_REASONS.get(code, error_type)),
        ]


def _channel_labels(config: RealtimeTranscriptionConfig) -> tuple[str | None, ...] | str:
    """The session's channels (``(None,)`` unless channel diarization), or what is wrong."""
    if config.diarization not in CHANNEL_DIARIZATION:
        return (None,)
    labels = tuple(config.channel_diarization_labels or _DEFAULT_CHANNELS)
    if len(set(labels)) != len(labels):
        return "channel_diarization_labels must be unique"
    if not 1 <= len(labels) <= MAX_CHANNELS:
        return f"a session has 1 to {MAX_CHANNELS} channels, got {len(labels)}"
    return labels


def _converter(audio_format: Any) -> StreamConverter | FileStreamConverter:
    if audio_format.type == "file":
        return FileStreamConverter(source="StartRecognition audio")
    return StreamConverter(audio_format.encoding, audio_format.sample_rate)


def _warning(warning_type: str, reason: str) -> Send:
    return Send({"message": "Warning", "type": warning_type, "reason": reason})


def _limit_reason(kind: str, left: float, elapsed: float) -> str:
    if kind == "session_timeout":
        if left <= 0:
            return f"Session reached its maximum duration of {_span(elapsed)}"
        return (
            f"Session will timeout in {_span(left)} due to max duration, "
            f"session has been active for {_span(elapsed)}"
        )
    if left <= 0:
        return f"Session timed out after {_span(elapsed)} without audio"
    return (
        f"Session will timeout in {_span(left)} due to inactivity, "
        f"no audio sent within the last {_span(elapsed)}"
    )


def _span(seconds: float) -> str:
    """``45m`` like the service for whole minutes; seconds for the short limits of tests."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:.3g}s"
