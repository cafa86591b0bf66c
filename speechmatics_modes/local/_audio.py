"""Everything between audio bytes on the wire and the engine's 16 kHz mono s16le.

The local server accepts what a client would send the real service, but its engine takes one
form only (:data:`~speechmatics_modes.local._engine.ENGINE_SAMPLE_RATE`, mono, 16-bit). This
module decodes WAV (integer PCM 8/16/24/32-bit, IEEE float 32/64-bit, mu-law, and
``WAVE_FORMAT_EXTENSIBLE`` wrapping any of those; any channel count; any rate) and raw
real-time streams, mixes down to mono and resamples.

Decisions a reader would otherwise have to rediscover:

* **Everything streams.** Files are converted in blocks and real-time audio chunk by chunk, with
  the same :class:`PcmConverter`, so a 1 GB upload costs a few MB of memory and a chunk that
  splits a sample or a frame is simply carried over to the next one.
* **Resampling is windowed-sinc (Kaiser) evaluated at exact rational positions.** Output sample
  ``k`` sits at input position ``k * rate / 16000`` computed in integers, so there is no drift
  over hours, and the filter keeps its history across chunks, so chunk boundaries leave no
  clicks. Linear interpolation would alias badly when downsampling (48 kHz -> 16 kHz) and
  muffle upsampling; ASR accuracy drops with both.
* **Truncated files are used as far as they go.** A ``data`` size larger than the file (a
  recorder that crashed, or one that wrote 0 or ``0xFFFFFFFF`` because it streamed) means "read
  to the end of the file"; a partial last frame is dropped. :attr:`AudioInfo.truncated` tells the
  caller, who may log it; refusing such files would only hide speech that is there.
* **Compressed files go to PyAV, chosen by magic bytes.** A batch upload, or a real-time
  ``type: file`` stream, whose first bytes say MP3, AAC, FLAC, Ogg, MP4/M4A or WebM is decoded
  by :mod:`~speechmatics_modes.local._av` when PyAV is installed (it comes with
  faster-whisper); WAV never needs it.
* **Formats we cannot decode are named**, from their magic bytes, so the error tells the user
  what they sent (MP3, FLAC, Ogg, MP4, WebM, AIFF, AMR, or not audio at all), why it cannot be
  decoded, and what to send.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from speechmatics_modes._wav import (
    SUPPORTED_DESCRIPTION,
    AudioDecodeError,
    SampleEncoding,
    SampleFormat,
    WavHeader,
    identify_non_wav,
    parse_wav_header,
)
from speechmatics_modes.local._engine import ENGINE_SAMPLE_RATE

if TYPE_CHECKING:
    from speechmatics_modes.local._av import PyavStreamDecoder

__all__ = [
    "AudioDecodeError",
    "AudioInfo",
    "FileStreamConverter",
    "PcmConverter",
    "RawEncoding",
    "SampleFormat",
    "StreamConverter",
    "WavHeader",
    "WavStreamConverter",
    "cannot_split",
    "convert_file_to_engine_pcm",
    "identify_non_wav",
    "parse_wav_header",
    "pyav_demuxer",
    "wav_channels",
]

RawEncoding = Literal["pcm_s16le", "pcm_f32le", "mulaw"]
"""The encodings the real-time API accepts for ``audio_format: {"type": "raw"}``."""

Samples = npt.NDArray[np.float64]

_MAX_HEADER_BYTES = 16 * 1024 * 1024
_FILE_BLOCK_BYTES = 1024 * 1024
_MAGIC_BYTES = 16
_MPEG_FRAMES = "MPEG audio frames (MP3 or AAC)"

_PYAV_DEMUXERS = {
    "MP3 (ID3 tag)": "mp3",
    "FLAC": "flac",
    "Ogg (Vorbis, Opus or FLAC)": "ogg",
    "MP4/M4A": "mov",
    "WebM/Matroska": "matroska",
}
"""The FFmpeg demuxer for each format :func:`identify_non_wav` names that PyAV decodes."""


_RAW_FORMATS: dict[str, tuple[SampleEncoding, int]] = {
    "pcm_s16le": ("int", 2),
    "pcm_f32le": ("float", 4),
    "mulaw": ("mulaw", 1),
}


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What a conversion read and wrote."""

    source_format: SampleFormat
    input_frames: int
    """Whole frames decoded from the source."""
    output_samples: int
    """16 kHz mono samples written."""
    truncated: bool
    """The source promised more data than it held; what was there was used."""

    @property
    def duration(self) -> float:
        """Seconds of audio in the source."""
        return self.input_frames / self.source_format.sample_rate


def _mulaw_table() -> Samples:
    """Decode every G.711 mu-law byte once; decoding is then a table lookup."""
    codes = ~np.arange(256, dtype=np.int64) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    linear = np.where(codes & 0x80, -magnitude, magnitude)
    return linear.astype(np.float64) / 32768.0


_MULAW = _mulaw_table()


def _decode_samples(
    data: bytes, sample_format: SampleFormat, channel: int | None = None
) -> Samples:
    """Turn whole frames into mono floats in [-1, 1): one ``channel``, or all mixed down."""
    width = sample_format.sample_width
    if sample_format.encoding == "mulaw":
        samples = _MULAW[np.frombuffer(data, dtype=np.uint8)]
    elif sample_format.encoding == "float":
        samples = np.frombuffer(data, dtype="<f4" if width == 4 else "<f8").astype(np.float64)
    elif width == 1:
        samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 3:
        triplets = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        packed = triplets[:, 0] << 8 | triplets[:, 1] << 16 | triplets[:, 2] << 24
        samples = packed.astype(np.float64) / 2.0**31
    else:
        dtype = "<i2" if width == 2 else "<i4"
        samples = np.frombuffer(data, dtype=dtype).astype(np.float64) / 2.0 ** (8 * width - 1)
    if sample_format.channels > 1:
        frames = samples.reshape(-1, sample_format.channels)
        samples = frames.mean(axis=1) if channel is None else frames[:, channel]
    return samples


def _to_s16le(samples: Samples) -> bytes:
    scaled = np.clip(np.rint(samples * 32768.0), -32768, 32767)
    return scaled.astype("<i2").tobytes()


class _Resampler:
    """Streaming rational-ratio resampler: windowed sinc at exact integer positions.

    Output sample ``k`` lies at input position ``k * down / up`` (``up/down`` is the rate ratio
    in lowest terms), so its fractional offset is one of ``up`` phases; the filter weights of
    every phase are computed once. Input before the first sample is taken as silence, and
    :meth:`finish` pads the end the same way.
    """

    ZERO_CROSSINGS = 16
    """Filter half-length in zero-crossings: enough for a flat passband to ~0.9 Nyquist."""
    KAISER_BETA = 8.6
    """~80 dB stop-band attenuation, below the quantisation noise of 16-bit speech."""
    CUTOFF = 0.92
    """Cut-off as a fraction of the lower Nyquist, leaving room for the transition band."""
    MAX_BATCH = 4096
    """Outputs computed per numpy pass, bounding temporary arrays whatever the chunk size."""

    def __init__(self, input_rate: int, output_rate: int) -> None:
        common = math.gcd(input_rate, output_rate)
        self._up = output_rate // common
        self._down = input_rate // common
        cutoff = self.CUTOFF * min(1.0, self._up / self._down)
        self._half_width = math.ceil(self.ZERO_CROSSINGS / cutoff)
        self._taps = np.arange(-self._half_width + 1, self._half_width + 1, dtype=np.int64)
        self._weights = self._phase_weights(cutoff)
        self._history: Samples = np.zeros(self._half_width, dtype=np.float64)
        self._history_start = -self._half_width
        self._input_total = 0
        self._output_total = 0

    def process(self, samples: Samples) -> Samples:
        """Take more input and return every output sample it makes computable."""
        self._history = np.concatenate((self._history, samples))
        self._input_total += len(samples)
        # Output k needs input up to floor(k*down/up) + half_width, which must exist.
        usable = self._input_total - self._half_width
        return self._emit_until(max(0, -(-usable * self._up // self._down)))

    def finish(self) -> Samples:
        """Return the remaining output: N inputs give ``round(N * up / down)`` outputs in all."""
        wanted = (2 * self._input_total * self._up + self._down) // (2 * self._down)
        self._history = np.concatenate((self._history, np.zeros(self._half_width + 1)))
        return self._emit_until(wanted)

    def _phase_weights(self, cutoff: float) -> Samples:
        phases = np.arange(self._up, dtype=np.float64) / self._up
        offsets = self._taps[np.newaxis, :] - phases[:, np.newaxis]
        relative = offsets / (self._half_width + 1)
        window = np.i0(self.KAISER_BETA * np.sqrt(1.0 - relative**2)) / np.i0(self.KAISER_BETA)
        weights: Samples = cutoff * np.sinc(cutoff * offsets) * window
        return weights

    def _emit_until(self, stop: int) -> Samples:
        pieces = [np.zeros(0, dtype=np.float64)]
        while self._output_total < stop:
            count = min(stop - self._output_total, self.MAX_BATCH)
            positions = np.arange(self._output_total, self._output_total + count, dtype=np.int64)
            numerators = positions * self._down
            centres = numerators // self._up - self._history_start
            indices = centres[:, np.newaxis] + self._taps[np.newaxis, :]
            weights = self._weights[numerators % self._up]
            pieces.append(np.einsum("ij,ij->i", self._history[indices], weights))
            self._output_total += count
        self._drop_consumed_history()
        return np.concatenate(pieces)

    def _drop_consumed_history(self) -> None:
        next_centre = self._output_total * self._down // self._up
        drop = next_centre - self._half_width + 1 - self._history_start
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start += drop


class PcmConverter:
    """Converts a stream of samples in any :class:`SampleFormat` to 16 kHz mono s16le.

    Feed it chunks of any size with :meth:`convert` and call :meth:`finish` once at the end:
    the resampler's last few milliseconds only come out then.
    """

    def __init__(self, sample_format: SampleFormat, channel: int | None = None) -> None:
        self.sample_format = sample_format
        self.channel = channel
        """The one channel to keep (0-based); ``None`` mixes every channel down."""
        self.input_frames = 0
        """Whole frames decoded so far."""
        self._remainder = b""
        self._passthrough = sample_format == SampleFormat("int", 2, 1, ENGINE_SAMPLE_RATE)
        if channel is not None and not 0 <= channel < sample_format.channels:
            raise AudioDecodeError(f"no channel {channel} in {sample_format.describe()}")
        self._resampler = (
            None
            if sample_format.sample_rate == ENGINE_SAMPLE_RATE
            else _Resampler(sample_format.sample_rate, ENGINE_SAMPLE_RATE)
        )

    def convert(self, chunk: bytes) -> bytes:
        """Return the engine PCM that ``chunk`` (plus any carried-over partial frame) makes."""
        data = self._remainder + chunk
        whole = len(data) - len(data) % self.sample_format.frame_bytes
        self._remainder = data[whole:]
        self.input_frames += whole // self.sample_format.frame_bytes
        if self._passthrough:
            return data[:whole]
        samples = _decode_samples(data[:whole], self.sample_format, self.channel)
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        return _to_s16le(samples)

    def finish(self) -> bytes:
        """Return the last output; a trailing partial frame is dropped."""
        self._remainder = b""
        if self._resampler is None:
            return b""
        return _to_s16le(self._resampler.finish())


class StreamConverter(PcmConverter):
    """Converts a real-time ``raw`` audio stream (mono, as the API defines it)."""

    def __init__(self, encoding: RawEncoding, sample_rate: int) -> None:
        """Set up for one session's ``audio_format``.

        Raises:
            AudioDecodeError: An encoding the real-time API does not define, or a rate <= 0.
        """
        if encoding not in _RAW_FORMATS or sample_rate <= 0:
            raise AudioDecodeError(
                f"unsupported raw audio format {encoding!r} at {sample_rate} Hz; "
                f"expected one of {sorted(_RAW_FORMATS)} at a positive rate"
            )
        sample_encoding, width = _RAW_FORMATS[encoding]
        super().__init__(SampleFormat(sample_encoding, width, 1, sample_rate))


class WavStreamConverter:
    """Converts a real-time ``file`` audio stream: WAV bytes arriving in arbitrary chunks."""

    def __init__(self, *, source: str = "audio stream") -> None:
        self._source = source
        self._head = b""
        self._converter: PcmConverter | None = None
        self._data_left: int | None = None

    @property
    def sample_format(self) -> SampleFormat | None:
        """The stream's format once its header has arrived."""
        return None if self._converter is None else self._converter.sample_format

    def convert(self, chunk: bytes) -> bytes:
        """Return the engine PCM for ``chunk``; nothing until the whole header has arrived.

        Raises:
            AudioDecodeError: The stream is not WAV or not a WAV we can decode.
        """
        if self._converter is None:
            return self._start(chunk)
        return self._convert_data(chunk)

    def finish(self) -> bytes:
        """Return the last output.

        Raises:
            AudioDecodeError: The stream ended before its WAV header was complete.
        """
        if self._converter is None:
            raise AudioDecodeError(f"{self._source}: ended inside its WAV header")
        return self._converter.finish()

    def _start(self, chunk: bytes) -> bytes:
        self._head += chunk
        header = parse_wav_header(self._head, source=self._source)
        if header is None:
            if len(self._head) > _MAX_HEADER_BYTES:
                raise AudioDecodeError(f"{self._source}: no WAV data chunk in the first 16 MiB")
            return b""
        self._converter = PcmConverter(header.sample_format)
        self._data_left = header.data_size
        rest = self._head[header.data_offset :]
        self._head = b""
        return self._convert_data(rest)

    def _convert_data(self, chunk: bytes) -> bytes:
        assert self._converter is not None
        if self._data_left is not None:
            chunk = chunk[: self._data_left]
            self._data_left -= len(chunk)
        return self._converter.convert(chunk)


class FileStreamConverter:
    """Converts a real-time ``file`` stream: a whole audio file arriving in arbitrary chunks.

    The first bytes decide: WAV is decoded here, compressed formats by PyAV as they arrive.
    """

    def __init__(self, *, source: str = "audio stream") -> None:
        self._source = source
        self._head = b""
        self._decoder: WavStreamConverter | PyavStreamDecoder | None = None

    def convert(self, chunk: bytes) -> bytes:
        """Return the engine PCM decoded so far; nothing until the format is known.

        Raises:
            AudioDecodeError: Not a format we decode, or damaged.
        """
        if self._decoder is None:
            self._head += chunk
            if len(self._head) < _MAGIC_BYTES:
                return b""
            self._decoder = self._open(self._head)
            chunk, self._head = self._head, b""
        return self._decoder.convert(chunk)

    def finish(self) -> bytes:
        """Return the last output.

        Raises:
            AudioDecodeError: The stream ended before it was audio, or is damaged.
        """
        if self._decoder is None:
            if not self._head:
                raise AudioDecodeError(f"{self._source}: no audio arrived before EndOfStream")
            self._decoder = self._open(self._head)
            return self._decoder.convert(self._head) + self._decoder.finish()
        return self._decoder.finish()

    def close(self) -> None:
        """Release the decoder (its thread, for compressed formats)."""
        if self._decoder is not None and not isinstance(self._decoder, WavStreamConverter):
            self._decoder.close()

    def _open(self, head: bytes) -> WavStreamConverter | PyavStreamDecoder:
        demuxer = pyav_demuxer(head)
        if demuxer is None:
            return WavStreamConverter(source=self._source)
        found = identify_non_wav(head) or demuxer
        decoder_class = _pyav_stream_decoder(found, self._source)
        return decoder_class(found=found, demuxer=demuxer, source=self._source)


def _pyav_stream_decoder(found: str, source: str) -> type[PyavStreamDecoder]:
    try:
        from speechmatics_modes.local._av import PyavStreamDecoder
    except ModuleNotFoundError as exc:
        if exc.name != "av":
            raise
        raise _needs_pyav(source, found) from exc
    return PyavStreamDecoder


def _needs_pyav(source: str, found: str) -> AudioDecodeError:
    return AudioDecodeError(
        f"{source}: found {found}, which needs PyAV to decode and PyAV is not installed "
        f"(pip install av, or the 'local' extra); {SUPPORTED_DESCRIPTION}"
    )


def pyav_demuxer(head: bytes) -> str | None:
    """The FFmpeg demuxer for a file starting with ``head`` if PyAV should decode it, else None.

    MPEG frame sync starts both MP3 and ADTS AAC streams; the layer bits, always 0 in ADTS,
    tell them apart.
    """
    found = identify_non_wav(head[:_MAGIC_BYTES])
    if found == _MPEG_FRAMES:
        return "aac" if head[1] & 0x06 == 0 else "mp3"
    return None if found is None else _PYAV_DEMUXERS.get(found)


def convert_file_to_engine_pcm(src: Path, dst: Path, channel: int | None = None) -> AudioInfo:
    """Convert an audio file to raw 16 kHz mono s16le, in blocks (memory does not grow with size).

    WAV is decoded here; MP3, FLAC, Ogg, M4A and WebM by PyAV (see :func:`pyav_demuxer`).

    Args:
        src: The uploaded file.
        dst: Where to write the raw PCM (overwritten).
        channel: Keep only this channel of a multichannel WAV (0-based; channel diarization);
            ``None`` mixes the channels down.

    Returns:
        What was read and written; ``truncated`` if the file held less than its header said.

    Raises:
        AudioDecodeError: Not a file we can decode (the message names what it is instead and
            why it cannot be decoded).
    """
    with src.open("rb") as reader:
        head = reader.read(_MAGIC_BYTES)
    demuxer = pyav_demuxer(head)
    if demuxer is not None and channel is None:
        return _convert_with_pyav(src, dst, head, demuxer)
    if demuxer is not None:
        raise cannot_split(src.name)
    return _convert_wav(src, dst, channel)


def wav_channels(src: Path) -> int | None:
    """How many channels a WAV file has, read from its header alone (nothing is converted).

    Returns:
        ``None`` for a format PyAV decodes: only its conversion tells.

    Raises:
        AudioDecodeError: Neither a WAV file nor a format PyAV decodes.
    """
    with src.open("rb") as reader:
        if pyav_demuxer(reader.read(_MAGIC_BYTES)) is not None:
            return None
        reader.seek(0)
        return _read_file_header(reader, src.name).sample_format.channels


def cannot_split(source: str) -> AudioDecodeError:
    """Channel diarization of a multichannel file that is not WAV, which is not split here."""
    return AudioDecodeError(
        f"{source}: channel diarization splits WAV files only here; send the channels as WAV"
    )


def _convert_with_pyav(src: Path, dst: Path, head: bytes, demuxer: str) -> AudioInfo:
    found = identify_non_wav(head) or demuxer
    try:
        from speechmatics_modes.local._av import convert_with_pyav
    except ModuleNotFoundError as exc:
        if exc.name != "av":
            raise
        raise _needs_pyav(src.name, found) from exc
    with dst.open("wb") as writer:
        return convert_with_pyav(src, writer, found=found, demuxer=demuxer)


def _convert_wav(src: Path, dst: Path, channel: int | None = None) -> AudioInfo:
    with src.open("rb") as reader, dst.open("wb") as writer:
        header = _read_file_header(reader, src.name)
        reader.seek(header.data_offset)
        converter = PcmConverter(header.sample_format, channel)
        left = header.data_size
        block_bytes = _FILE_BLOCK_BYTES - _FILE_BLOCK_BYTES % header.sample_format.frame_bytes
        output_bytes = 0
        while left is None or left > 0:
            block = reader.read(block_bytes if left is None else min(block_bytes, left))
            if not block:
                break
            if left is not None:
                left -= len(block)
            output_bytes += writer.write(converter.convert(block))
        output_bytes += writer.write(converter.finish())
    return AudioInfo(
        source_format=header.sample_format,
        input_frames=converter.input_frames,
        output_samples=output_bytes // 2,
        truncated=bool(left),
    )


def _read_file_header(reader: BinaryIO, source: str) -> WavHeader:
    head = reader.read(64 * 1024)
    if not head:
        raise AudioDecodeError(f"{source}: the file is empty; {SUPPORTED_DESCRIPTION}")
    while True:
        header = parse_wav_header(head, source=source)
        if header is not None:
            return header
        more = reader.read(len(head))
        if not more or len(head) > _MAX_HEADER_BYTES:
            raise AudioDecodeError(f"{source}: WAV file has no data chunk")
        head += more
