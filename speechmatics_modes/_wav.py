"""WAV headers and audio magic bytes: what a file says about its samples, in pure Python.

Both sides need this: the client, to stream a WAV file to the real-time API as raw PCM (the
header tells the encoding and rate), and the local server, to decode uploads. Keeping it free of
numpy lets the client use it without the ``local`` extra.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from speechmatics_modes._exceptions import AudioSourceError

__all__ = [
    "NOT_AUDIO",
    "SUPPORTED_DESCRIPTION",
    "AudioDecodeError",
    "SampleEncoding",
    "SampleFormat",
    "WavHeader",
    "identify_non_wav",
    "parse_wav_header",
]

SampleEncoding = Literal["int", "float", "mulaw"]

NOT_AUDIO = "data that is not audio in any format we recognise"
"""What :func:`identify_non_wav` calls bytes with no known header (raw PCM looks like this)."""

SUPPORTED_DESCRIPTION = "WAV (integer PCM, IEEE float or mu-law) always works"
"""Said after every refusal to decode: MP3, FLAC and others decode on the server only with PyAV."""

_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_MULAW = 0x0007
_FORMAT_EXTENSIBLE = 0xFFFE
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


class AudioDecodeError(AudioSourceError):
    """The audio is not in a form we can decode (or is not audio at all); the message names it."""


@dataclass(frozen=True, slots=True)
class SampleFormat:
    """How samples are laid out in a byte stream."""

    encoding: SampleEncoding
    """Signed integer PCM (unsigned for 8-bit, as WAV defines it), IEEE float, or G.711 mu-law."""
    sample_width: int
    """Bytes per sample of one channel."""
    channels: int
    """Interleaved channels; mixed down to mono by averaging."""
    sample_rate: int
    """Frames per second."""

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame (one sample of every channel)."""
        return self.sample_width * self.channels

    def describe(self) -> str:
        """Return a short human description, e.g. ``"16-bit int, 2 ch, 44100 Hz"``."""
        bits = self.sample_width * 8
        return f"{bits}-bit {self.encoding}, {self.channels} ch, {self.sample_rate} Hz"


@dataclass(frozen=True, slots=True)
class WavHeader:
    """What the header of a WAV file says about its samples."""

    sample_format: SampleFormat
    data_offset: int
    """Byte offset of the first sample."""
    data_size: int | None
    """Bytes of sample data, or ``None`` when the writer did not know (read to the end)."""


_MAGICS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"ID3", "MP3 (ID3 tag)"),
    (0, b"fLaC", "FLAC"),
    (0, b"OggS", "Ogg (Vorbis, Opus or FLAC)"),
    (4, b"ftyp", "MP4/M4A"),
    (0, b"\x1a\x45\xdf\xa3", "WebM/Matroska"),
    (0, b"#!AMR", "AMR"),
    (0, b".snd", "Sun/NeXT AU"),
    (0, b"\x30\x26\xb2\x75", "ASF/WMA"),
)


def identify_non_wav(head: bytes) -> str | None:
    """Name the format of ``head`` when it is recognisably not WAV; ``None`` if it may be WAV.

    Args:
        head: The first bytes of the audio (16 are enough).
    """
    if head[:4] in (b"RIFF", b"RF64"):
        return None if head[8:12] in (b"WAVE", b"") else f"RIFF {head[8:12]!r} (not WAVE)"
    if len(head) < 4 and b"RIFF".startswith(head[:4]):
        return None
    for offset, magic, name in _MAGICS:
        if head[offset : offset + len(magic)] == magic:
            return name
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "MPEG audio frames (MP3 or AAC)"
    return NOT_AUDIO


def _unsupported(source: str, what: str) -> AudioDecodeError:
    return AudioDecodeError(f"{source}: found {what}; {SUPPORTED_DESCRIPTION}")


def parse_wav_header(head: bytes, *, source: str = "audio") -> WavHeader | None:
    """Read the header of a WAV file from its first bytes.

    Chunks other than ``fmt`` and ``data`` (``LIST``, ``fact``, ``bext``...) are skipped,
    including the pad byte after odd-sized chunks.

    Args:
        head: A prefix of the file.
        source: Names the audio in error messages.

    Returns:
        The header, or ``None`` when ``head`` ends before the ``data`` chunk starts.

    Raises:
        AudioDecodeError: Not WAV, or a WAV encoding we cannot decode.
    """
    other = identify_non_wav(head[:16])
    if other is not None:
        raise _unsupported(source, other)
    if len(head) < 12:
        return None
    position = 12
    sample_format: SampleFormat | None = None
    while position + 8 <= len(head):
        chunk_id = head[position : position + 4]
        (chunk_size,) = struct.unpack_from("<I", head, position + 4)
        body = position + 8
        if chunk_id == b"data":
            if sample_format is None:
                raise AudioDecodeError(f"{source}: WAV data chunk comes before its fmt chunk")
            size = None if chunk_size in _UNKNOWN_SIZES else chunk_size
            return WavHeader(sample_format, body, size)
        if chunk_id == b"fmt ":
            if body + chunk_size > len(head):
                return None
            sample_format = _parse_fmt(head[body : body + chunk_size], source)
        position = body + chunk_size + (chunk_size & 1)
    return None


def _parse_fmt(fmt: bytes, source: str) -> SampleFormat:
    if len(fmt) < 16:
        raise AudioDecodeError(f"{source}: WAV fmt chunk too short ({len(fmt)} bytes)")
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _FORMAT_EXTENSIBLE:
        if len(fmt) < 26:
            raise AudioDecodeError(f"{source}: WAVE_FORMAT_EXTENSIBLE fmt chunk too short")
        (tag,) = struct.unpack_from("<H", fmt, 24)
    if channels == 0 or rate == 0 or block_align == 0 or block_align % channels:
        raise AudioDecodeError(
            f"{source}: WAV header is inconsistent ({channels} channels, {rate} Hz, "
            f"block align {block_align})"
        )
    width = block_align // channels
    encoding = _sample_encoding(tag, width, bits)
    if encoding is None:
        raise _unsupported(source, f"WAV with format tag 0x{tag:04X}, {bits}-bit samples")
    return SampleFormat(encoding, width, channels, rate)


def _sample_encoding(tag: int, width: int, bits: int) -> SampleEncoding | None:
    if tag == _FORMAT_PCM and width in (1, 2, 3, 4) and 0 < bits <= width * 8:
        return "int"
    if tag == _FORMAT_FLOAT and width in (4, 8):
        return "float"
    if tag == _FORMAT_MULAW and width == 1:
        return "mulaw"
    return None
