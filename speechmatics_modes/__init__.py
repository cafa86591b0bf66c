"""speechmatics-modes: one way to transcribe speech with Speechmatics, batch or real-time.

A finished file goes to the batch API, live audio to the real-time API, and both give back the
same :class:`Transcript`. Everything public is importable from here; the modules behind it are
private.
"""

from __future__ import annotations

from ._config import (
    AudioFiltering,
    AudioFormat,
    BatchOptions,
    Conversation,
    FetchData,
    LanguageIdentification,
    Notification,
    OutputOptions,
    PunctuationOverrides,
    SpeakerDiarization,
    SpeakerIdentifier,
    Summarization,
    TopicDetection,
    Tracking,
    TranscriptFiltering,
    TranscriptionOptions,
    Translation,
    VocabEntry,
    WordReplacement,
)
from ._exceptions import (
    AudioSourceError,
    AuthenticationError,
    ConfigurationError,
    JobFailedError,
    ServerError,
    SessionLimitError,
    SpeechmaticsModesError,
    TranscriptionTimeout,
    TransportError,
)
from ._settings import Settings

__version__ = "0.1.0"

__all__ = [
    "AudioFiltering",
    "AudioFormat",
    "AudioSourceError",
    "AuthenticationError",
    "BatchOptions",
    "ConfigurationError",
    "Conversation",
    "FetchData",
    "JobFailedError",
    "LanguageIdentification",
    "Notification",
    "OutputOptions",
    "PunctuationOverrides",
    "ServerError",
    "SessionLimitError",
    "Settings",
    "SpeakerDiarization",
    "SpeakerIdentifier",
    "SpeechmaticsModesError",
    "Summarization",
    "TopicDetection",
    "Tracking",
    "TranscriptFiltering",
    "TranscriptionOptions",
    "TranscriptionTimeout",
    "Translation",
    "TransportError",
    "VocabEntry",
    "WordReplacement",
]
