"""Compressed uploads (MP3, FLAC, Ogg, M4A, WebM) decoded with PyAV, for the batch API only.

Only :mod:`speechmatics_modes.local._audio` imports this module, and only once a file's magic
bytes have named one of these formats (it picks the demuxer too), so the server runs, WAV only,
where PyAV is missing.
PyAV comes with faster-whisper, so the ``local`` extra has it.

Decisions a reader would otherwise have to rediscover:

* **The demuxer is chosen from the magic bytes, never probed.** Letting FFmpeg guess would let
  an upload named as audio be opened as a playlist or an image sequence, which can read other
  files; a file whose magic says FLAC is parsed as FLAC or refused.
* **Decoding streams packet by packet** into FFmpeg's resampler (to 16 kHz mono s16), and every
  resampled frame goes straight to the destination file, so memory stays flat however long the
  recording is.
* **Any decoding error rejects the file.** A damaged packet in the middle is corrupt data, not
  a recording that stopped early, and a transcript with a silent hole would look complete.
  A file that simply ends early decodes as far as it goes, as a truncated WAV does: compressed
  formats give no reliable way to tell.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import av
import av.error
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame

from speechmatics_modes._wav import AudioDecodeError, SampleEncoding, SampleFormat
from speechmatics_modes.local._audio import AudioInfo
from speechmatics_modes.local._engine import ENGINE_SAMPLE_RATE

__all__ = ["convert_with_pyav"]


def convert_with_pyav(src: Path, writer: BinaryIO, *, found: str, demuxer: str) -> AudioInfo:
    """Decode ``src`` with ``demuxer`` and write it to ``writer`` as 16 kHz mono s16le.

    Args:
        src: The uploaded file.
        writer: Where the engine PCM goes.
        found: What the magic bytes said the file is, for error messages.
        demuxer: The FFmpeg demuxer to parse it with, chosen from the magic bytes.

    Returns:
        What was decoded (the source format is the decoder's output) and written.

    Raises:
        AudioDecodeError: The file holds no audio stream, no decodable audio, or is corrupt.
    """
    try:
        return _decode(src, writer, found=found, demuxer=demuxer)
    except av.error.FFmpegError as exc:
        raise _undecodable(src, found, f"FFmpeg: {exc.strerror}; the file is damaged") from exc


def _undecodable(src: Path, found: str, why: str) -> AudioDecodeError:
    return AudioDecodeError(
        f"{src.name}: found {found}, but it cannot be decoded ({why}); WAV (integer PCM, "
        "IEEE float or mu-law) always works"
    )


def _decode(src: Path, writer: BinaryIO, *, found: str, demuxer: str) -> AudioInfo:
    with av.open(str(src), format=demuxer, metadata_errors="replace") as container:
        if not container.streams.audio:
            raise _undecodable(src, found, "it holds no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=ENGINE_SAMPLE_RATE)
        input_frames = output_samples = 0
        for packet in container.demux(stream):
            for frame in packet.decode():
                input_frames += frame.samples
                output_samples += _write(resampler.resample(frame), writer)
        output_samples += _write(resampler.resample(None), writer)
        source_format = _decoded_format(stream.codec_context)
    if input_frames == 0:
        raise _undecodable(src, found, "not one frame of audio in it decodes")
    return AudioInfo(
        source_format=source_format,
        input_frames=input_frames,
        output_samples=output_samples,
        truncated=False,
    )


def _write(frames: list[AudioFrame], writer: BinaryIO) -> int:
    """Write resampled frames (packed mono s16) and return how many samples they held."""
    samples = 0
    for frame in frames:
        writer.write(frame.to_ndarray().astype("<i2", copy=False).tobytes())
        samples += frame.samples
    return samples


def _decoded_format(codec: AudioCodecContext) -> SampleFormat:
    """The samples the decoder produced, described the way WAV formats are."""
    float_formats = ("flt", "dbl")
    encoding: SampleEncoding = "float" if codec.format.name.startswith(float_formats) else "int"
    return SampleFormat(encoding, codec.format.bytes, codec.layout.nb_channels, codec.sample_rate)
