"""speechmatics-modes: one way to transcribe speech with Speechmatics, batch or real-time.

A finished file goes to the batch API, live audio to the real-time API, and both give back the
same :class:`Transcript`. Everything public is importable from here; the modules behind it are
private.

Importing the package is cheap: each public name is imported from its module on first use (PEP
562 ``__getattr__``), so a batch job never loads the real-time SDK, and neither loads the
microphone or the local server. The ``TYPE_CHECKING`` imports below tell type checkers and
editors where each name lives; ``_EXPORTS`` tells the interpreter, and a test keeps the two equal.
"""

from __future__ import annotations

import importlib
import typing

if typing.TYPE_CHECKING:
    from speechmatics_modes._api import (
        AudioSource,
        TranscriptStream,
        stream,
        transcribe,
        transcribe_sync,
    )
    from speechmatics_modes._batch import BatchClient, BatchJob
    from speechmatics_modes._bulk import BulkResult, transcribe_many
    from speechmatics_modes._config import (
        AudioFiltering,
        AudioFormat,
        BatchOptions,
        Conversation,
        FetchData,
        LanguageIdentification,
        Notification,
        OutputOptions,
        PunctuationOverrides,
        RealtimeOptions,
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
    from speechmatics_modes._exceptions import (
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
    from speechmatics_modes._inputs import BulkInput, read_manifest
    from speechmatics_modes._insights import (
        AudioEvent,
        AudioEventEnded,
        AudioEventStarted,
        Chapter,
        FinalTranslation,
        IdentifiedSpeaker,
        PartialTranslation,
        Sentiment,
        SentimentCounts,
        SentimentSegment,
        SpeakersResult,
        Topics,
        TopicSegment,
        TranslatedSentence,
    )
    from speechmatics_modes._microphone import InputDevice, Microphone, list_input_devices
    from speechmatics_modes._models import (
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
    from speechmatics_modes._retry import RetryPolicy
    from speechmatics_modes._settings import Settings
    from speechmatics_modes._stream._policy import (
        AudioGap,
        Reconnected,
        RolloverPolicy,
        SessionRollover,
        StreamMetrics,
    )

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    "speechmatics_modes._api": (
        "AudioSource",
        "TranscriptStream",
        "stream",
        "transcribe",
        "transcribe_sync",
    ),
    "speechmatics_modes._batch": ("BatchClient", "BatchJob"),
    "speechmatics_modes._bulk": ("BulkResult", "transcribe_many"),
    "speechmatics_modes._config": (
        "AudioFiltering",
        "AudioFormat",
        "BatchOptions",
        "Conversation",
        "FetchData",
        "LanguageIdentification",
        "Notification",
        "OutputOptions",
        "PunctuationOverrides",
        "RealtimeOptions",
        "SpeakerDiarization",
        "SpeakerIdentifier",
        "Summarization",
        "TopicDetection",
        "Tracking",
        "TranscriptFiltering",
        "TranscriptionOptions",
        "Translation",
        "VocabEntry",
        "WordReplacement",
    ),
    "speechmatics_modes._exceptions": (
        "AudioSourceError",
        "AuthenticationError",
        "ConfigurationError",
        "JobFailedError",
        "ServerError",
        "SessionLimitError",
        "SpeechmaticsModesError",
        "TranscriptionTimeout",
        "TransportError",
    ),
    "speechmatics_modes._inputs": ("BulkInput", "read_manifest"),
    "speechmatics_modes._insights": (
        "AudioEvent",
        "AudioEventEnded",
        "AudioEventStarted",
        "Chapter",
        "FinalTranslation",
        "IdentifiedSpeaker",
        "PartialTranslation",
        "Sentiment",
        "SentimentCounts",
        "SentimentSegment",
        "SpeakersResult",
        "Topics",
        "TopicSegment",
        "TranslatedSentence",
    ),
    "speechmatics_modes._microphone": ("InputDevice", "Microphone", "list_input_devices"),
    "speechmatics_modes._models": (
        "EndOfUtterance",
        "Final",
        "Mode",
        "Partial",
        "Segment",
        "ServerWarning",
        "SessionInfo",
        "StreamEvent",
        "Transcript",
        "Word",
    ),
    "speechmatics_modes._retry": ("RetryPolicy",),
    "speechmatics_modes._settings": ("Settings",),
    "speechmatics_modes._stream._policy": (
        "AudioGap",
        "Reconnected",
        "RolloverPolicy",
        "SessionRollover",
        "StreamMetrics",
    ),
}
"""Which private module defines each public name."""

_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


__all__ = [
    "AudioEvent",
    "AudioEventEnded",
    "AudioEventStarted",
    "AudioFiltering",
    "AudioFormat",
    "AudioGap",
    "AudioSource",
    "AudioSourceError",
    "AuthenticationError",
    "BatchClient",
    "BatchJob",
    "BatchOptions",
    "BulkInput",
    "BulkResult",
    "Chapter",
    "ConfigurationError",
    "Conversation",
    "EndOfUtterance",
    "FetchData",
    "Final",
    "FinalTranslation",
    "IdentifiedSpeaker",
    "InputDevice",
    "JobFailedError",
    "LanguageIdentification",
    "Microphone",
    "Mode",
    "Notification",
    "OutputOptions",
    "Partial",
    "PartialTranslation",
    "PunctuationOverrides",
    "RealtimeOptions",
    "Reconnected",
    "RetryPolicy",
    "RolloverPolicy",
    "Segment",
    "Sentiment",
    "SentimentCounts",
    "SentimentSegment",
    "ServerError",
    "ServerWarning",
    "SessionInfo",
    "SessionLimitError",
    "SessionRollover",
    "Settings",
    "SpeakerDiarization",
    "SpeakerIdentifier",
    "SpeakersResult",
    "SpeechmaticsModesError",
    "StreamEvent",
    "StreamMetrics",
    "Summarization",
    "TopicDetection",
    "TopicSegment",
    "Topics",
    "Tracking",
    "Transcript",
    "TranscriptFiltering",
    "TranscriptStream",
    "TranscriptionOptions",
    "TranscriptionTimeout",
    "TranslatedSentence",
    "Translation",
    "TransportError",
    "VocabEntry",
    "Word",
    "WordReplacement",
    "list_input_devices",
    "read_manifest",
    "stream",
    "transcribe",
    "transcribe_many",
    "transcribe_sync",
]


def __getattr__(name: str) -> object:
    """Import a public name from its module the first time it is used, then keep it here."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
