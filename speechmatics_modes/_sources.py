"""Turning what callers hand us into audio: which mode it suits, and the bytes to send.

Finished audio (a path, URL, ``bytes``, a binary file object) suits batch; audio that arrives
over time (an iterable or async iterable of chunks, a microphone) suits real-time. Either can be
forced into the other mode: a file is streamed to the real-time API as raw PCM read from its WAV
header, and a stream is spooled to a temporary WAV file for a batch upload.

What the caller handed over is classified once, by :func:`classify`, into a :class:`Source`;
everything after (mode choice, opening, naming) reads its ``kind`` instead of asking again.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import os
import re
import stat
import struct
import tempfile
from array import array
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TypeVar

import anyio

from speechmatics_modes._config import LARGEST_MESSAGE, AudioFormat
from speechmatics_modes._exceptions import (
    AudioSourceError,
    SpeechmaticsModesError,
    source_failed,
)
from speechmatics_modes._models import Mode
from speechmatics_modes._wav import (
    NOT_AUDIO,
    AudioDecodeError,
    SampleFormat,
    identify_non_wav,
    parse_wav_header,
)

__all__ = [
    "ACCEPTED_SOURCES",
    "ChannelChunk",
    "LiveAudio",
    "Source",
    "SourceKind",
    "Upload",
    "audio_chunks",
    "classify",
    "open_live_audio",
    "open_upload",
    "spooled_channels",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

ACCEPTED_SOURCES = (
    "a file path (str or os.PathLike), an http(s):// URL, bytes, or a binary file object "
    "(batch); or an iterable or async iterable of bytes chunks, or a Microphone, or a dict "
    "of channel name to any of those (real-time)"
)

_HEADER_PROBE_BYTES = 64 * 1024
_SPOOL_BLOCK = 1024 * 1024


SourceKind = Literal["url", "path", "bytes", "file", "chunks", "microphone", "channels"]
"""What a source is: the one question every later step would otherwise ask again."""

_FINISHED: frozenset[SourceKind] = frozenset({"url", "path", "bytes", "file"})


@dataclass(frozen=True)
class Source:
    """The caller's audio, classified once: what kind it is, and the object itself."""

    kind: SourceKind
    value: Any

    @property
    def natural_mode(self) -> Mode:
        """The mode ``mode="auto"`` picks: batch for finished audio, real-time for live audio."""
        return Mode.BATCH if self.kind in _FINISHED else Mode.REALTIME

    @property
    def never_ends(self) -> bool:
        """A live device: it can be streamed, never uploaded as a finished file."""
        if self.kind == "channels":
            return any(channel.never_ends for channel in self.value.values())
        return self.kind == "microphone"

    @property
    def name(self) -> str:
        """How messages call this audio, and the file name a batch job records."""
        if self.kind == "path":
            return str(self.value)
        if self.kind == "file":
            return _file_name(self.value)
        return "the audio bytes"


def _is_microphone(source: object) -> bool:
    """Whether ``source`` is a :class:`~speechmatics_modes.Microphone`.

    Asked only of sources that are no file, URL or bytes, so a batch job never loads the
    microphone module (its class and option models): a short batch process pays for every
    class it creates.
    """
    from speechmatics_modes._microphone import Microphone

    return isinstance(source, Microphone)


def classify(source: object) -> Source:
    """Say what kind of audio ``source`` is, once, for every later step to read.

    Raises:
        AudioSourceError: ``source`` is none of the accepted kinds (the message lists them),
            or a file object open in text mode.
    """
    if isinstance(source, str) and source.lower().startswith(("http://", "https://")):
        return Source("url", source)  # fetched by the service, never downloaded by us
    if isinstance(source, (str, os.PathLike)):
        if source == "":
            raise AudioSourceError("the path is empty: name an audio file")
        return Source("path", source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Source("bytes", source)
    if isinstance(source, io.TextIOBase):
        raise AudioSourceError(
            f"{_describe(source)} is open in text mode: open audio files with mode 'rb'"
        )
    if callable(getattr(source, "read", None)):
        if getattr(source, "closed", False) is True:
            raise AudioSourceError(f"{_describe(source)} is closed: pass it while it is open")
        return Source("file", source)
    if _is_microphone(source):
        return Source("microphone", source)
    if isinstance(source, Mapping):
        return _channels(source)
    if isinstance(source, (AsyncIterable, Iterable)):
        return Source("chunks", source)
    raise AudioSourceError(f"cannot transcribe {_describe(source)}: expected {ACCEPTED_SOURCES}")


def _channels(sources: Mapping[Any, Any]) -> Source:
    """A dict of channel name to audio: one source per channel, each classified."""
    if not sources:
        raise AudioSourceError("the dict of channels is empty: give at least one channel")
    for label in sources:
        if not isinstance(label, str) or not _CHANNEL_LABEL.fullmatch(label):
            raise AudioSourceError(
                f"channel name {label!r} is not allowed: use letters, digits, '.' and '_'"
            )
    channels = {label: classify(source) for label, source in sources.items()}
    nested = [label for label, channel in channels.items() if channel.kind == "channels"]
    if nested:
        raise AudioSourceError(f"channel {nested[0]!r} is itself a dict of channels")
    return Source("channels", channels)


_CHANNEL_LABEL = re.compile(r"[A-Za-z0-9._]+")
"""What the service accepts as a channel label."""


def _describe(source: object) -> str:
    name = getattr(source, "name", None)
    kind = type(source).__name__
    return f"{kind} {name!r}" if isinstance(name, str) else f"a {kind}"


@dataclass(frozen=True)
class Upload:
    """What a batch job is submitted with: an open binary file, or a URL for the service."""

    filename: str
    """The name the service records for the audio (``data_name``)."""
    file: BinaryIO | None = None
    """Read in blocks by the HTTP client while uploading; never read whole into memory."""
    url: str | None = None
    """Given to the service as ``fetch_data``; only ever fetched by the service."""


@asynccontextmanager
async def open_upload(source: Source, audio_format: AudioFormat | None) -> AsyncIterator[Upload]:
    """Open ``source`` for a batch upload; files we opened are closed and spools deleted on exit.

    Raises:
        AudioSourceError: missing file, a directory, empty audio, or a live-only source.
    """
    value = source.value
    if source.kind == "url":
        yield Upload(filename=value.rsplit("/", 1)[-1] or "audio", url=value)
    elif source.kind in ("path", "bytes"):
        async with _opened_file(source) as file:
            name = Path(value).name if source.kind == "path" else "audio.wav"
            async with _upload_of(file, audio_format, name) as upload:
                yield upload
    elif source.kind == "file":
        async with _upload_of(value, audio_format, source.name) as upload:
            yield upload
    elif source.kind == "channels":
        raise AudioSourceError(
            "several channels as separate sources go through real time (mode='realtime' or "
            "'auto'); for batch, give one multichannel file with diarization='channel'"
        )
    else:
        async with _spooled(value, audio_format) as file:
            yield Upload(filename="stream.wav", file=file)


@asynccontextmanager
async def _upload_of(
    file: IO[bytes], audio_format: AudioFormat | None, name: str
) -> AsyncIterator[Upload]:
    """Upload a file as it is; spooled first if it is headerless PCM (as a WAV) or a pipe.

    An upload may be retried, which needs a file that can rewind: a pipe or socket is copied
    to a temporary file first, read in worker threads, so the caller's timeout still holds
    while it sends nothing.
    """
    if _seekable(file):
        head = await _in_thread(_peek, file)
        blocks: Iterator[bytes] = _blocks(file)
    else:  # what was read to look at the header must be sent too
        head = await _in_thread(file.read, _HEADER_PROBE_BYTES)
        blocks = itertools.chain([head], _blocks(file))
    pcm = _is_headerless_pcm(head, audio_format, name)
    if pcm or not _seekable(file):
        async with _spooled(blocks, audio_format if pcm else None) as spool:
            yield Upload(filename=f"{Path(name).stem}.wav" if pcm else name, file=spool)
    else:
        yield Upload(filename=name, file=file)  # type: ignore[arg-type]


def _seekable(file: IO[bytes]) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _blocks(file: IO[bytes]) -> Iterator[bytes]:
    while block := file.read(_SPOOL_BLOCK):
        yield block


def _is_headerless_pcm(head: bytes, given: AudioFormat | None, name: str) -> bool:
    """Whether the file starting with ``head`` is raw PCM without a header (``given`` says so).

    The batch API cannot read headerless PCM. A file with a WAV header goes as it is and its
    header decides how it is read, so an ``audio_format`` that contradicts the header is
    refused: the caller has the wrong file or the wrong idea, and is told so rather than handed
    a transcript of audio read differently than they think. A WAV without a single sample is
    refused as real-time refuses it. Other containers (MP3, FLAC...) go as they are.
    """
    other = identify_non_wav(head[:16])
    if other is not None:
        return given is not None and other == NOT_AUDIO
    try:
        header = parse_wav_header(head, source=name)
    except AudioDecodeError:
        return False  # the service says what it cannot decode, with its own reasons
    if header is None:
        return False
    if len(head) <= header.data_offset:  # the whole file is its header
        raise AudioSourceError(
            f"{name} holds a WAV header and no audio: there is nothing to transcribe"
        )
    if given is not None:
        sample = header.sample_format
        encoding = _RAW_ENCODINGS.get((sample.encoding, sample.sample_width), sample.describe())
        _check_agrees(given, encoding, sample.sample_rate, name)
    return False


def _check_agrees(given: AudioFormat, encoding: str, sample_rate: int, name: str) -> None:
    if (given.encoding, given.sample_rate) != (encoding, sample_rate):
        raise AudioSourceError(
            f"the AudioFormat given ({given.encoding}, {given.sample_rate} Hz) contradicts "
            f"{name}'s WAV header ({encoding}, {sample_rate} Hz): drop audio_format, "
            "the header is authoritative"
        )


def _open_regular_file(path: Path) -> IO[bytes]:
    """Open a path that names a regular file with audio in it (run in a worker thread).

    Anything else is refused before it is opened: opening a FIFO blocks until a writer comes,
    and a device such as ``/dev/zero`` never ends, so neither can be a finished file. Both can
    be streamed: open them yourself and pass the file object, or an iterable of chunks.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AudioSourceError(f"{path}: no such file") from None
    except OSError as exc:
        raise AudioSourceError(f"{path}: cannot read it ({exc.strerror})") from exc
    if stat.S_ISDIR(info.st_mode):
        raise AudioSourceError(f"{path} is a directory, not an audio file")
    if not stat.S_ISREG(info.st_mode):
        raise AudioSourceError(
            f"{path} is {_file_type(info.st_mode)}, not a regular file: to stream from it, open "
            "it yourself and pass the file object, or pass an iterable of its chunks"
        )
    if info.st_size == 0:
        raise AudioSourceError(f"{path} is empty: there is nothing to transcribe")
    try:
        return path.open("rb")
    except OSError as exc:
        raise AudioSourceError(f"{path}: cannot read it ({exc.strerror})") from exc


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Blocking file I/O, off the event loop; a timeout or cancellation does not wait for it.

    A read from a caller's pipe or a stalled network disk can block for ever: the caller's
    ``timeout`` must still end the call, so the worker thread is abandoned rather than awaited.
    """
    return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)


def _peek(file: IO[bytes]) -> bytes:
    """The first bytes from the file's position, leaving the position where it was."""
    start = file.tell()
    head = file.read(_HEADER_PROBE_BYTES)
    file.seek(start)
    return head


def _file_name(file: object) -> str:
    name = getattr(file, "name", None)
    return os.path.basename(name) if isinstance(name, str) and name else "audio.wav"


@asynccontextmanager
async def _spooled(source: Any, audio_format: AudioFormat | None) -> AsyncIterator[BinaryIO]:
    """Write live chunks to a temporary file (a WAV when the chunks are raw PCM), then rewind.

    The batch API needs a finished file; spooling to disk keeps memory flat however long the
    stream, and the file is deleted however the upload ends.
    """
    with tempfile.TemporaryFile(prefix="speechmatics-modes-", suffix=".wav") as spool:
        if audio_format is not None:
            spool.write(_wav_header(audio_format, data_size=0))
        try:
            async for chunk in audio_chunks(source, audio_format):
                await anyio.to_thread.run_sync(spool.write, chunk)
        except SpeechmaticsModesError:
            raise
        except Exception as exc:  # the caller's iterator failed: nothing was uploaded
            raise source_failed(exc, "nothing was uploaded") from exc
        size = spool.tell()
        if audio_format is not None:
            size -= _WAV_HEADER_SIZE
            spool.seek(0)
            spool.write(_wav_header(audio_format, data_size=size))
        if size == 0:
            raise AudioSourceError("the audio stream was empty: there is nothing to transcribe")
        spool.seek(0)
        yield spool


@asynccontextmanager
async def spooled_channels(
    chunks: AsyncIterator[ChannelChunk], audio_format: AudioFormat, labels: Sequence[str]
) -> AsyncIterator[BinaryIO]:
    """Several channels' chunks as one multichannel WAV in a temporary file, then rewound.

    Each channel is spooled to a file of its own as it comes (memory stays flat, and channels
    may arrive in any order and lengths), then the channels are interleaved, in the order of
    ``labels``, into one WAV; a channel that ended early is padded with silence, as a
    multichannel recording would be.

    Raises:
        AudioSourceError: Every channel was empty, or a source failed.
    """
    with ExitStack() as files:
        parts: list[IO[bytes]] = [
            files.enter_context(tempfile.TemporaryFile(prefix="speechmatics-modes-"))
            for _ in labels
        ]
        by_label = dict(zip(labels, parts, strict=True))
        try:
            async for label, chunk in chunks:
                await anyio.to_thread.run_sync(by_label[label].write, chunk)
        except SpeechmaticsModesError:
            raise
        except Exception as exc:  # the caller's iterator failed: nothing was uploaded
            raise source_failed(exc, "nothing was uploaded") from exc
        spool = files.enter_context(
            tempfile.TemporaryFile(prefix="speechmatics-modes-", suffix=".wav")
        )
        await anyio.to_thread.run_sync(_interleave, parts, audio_format, spool)
        spool.seek(0)
        yield spool


def _interleave(parts: list[IO[bytes]], audio_format: AudioFormat, out: IO[bytes]) -> None:
    """Write the channels spooled in ``parts`` to ``out`` as one WAV, frame by frame."""
    width = audio_format.bytes_per_sample
    longest = max(part.tell() for part in parts) // width * width
    if longest == 0:
        raise AudioSourceError("every channel was empty: there is nothing to transcribe")
    count = len(parts)
    out.write(_wav_header(audio_format, data_size=longest * count, channels=count))
    for part in parts:
        part.seek(0)
    silence = _SILENCE[audio_format.encoding]
    block = _SPOOL_BLOCK // width * width
    for offset in range(0, longest, block):
        size = min(block, longest - offset)
        frames = bytearray(size * count)
        for index, part in enumerate(parts):
            data = part.read(size)
            data += silence * (size - len(data))
            for byte in range(width):  # each byte of a sample to its place in the frame
                frames[index * width + byte :: count * width] = data[byte::width]
        out.write(frames)


_SILENCE = {"pcm_s16le": b"\x00", "pcm_f32le": b"\x00", "mulaw": b"\xff"}
"""A byte of silence in each encoding (mu-law's zero level is 0xFF)."""
_WAV_HEADER_SIZE = 44
_WAV_FORMAT_TAGS = {"pcm_s16le": 0x0001, "pcm_f32le": 0x0003, "mulaw": 0x0007}


def _wav_header(audio_format: AudioFormat, *, data_size: int, channels: int = 1) -> bytes:
    """A canonical 44-byte WAV header for raw PCM in ``audio_format`` (mono unless told)."""
    width = audio_format.bytes_per_sample
    rate = audio_format.sample_rate
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_size,
        b"WAVE",
        b"fmt ",
        16,
        _WAV_FORMAT_TAGS[audio_format.encoding],
        channels,
        rate,
        rate * width * channels,
        width * channels,
        width * 8,
        b"data",
        data_size,
    )


async def audio_chunks(
    source: Iterable[Any] | AsyncIterable[Any], audio_format: AudioFormat | None
) -> AsyncIterator[bytes]:
    """Yield the caller's chunks as ``bytes``, whole samples only, checking each one.

    A chunk that splits a sample is not an error (producers cut buffers anywhere): the partial
    sample is carried into the next chunk. A trailing partial sample at the very end is not
    audio and is dropped, with a log line saying so. A chunk larger than a real-time message
    may be (:data:`~speechmatics_modes._config.LARGEST_MESSAGE`) is cut into messages that size.

    Raises:
        AudioSourceError: a chunk is not bytes-like (e.g. ``str``), naming its position.
    """
    width = audio_format.bytes_per_sample if audio_format is not None else 1
    carry = b""
    index = 0
    async for item in _iterate(source):
        chunk = _as_bytes(item, index)
        index += 1
        data = carry + chunk
        whole = len(data) - len(data) % width
        carry = data[whole:]
        for start in range(0, whole, LARGEST_MESSAGE):
            yield data[start : min(whole, start + LARGEST_MESSAGE)]
    if carry:
        logger.warning(
            "the audio ended in the middle of a sample: dropped its last %d byte(s)", len(carry)
        )


async def _iterate(source: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
        return
    iterator = iter(source)
    while True:
        # A sync iterator may block (reading a pipe, a device): never on the event loop.
        item = await _in_thread(_next_or_stop, iterator)
        if item is _STOP:
            return
        yield item


_STOP = object()


def _next_or_stop(iterator: Iterator[Any]) -> Any:
    return next(iterator, _STOP)


def _as_bytes(item: object, index: int) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    raise AudioSourceError(
        f"audio chunk {index} is a {type(item).__name__}, not bytes: yield raw audio bytes "
        "(e.g. 16-bit PCM), not text or numbers"
    )


ChannelChunk = tuple[str, bytes]
"""A chunk of one channel's audio, with the channel's label."""


@dataclass(frozen=True)
class LiveAudio:
    """Audio ready for the real-time API: its raw PCM format and the chunks to send.

    With ``channels``, each chunk is a :data:`ChannelChunk` naming its channel.
    """

    audio_format: AudioFormat
    chunks: AsyncIterator[bytes] | AsyncIterator[ChannelChunk]
    channels: tuple[str, ...] | None = None


@asynccontextmanager
async def open_live_audio(
    source: Source,
    audio_format: AudioFormat | None,
    *,
    pace: float | None,
    split_channels: Sequence[str] | None = None,
) -> AsyncIterator[LiveAudio]:
    """Prepare ``source`` for the real-time API.

    Iterables are passed through (``audio_format`` says what they carry; 16 kHz 16-bit mono
    when omitted). A finished file is read as WAV: its header gives the format, and its samples
    are sent in ``chunk_size`` blocks, at ``pace`` times real time (``None``: as fast as the
    connection takes them).

    Args:
        source: The classified audio.
        audio_format: What raw chunks (or a headerless file) carry; files describe themselves.
        pace: Send a file at this many times real time; ``None`` as fast as acknowledged.
        split_channels: Channel diarization was asked for: a WAV with several channels is
            sent as one channel each, labelled with these names (``channel_1``, ``channel_2``...
            when empty), instead of being refused.

    Raises:
        AudioSourceError: not WAV and no ``audio_format``; a WAV the real-time API cannot take
            as raw PCM; an ``audio_format`` that contradicts the WAV header; a URL; labels
            that do not match the file's channels.
    """
    if source.kind == "url":
        raise AudioSourceError(
            "a URL can only be transcribed in batch mode (the service fetches it): "
            "use mode='batch' or 'auto'"
        )
    if source.natural_mode is Mode.REALTIME:
        own_format = getattr(source.value, "audio_format", None)
        chosen = audio_format or own_format or AudioFormat()
        yield LiveAudio(chosen, audio_chunks(source.value, chosen))
        return
    async with _opened_file(source) as file:
        chosen, data_size, channels, samples = await _file_audio_format(
            file, audio_format, source.name, split=split_channels is not None
        )
        chunks = _file_chunks(file, samples, chosen, data_size, pace, channels)
        labels = _channel_labels(split_channels or (), channels, source.name)
        try:
            if labels is None:
                yield LiveAudio(chosen, chunks)
            else:
                yield LiveAudio(chosen, _deinterleaved(chunks, labels, chosen), labels)
        finally:
            await chunks.aclose()


def _channel_labels(given: Sequence[str], channels: int, name: str) -> tuple[str, ...] | None:
    """The labels of a file's channels when it is split; ``None`` for a mono file."""
    if channels == 1:
        return None
    if not given:
        return tuple(f"channel_{index}" for index in range(1, channels + 1))
    if len(given) != channels:
        raise AudioSourceError(
            f"{name} has {channels} channels but channel_diarization_labels names "
            f"{len(given)}: give one label per channel"
        )
    return tuple(given)


async def _deinterleaved(
    chunks: AsyncIterator[bytes], labels: tuple[str, ...], audio_format: AudioFormat
) -> AsyncIterator[ChannelChunk]:
    """Each chunk of interleaved frames as one chunk per channel, in channel order."""
    width = audio_format.bytes_per_sample
    code = {1: "B", 2: "h", 4: "f"}[width]
    async for chunk in chunks:
        samples = array(code, chunk)
        for index, label in enumerate(labels):
            yield label, samples[index :: len(labels)].tobytes()


@asynccontextmanager
async def _opened_file(source: Source) -> AsyncIterator[IO[bytes]]:
    """A finished source as a binary file: paths opened (and closed), bytes wrapped."""
    if source.kind == "path":
        with await _in_thread(_open_regular_file, Path(source.value)) as file:
            yield file
    elif source.kind == "bytes":
        if not source.value:
            raise AudioSourceError("the audio bytes are empty: there is nothing to transcribe")
        yield io.BytesIO(bytes(source.value))
    else:
        yield source.value


_RAW_ENCODINGS: dict[tuple[str, int], str] = {
    ("int", 2): "pcm_s16le",
    ("float", 4): "pcm_f32le",
    ("mulaw", 1): "mulaw",
}


async def _file_audio_format(
    file: IO[bytes], given: AudioFormat | None, name: str, *, split: bool = False
) -> tuple[AudioFormat, int | None, int, bytes]:
    """Read the WAV header, without seeking, so a pipe streams like a file.

    Returns:
        The format of one channel, the data size, the number of channels (more than one only
        when ``split`` allows it), and the samples read past the header.
    """
    head = await _in_thread(file.read, _HEADER_PROBE_BYTES)
    if not head:
        raise AudioSourceError(f"{name} is empty: there is nothing to transcribe")
    if identify_non_wav(head[:16]) is not None:
        if given is None:
            raise AudioSourceError(
                f"{name} is not a WAV file: to stream raw PCM, pass an AudioFormat saying its "
                "encoding and sample rate; other formats (MP3, FLAC, ...) go through mode='batch'"
            )
        return given, None, 1, head
    try:
        header = parse_wav_header(head, source=name)
    except AudioDecodeError as exc:
        raise AudioSourceError(f"{exc}; or transcribe it with mode='batch'") from exc
    if header is None:
        raise AudioSourceError(f"{name}: the WAV header is truncated (no data chunk)")
    sample = header.sample_format
    channels = sample.channels if split else 1
    detected = _raw_format(sample, name, given, channels)
    return detected, header.data_size, channels, head[header.data_offset :]


def _raw_format(
    sample: SampleFormat, name: str, given: AudioFormat | None, channels: int = 1
) -> AudioFormat:
    """The real-time format of one channel; chunks hold ``channels`` interleaved channels."""
    encoding = _RAW_ENCODINGS.get((sample.encoding, sample.sample_width))
    if encoding is None or sample.channels != channels:
        raise AudioSourceError(
            f"{name} is {sample.describe()}: real-time takes mono 16-bit PCM, 32-bit float or "
            "mu-law (several channels with diarization='channel'); convert it, or transcribe "
            "it with mode='batch'"
        )
    if given is not None:
        _check_agrees(given, encoding, sample.sample_rate, name)
    chunk_size = given.chunk_size if given is not None else _chunk_size(sample)
    return AudioFormat(encoding=encoding, sample_rate=sample.sample_rate, chunk_size=chunk_size)  # type: ignore[arg-type]


def _chunk_size(sample: SampleFormat) -> int:
    """About 100 ms of audio per message: the service's recommended granularity."""
    samples = max(256, math.ceil(sample.sample_rate / 10))
    return samples * sample.sample_width


async def _file_chunks(
    file: IO[bytes],
    already_read: bytes,
    audio_format: AudioFormat,
    data_size: int | None,
    pace: float | None,
    channels: int = 1,
) -> AsyncGenerator[bytes, None]:
    """Whole frames of ``channels`` interleaved channels, at ``pace`` times real time."""
    frame = audio_format.bytes_per_sample * channels
    block = audio_format.chunk_size * channels
    remaining = data_size
    pending = already_read
    sent_seconds = 0.0
    started = anyio.current_time()
    while remaining is None or remaining > 0:
        want = block if remaining is None else min(remaining, block)
        if pending:
            chunk, pending = pending[:want], pending[want:]
        else:
            chunk = await _in_thread(file.read, want)
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        whole = len(chunk) - len(chunk) % frame
        if pace is not None:
            ahead = sent_seconds / pace - (anyio.current_time() - started)
            if ahead > 0:
                await anyio.sleep(ahead)
        sent_seconds += whole / (audio_format.bytes_per_second * channels)
        if whole:
            yield chunk[:whole]
