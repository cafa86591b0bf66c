"""Several sources as the channels of one real-time session (``stream({"agent": a, ...})``).

The service takes up to two channels in one session (``AddChannelAudio``), transcribes each on
its own and tags every result with its channel: one transcript, one connection, words that say
who spoke. Each source is opened as it would be alone, so every kind works per channel (a
file, chunks, a microphone); they must carry the same audio format, since a session has one.

The chunks are sent in turns, one per channel, so no channel races ahead of the others; a
channel whose source ends simply drops out of the rotation while the others go on.

Batch takes one file: the channels are read the same way and uploaded as one multichannel WAV,
which the service's channel diarization splits again under the same labels.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import cast

from speechmatics_modes._config import CHANNEL_DIARIZATION, AudioFormat, TranscriptionOptions
from speechmatics_modes._exceptions import AudioSourceError, ConfigurationError
from speechmatics_modes._sources import (
    ChannelChunk,
    LiveAudio,
    Source,
    Upload,
    open_live_audio,
    open_upload,
    spooled_channels,
)

__all__ = [
    "open_batch_audio",
    "open_channels",
    "open_stream_audio",
    "with_channels",
]


def open_stream_audio(
    source: Source,
    audio_format: AudioFormat | None,
    options: TranscriptionOptions,
    *,
    pace: float | None,
) -> AbstractAsyncContextManager[LiveAudio]:
    """Open ``source`` for a real-time stream.

    A dict opens as channels, and with channel diarization a multichannel file is split into
    its channels; anything else opens as it is.
    """
    if source.kind == "channels":
        return open_channels(source, audio_format, pace=pace)
    split = (
        options.channel_diarization_labels or ()
        if options.diarization in CHANNEL_DIARIZATION
        else None
    )
    return open_live_audio(source, audio_format, pace=pace, split_channels=split)


def open_batch_audio(
    source: Source, audio_format: AudioFormat | None
) -> AbstractAsyncContextManager[Upload]:
    """Open ``source`` for a batch upload: a dict as one multichannel WAV, else as it is."""
    if source.kind == "channels":
        return _channels_upload(source, audio_format)
    return open_upload(source, audio_format)


@asynccontextmanager
async def _channels_upload(
    source: Source, audio_format: AudioFormat | None
) -> AsyncIterator[Upload]:
    """Every channel read as real time would stream it, interleaved into one WAV file.

    Raises:
        AudioSourceError: As :func:`open_channels`, or every channel was empty.
    """
    async with open_channels(source, audio_format, pace=None) as live:
        chunks = cast(AsyncIterator[ChannelChunk], live.chunks)
        labels = live.channels or ()
        async with spooled_channels(chunks, live.audio_format, labels) as file:
            yield Upload(filename="channels.wav", file=file)


def with_channels(options: TranscriptionOptions, labels: tuple[str, ...]) -> TranscriptionOptions:
    """``options`` for a session whose audio comes as the channels ``labels``.

    Channel diarization is what makes the service take several channels, so it is the
    default (``channel_and_speaker`` is kept); labels are the channels' names.

    Raises:
        ConfigurationError: another diarization was asked for, or other labels.
    """
    if options.diarization not in (None, *CHANNEL_DIARIZATION):
        raise ConfigurationError(
            f"several channels need diarization='channel' (or 'channel_and_speaker'), not "
            f"{options.diarization!r}: remove it, or send one source"
        )
    given = options.channel_diarization_labels
    if given is not None and tuple(given) != labels:
        raise ConfigurationError(
            f"channel_diarization_labels {list(given)} do not match the channels "
            f"{list(labels)}: leave them out, the channels name themselves"
        )
    return options.model_copy(
        update={
            "diarization": options.diarization or "channel",
            "channel_diarization_labels": labels,
        }
    )


@asynccontextmanager
async def open_channels(
    source: Source, audio_format: AudioFormat | None, *, pace: float | None
) -> AsyncIterator[LiveAudio]:
    """Open every channel of a ``channels`` source; yield their chunks in turns.

    Raises:
        AudioSourceError: A channel cannot be opened (as alone), is itself split into
            channels, or carries another audio format than the first channel.
    """
    async with AsyncExitStack() as stack:
        opened: dict[str, LiveAudio] = {}
        for label, channel in source.value.items():
            live = await stack.enter_async_context(
                open_live_audio(channel, audio_format, pace=pace)
            )
            opened[label] = live
        formats = {label: live.audio_format for label, live in opened.items()}
        first_label, first = next(iter(formats.items()))
        for label, other in formats.items():
            if (other.encoding, other.sample_rate) != (first.encoding, first.sample_rate):
                raise AudioSourceError(
                    f"channel {label!r} is {other.encoding} at {other.sample_rate} Hz but "
                    f"channel {first_label!r} is {first.encoding} at {first.sample_rate} Hz: "
                    "one session has one audio format"
                )
        yield LiveAudio(first, _in_turns(opened), tuple(opened))


async def _in_turns(opened: dict[str, LiveAudio]) -> AsyncIterator[ChannelChunk]:
    """One chunk of each channel in turn, until every channel has ended."""
    active = {label: live.chunks for label, live in opened.items()}
    while active:
        for label, chunks in list(active.items()):
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                del active[label]
                continue
            assert isinstance(chunk, bytes)  # a channel opened alone is never split further
            yield label, chunk
