"""speechmatics-modes: one way to transcribe speech with Speechmatics, batch or real-time.

A finished file goes to the batch API, live audio to the real-time API, and both give back the
same :class:`Transcript`. Everything public is importable from here; the modules behind it are
private.
"""

from __future__ import annotations

from ._api import AudioSource, TranscriptStream, stream, transcribe, transcribe_sync
from ._batch import BatchClient, BatchJob
from ._bulk import BulkResult, transcribe_many
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
from ._microphone import InputDevice, Microphone, list_input_devices
from ._models import (
    EndOfUtterance,
    Final,
    Mode,
    Partial,
    Segment,
    ServerWarning,
    SessionInfo,
    StreamEvent,
    Transcript,
    Word,
)
from ._retry import RetryPolicy
from ._settings import Settings
from ._stream._policy import AudioGap, Reconnected, RolloverPolicy, SessionRollover, StreamMetrics

__version__ = "0.1.0"

__all__ = [
    "AudioFiltering",
    "AudioFormat",
    "AudioGap",
    "AudioSource",
    "AudioSourceError",
    "AuthenticationError",
    "BatchClient",
    "BatchJob",
    "BatchOptions",
    "BulkResult",
    "ConfigurationError",
    "Conversation",
    "EndOfUtterance",
    "FetchData",
    "Final",
    "InputDevice",
    "JobFailedError",
    "LanguageIdentification",
    "Microphone",
    "Mode",
    "Notification",
    "OutputOptions",
    "Partial",
    "PunctuationOverrides",
    "Reconnected",
    "RetryPolicy",
    "RolloverPolicy",
    "Segment",
    "ServerError",
    "ServerWarning",
    "SessionInfo",
    "SessionLimitError",
    "SessionRollover",
    "Settings",
    "SpeakerDiarization",
    "SpeakerIdentifier",
    "SpeechmaticsModesError",
    "StreamEvent",
    "StreamMetrics",
    "Summarization",
    "TopicDetection",
    "Tracking",
    "Transcript",
    "TranscriptFiltering",
    "TranscriptStream",
    "TranscriptionOptions",
    "TranscriptionTimeout",
    "Translation",
    "TransportError",
    "VocabEntry",
    "Word",
    "WordReplacement",
    "list_input_devices",
    "stream",
    "transcribe",
    "transcribe_many",
    "transcribe_sync",
]
