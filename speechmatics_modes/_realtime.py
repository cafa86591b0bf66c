"""The real-time backend: the only module that imports ``speechmatics.rt``.

Everything real-time-specific that touches the SDK lives here: translating our options into the
SDK's dataclasses, and translating the SDK's exceptions into ours (:data:`REALTIME_ERRORS`).
"""

from __future__ import annotations

import re
from typing import Any

import speechmatics.rt as sm

from ._config import AudioFormat, TranscriptionOptions
from ._exceptions import (
    AudioSourceError,
    AuthenticationError,
    ConfigurationError,
    ErrorFactory,
    ServerError,
    SpeechmaticsModesError,
    TransportError,
    describe,
)

__all__ = ["REALTIME_ERRORS", "realtime_audio_format", "realtime_transcription_config"]


def realtime_transcription_config(options: TranscriptionOptions) -> sm.TranscriptionConfig:
    """Build the real-time SDK's ``TranscriptionConfig``; batch-only fields are an error."""
    options.check_mode("realtime")
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
