"""Compressed audio (MP3, FLAC, Ogg, M4A, WebM) decoded with PyAV, in batch and real-time.

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

import io
import threading
from pathlib import Path
from typing import BinaryIO

import av
import av.error
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame

from speechmatics_modes._wav import AudioDecodeError, SampleEncoding, SampleFormat
from speechmatics_modes.local._audio import AudioInfo
from speechmatics_modes.local._engine import ENGINE_SAMPLE_RATE

__all__ = ["PyavStreamDecoder", "convert_with_pyav"]


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
        raise _undecodable(src.name, found, f"FFmpeg: {exc.strerror}; the file is damaged") from exc


def _undecodable(name: str, found: str, why: str) -> AudioDecodeError:
    return AudioDecodeError(
        f"{name}: found {found}, but it cannot be decoded ({why}); WAV (integer PCM, "
        "IEEE float or mu-law) always works"
    )


def _decode(src: Path, writer: BinaryIO, *, found: str, demuxer: str) -> AudioInfo:
    with av.open(str(src), format=demuxer, metadata_errors="replace") as container:
        if not container.streams.audio:
            raise _undecodable(src.name, found, "it holds no audio stream")
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
        raise _undecodable(src.name, found, "not one frame of audio in it decodes")
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


class _Pipe:
    """Bytes written by the event loop, read (blocking) by FFmpeg's demuxer in a thread."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._ended = False
        self._aborted = False
        self._ready = threading.Condition()

    def write(self, chunk: bytes) -> None:
        with self._ready:
            self._data += chunk
            self._ready.notify()

    def end(self, *, abort: bool = False) -> None:
        """No more bytes: reads drain what is left (or, aborted, stop at once)."""
        with self._ready:
            self._ended = True
            self._aborted = abort
            self._ready.notify()

    def read(self, size: int = -1) -> bytes:
        with self._ready:
            self._ready.wait_for(lambda: bool(self._data) or self._ended)
            if self._aborted:
                return b""
            size = len(self._data) if size < 0 else size
            chunk = bytes(self._data[:size])
            del self._data[:size]
            return chunk


class PyavStreamDecoder:
    """Decodes a compressed file arriving in chunks (real-time ``type: file``) to engine PCM.

    FFmpeg's demuxer pulls bytes, while the session pushes them as frames arrive, so the
    demuxer runs in a thread of its own reading from a pipe; :meth:`convert` hands it the new
    bytes and returns whatever PCM it has decoded so far (output lags input a little).

    MP4/M4A is the exception: its index (``moov``) usually comes after the audio, so it is
    kept until the end of the stream and decoded then (its words come at the end).
    """

    _FINISH_SECONDS = 60.0

    def __init__(self, *, found: str, demuxer: str, source: str) -> None:
        self._found = found
        self._demuxer = demuxer
        self._source = source
        self._pipe = _Pipe()
        self._input: _Pipe | io.BytesIO = self._pipe
        self._whole_file = bytearray() if demuxer == "mov" else None
        self._lock = threading.Lock()
        self._pcm = bytearray()
        self._decoded_frames = 0
        self._error: AudioDecodeError | None = None
        self._thread = threading.Thread(target=self._run, name="pyav-stream", daemon=True)
        if self._whole_file is None:
            self._thread.start()

    def convert(self, chunk: bytes) -> bytes:
        """Pass ``chunk`` to the decoder; return the PCM decoded since the last call.

        Raises:
            AudioDecodeError: The stream is damaged or not the format its first bytes named.
        """
        if self._whole_file is not None:
            self._whole_file += chunk
            return b""
        self._pipe.write(chunk)
        return self._take()

    def finish(self) -> bytes:
        """Decode to the end and return the rest.

        Raises:
            AudioDecodeError: As :meth:`convert`, or no audio decoded at all.
        """
        if self._whole_file is not None:
            self._input = io.BytesIO(self._whole_file)
            self._thread.start()
        self._pipe.end()
        self._thread.join(self._FINISH_SECONDS)
        pcm = self._take()
        if self._decoded_frames == 0:
            raise self._problem("not one frame of audio in it decodes")
        return pcm

    def close(self) -> None:
        """Stop the decoder thread (the session ended before its stream did)."""
        self._pipe.end(abort=True)
        if self._thread.is_alive():
            self._thread.join(self._FINISH_SECONDS)

    def _take(self) -> bytes:
        with self._lock:
            if self._error is not None:
                raise self._error
            pcm = bytes(self._pcm)
            self._pcm.clear()
        return pcm

    def _problem(self, why: str) -> AudioDecodeError:
        return _undecodable(self._source, self._found, why)

    def _run(self) -> None:
        try:
            self._decode()
        except av.error.FFmpegError as exc:
            with self._lock:
                self._error = self._problem(f"FFmpeg: {exc.strerror}; the stream is damaged")
        except AudioDecodeError as exc:
            with self._lock:
                self._error = exc

    def _decode(self) -> None:
        with av.open(self._input, format=self._demuxer, metadata_errors="replace") as container:
            if not container.streams.audio:
                raise self._problem("it holds no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=ENGINE_SAMPLE_RATE)
            for packet in container.demux(stream):
                for frame in packet.decode():
                    self._decoded_frames += frame.samples
                    self._emit(resampler.resample(frame))
            self._emit(resampler.resample(None))

    def _emit(self, frames: list[AudioFrame]) -> None:
        writer = io.BytesIO()
        _write(frames, writer)
        with self._lock:
            self._pcm += writer.getvalue()
