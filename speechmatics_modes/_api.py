"""The façade: ``transcribe()``, ``stream()`` and ``transcribe_sync()``.

Their signatures are the contract later work fills in. Until then they raise
:class:`NotImplementedError` rather than pretend to work.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from typing import IO, Any, Literal, TypeAlias

from ._config import AudioFormat, BatchOptions, TranscriptionOptions
from ._models import Mode, StreamEvent, Transcript
from ._settings import Settings

__all__ = ["AudioSource", "stream", "transcribe", "transcribe_sync"]

AudioSource: TypeAlias = (
    "str | os.PathLike[str] | bytes | IO[bytes] | Iterable[bytes] | AsyncIterable[bytes]"
)
"""What ``transcribe`` accepts: a finished file (path, URL, bytes, file object) or live chunks."""

ModeName = Mode | Literal["auto", "batch", "realtime"]


async def transcribe(
    source: AudioSource,
    mode: ModeName = "auto",
    *,
    options: TranscriptionOptions | None = None,
    batch_options: BatchOptions | None = None,
    audio_format: AudioFormat | None = None,
    settings: Settings | None = None,
    timeout: float | None = None,
) -> Transcript:
    """Transcribe ``source``: batch for a finished file, real-time for a live stream.

    Args:
        source: A path, ``http(s)://`` URL, ``bytes`` or binary file object (batch), or a sync or
            async iterable of audio chunks (real-time).
        mode: ``"auto"`` picks by the kind of source; ``"batch"`` or ``"realtime"`` force one.
        options: How to transcribe; fields that the chosen mode lacks are an error.
        batch_options: Job features that only batch offers.
        audio_format: The format of raw PCM chunks (real-time); WAV files describe themselves.
        settings: Where to connect and with which key; read from the environment when omitted.
        timeout: Seconds for the whole operation.

    Raises:
        NotImplementedError: until the façade lands.
    """
    del source, mode, options, batch_options, audio_format, settings, timeout
    raise NotImplementedError("transcribe() arrives with the façade (issue 4)")


def transcribe_sync(source: AudioSource, mode: ModeName = "auto", **kwargs: Any) -> Transcript:
    """:func:`transcribe` for synchronous callers.

    Raises:
        NotImplementedError: until the façade lands.
    """
    del source, mode, kwargs
    raise NotImplementedError("transcribe_sync() arrives with the façade (issue 4)")


def stream(
    source: AudioSource,
    *,
    options: TranscriptionOptions | None = None,
    audio_format: AudioFormat | None = None,
    settings: Settings | None = None,
    timeout: float | None = None,
) -> AbstractAsyncContextManager[AsyncIterator[StreamEvent]]:
    """Transcribe live audio, yielding partials, finals and other events as they arrive.

    Raises:
        NotImplementedError: until the façade lands.
    """
    del source, options, audio_format, settings, timeout
    raise NotImplementedError("stream() arrives with the façade (issue 4)")
