from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from speechmatics_modes import AudioSourceError
from speechmatics_modes.local._audio import (
    AudioDecodeError,
    PcmConverter,
    SampleFormat,
    StreamConverter,
    WavStreamConverter,
    convert_file_to_engine_pcm,
    parse_wav_header,
)

Signal = npt.NDArray[np.float64]


def tone(rate: int, seconds: float, frequency: float = 1000.0, amplitude: float = 0.5) -> Signal:
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(int(rate * seconds)) / rate)


def sweep(rate: int, seconds: float, low: float = 100.0, high: float = 3500.0) -> Signal:
    times = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * (low * times + (high - low) * times**2 / (2 * seconds))
    return 0.5 * np.sin(phase)


def s16(signal: Signal) -> bytes:
    return np.round(signal * 32767).astype("<i2").tobytes()


def samples_of(pcm: bytes) -> Signal:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768


def rms(signal: Signal) -> float:
    return float(np.sqrt(np.mean(signal**2)))


def wav_bytes(
    fmt_body: bytes, data: bytes, *, extra_chunks: bytes = b"", data_size: int | None = None
) -> bytes:
    size = len(data) if data_size is None else data_size
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt_body))
        + fmt_body
        + extra_chunks
        + b"data"
        + struct.pack("<I", size)
        + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_chunk(tag: int, channels: int, rate: int, width: int, *, extensible: bool = False) -> bytes:
    block_align = channels * width
    base = struct.pack("<HHIIHH", tag, channels, rate, rate * block_align, block_align, width * 8)
    if not extensible:
        return base
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    extension = struct.pack("<HHIH", 22, width * 8, 0, tag) + guid_tail
    return struct.pack("<H", 0xFFFE) + base[2:] + extension


def convert_bytes(tmp_path: Path, data: bytes) -> tuple[Signal, float]:
    src, dst = tmp_path / "in.wav", tmp_path / "out.raw"
    src.write_bytes(data)
    info = convert_file_to_engine_pcm(src, dst)
    return samples_of(dst.read_bytes()), info.duration


def test_16k_mono_s16_passes_through_bit_exact(tmp_path: Path) -> None:
    pcm = s16(sweep(16_000, 1.0))
    src, dst = tmp_path / "in.wav", tmp_path / "out.raw"
    with wave.open(str(src), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        writer.writeframes(pcm)
    info = convert_file_to_engine_pcm(src, dst)
    assert dst.read_bytes() == pcm
    assert info.duration == pytest.approx(1.0)
    assert info.output_samples == 16_000
    assert not info.truncated


@pytest.mark.parametrize("rate", [8_000, 11_025, 22_050, 32_000, 44_100, 48_000, 96_000])
@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2])
def test_integer_pcm_at_any_rate_becomes_the_same_tone(
    tmp_path: Path, rate: int, width: int, channels: int
) -> None:
    signal = tone(rate, 0.5)
    if width == 1:
        frames = np.round(signal * 127 + 128).astype(np.uint8).tobytes()
    else:
        scaled = np.round(signal * (2 ** (8 * width - 1) - 1)).astype(np.int64)
        frames = b"".join(int(v).to_bytes(width, "little", signed=True) for v in scaled)
    interleaved = b"".join(frames[i : i + width] * channels for i in range(0, len(frames), width))
    output, duration = convert_bytes(
        tmp_path, wav_bytes(fmt_chunk(1, channels, rate, width), interleaved)
    )
    assert duration == pytest.approx(0.5, abs=1 / rate)
    assert len(output) == round(len(signal) * 16_000 / rate)
    expected = tone(16_000, len(output) / 16_000)
    middle = slice(200, -200)
    tolerance = 0.02 if width == 1 else 0.001
    assert rms(output[middle] - expected[middle]) < tolerance


@pytest.mark.parametrize("width", [4, 8])
@pytest.mark.parametrize("extensible", [False, True])
def test_float_wav_and_extensible_wrapper(tmp_path: Path, width: int, extensible: bool) -> None:
    signal = sweep(16_000, 0.5)
    data = signal.astype("<f4" if width == 4 else "<f8").tobytes()
    output, _ = convert_bytes(
        tmp_path, wav_bytes(fmt_chunk(3, 1, 16_000, width, extensible=extensible), data)
    )
    assert np.max(np.abs(output - signal)) < 1.5 / 32768


def test_stereo_is_mixed_down_by_averaging(tmp_path: Path) -> None:
    left, right = tone(16_000, 0.25, 440), tone(16_000, 0.25, 880)
    interleaved = np.column_stack((left, right)).ravel()
    output, _ = convert_bytes(tmp_path, wav_bytes(fmt_chunk(1, 2, 16_000, 2), s16(interleaved)))
    assert np.max(np.abs(output - (left + right) / 2)) < 2 / 32768


def test_mulaw_decodes_to_g711_values(tmp_path: Path) -> None:
    # G.711 reference points: 0xFF and 0x7F are zero, 0x80 is +32124, 0x00 is -32124.
    codes = bytes([0xFF, 0x7F, 0x80, 0x00, 0xF0])
    output, _ = convert_bytes(tmp_path, wav_bytes(fmt_chunk(7, 1, 16_000, 1), codes))
    assert list(np.round(output * 32768).astype(int)) == [0, 0, 32124, -32124, 120]


def test_odd_chunks_before_data_are_skipped_with_their_pad_byte(tmp_path: Path) -> None:
    pcm = s16(tone(16_000, 0.1))
    extra = b"LIST" + struct.pack("<I", 5) + b"INFO!" + b"\x00"
    extra += b"fact" + struct.pack("<I", 4) + struct.pack("<I", 1600)
    output, _ = convert_bytes(
        tmp_path, wav_bytes(fmt_chunk(1, 1, 16_000, 2), pcm, extra_chunks=extra)
    )
    assert np.array_equal(output, samples_of(pcm))


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_streaming_recorders_unknown_data_size_reads_to_eof(tmp_path: Path, declared: int) -> None:
    pcm = s16(tone(16_000, 0.3))
    output, duration = convert_bytes(
        tmp_path, wav_bytes(fmt_chunk(1, 1, 16_000, 2), pcm, data_size=declared)
    )
    assert duration == pytest.approx(0.3)
    assert np.array_equal(output, samples_of(pcm))


def test_truncated_file_uses_what_is_there_and_says_so(tmp_path: Path) -> None:
    pcm = s16(tone(16_000, 0.2)) + b"\x01"  # and half a sample
    src, dst = tmp_path / "in.wav", tmp_path / "out.raw"
    src.write_bytes(wav_bytes(fmt_chunk(1, 1, 16_000, 2), pcm, data_size=len(pcm) * 10))
    info = convert_file_to_engine_pcm(src, dst)
    assert info.truncated
    assert info.input_frames == 3_200
    assert dst.read_bytes() == pcm[:-1]


def test_trailing_chunks_after_data_are_not_audio(tmp_path: Path) -> None:
    pcm = s16(tone(16_000, 0.1))
    data = wav_bytes(fmt_chunk(1, 1, 16_000, 2), pcm) + b"LIST" + struct.pack("<I", 4) + b"junk"
    output, _ = convert_bytes(tmp_path, data)
    assert np.array_equal(output, samples_of(pcm))


def test_large_files_convert_in_blocks_matching_whole_conversion(tmp_path: Path) -> None:
    signal = sweep(44_100, 15.0)  # 1.3 MB: more than one read block
    whole = PcmConverter(SampleFormat("int", 2, 1, 44_100))
    expected = whole.convert(s16(signal)) + whole.finish()
    src, dst = tmp_path / "in.wav", tmp_path / "out.raw"
    src.write_bytes(wav_bytes(fmt_chunk(1, 1, 44_100, 2), s16(signal)))
    convert_file_to_engine_pcm(src, dst)
    assert dst.read_bytes() == expected


@pytest.mark.parametrize(
    ("head", "named"),
    [
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "MP3"),
        (b"\xff\xfb\x90\x00" + bytes(12), "MPEG audio"),
        (b"fLaC\x00\x00\x00\x22", "FLAC"),
        (b"OggS\x00\x02" + bytes(10), "Ogg"),
        (b"\x00\x00\x00\x20ftypM4A " + bytes(4), "MP4/M4A"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "WebM/Matroska"),
        (b"FORM\x00\x00\x00\x00AIFFCOMM", "AIFF"),
        (b"#!AMR\n" + bytes(10), "AMR"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "not WAVE"),
        (b"hello, this is text not sound", "not audio"),
    ],
)
def test_other_formats_are_named_in_the_error(tmp_path: Path, head: bytes, named: str) -> None:
    src = tmp_path / "upload.bin"
    src.write_bytes(head + bytes(100))
    with pytest.raises(AudioDecodeError) as caught:
        convert_file_to_engine_pcm(src, tmp_path / "out.raw")
    message = str(caught.value)
    assert named in message
    assert "WAV" in message  # says what would work
    assert "upload.bin" in message
    assert isinstance(caught.value, AudioSourceError)


def test_unsupported_wav_encoding_is_named(tmp_path: Path) -> None:
    adpcm = fmt_chunk(2, 1, 16_000, 1)
    with pytest.raises(AudioDecodeError, match="0x0002"):
        convert_bytes(tmp_path, wav_bytes(adpcm, bytes(100)))


def test_empty_file_and_missing_data_chunk(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="empty"):
        convert_bytes(tmp_path, b"")
    header_only = wav_bytes(fmt_chunk(1, 1, 16_000, 2), b"")[:-8]
    with pytest.raises(AudioDecodeError, match="no data chunk"):
        convert_bytes(tmp_path, header_only)


def test_header_parser_asks_for_more_bytes_until_data_starts() -> None:
    data = wav_bytes(fmt_chunk(1, 1, 16_000, 2), bytes(32))
    data_offset = len(data) - 32
    assert parse_wav_header(data[: data_offset - 1]) is None
    header = parse_wav_header(data[:data_offset])
    assert header is not None
    assert header.data_offset == data_offset
    assert header.data_size == 32


def split_at_random(data: bytes, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    pieces, position = [], 0
    while position < len(data):
        step = int(rng.integers(1, 700))
        pieces.append(data[position : position + step])
        position += step
    return pieces


@pytest.mark.parametrize("rate", [8_000, 16_000, 22_050, 44_100, 48_000])
@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("pcm_s16le", s16),
        ("pcm_f32le", lambda signal: signal.astype("<f4").tobytes()),
    ],
)
def test_stream_converter_chunking_does_not_change_output(
    rate: int, encoding: str, encode: object
) -> None:
    assert callable(encode)
    data: bytes = encode(sweep(rate, 1.0))
    whole = StreamConverter(encoding, rate)  # type: ignore[arg-type]
    expected = whole.convert(data) + whole.finish()
    chunked = StreamConverter(encoding, rate)  # type: ignore[arg-type]
    pieces = [chunked.convert(piece) for piece in split_at_random(data, seed=rate)]
    assert b"".join(pieces) + chunked.finish() == expected
    assert len(expected) // 2 == round(rate * 16_000 / rate)


@pytest.mark.parametrize("rate", [8_000, 11_025, 44_100, 48_000])
def test_resampled_sweep_matches_the_sweep_sampled_at_16k(rate: int) -> None:
    converter = StreamConverter("pcm_f32le", rate)
    data = sweep(rate, 1.0, high=3_500).astype("<f4").tobytes()
    output = samples_of(converter.convert(data) + converter.finish())
    expected = sweep(16_000, 1.0, high=3_500)
    middle = slice(400, -400)
    assert len(output) == len(expected)
    assert rms(output[middle] - expected[middle]) < 0.01 * rms(expected)


def test_downsampling_removes_content_above_the_new_nyquist() -> None:
    alias_prone = tone(48_000, 1.0, frequency=12_000)  # would alias to 4 kHz at 16 kHz
    converter = StreamConverter("pcm_f32le", 48_000)
    output = samples_of(converter.convert(alias_prone.astype("<f4").tobytes()) + converter.finish())
    assert rms(output[200:-200]) < 0.001


def test_mulaw_stream_and_split_samples_of_s16() -> None:
    converter = StreamConverter("mulaw", 8_000)
    assert len(converter.convert(bytes([0xFF]) * 8_000) + converter.finish()) == 32_000
    s16_stream = StreamConverter("pcm_s16le", 16_000)
    assert s16_stream.convert(b"\x01") == b""
    assert s16_stream.convert(b"\x02\x03") == b"\x01\x02"


def test_unknown_raw_encoding_is_refused() -> None:
    with pytest.raises(AudioDecodeError, match="pcm_s24le"):
        StreamConverter("pcm_s24le", 16_000)  # type: ignore[arg-type]


def test_wav_stream_converter_handles_header_split_anywhere() -> None:
    signal = sweep(22_050, 0.5)
    data = wav_bytes(fmt_chunk(1, 2, 22_050, 2), s16(np.repeat(signal, 2)))
    expected_converter = PcmConverter(SampleFormat("int", 2, 2, 22_050))
    expected = expected_converter.convert(s16(np.repeat(signal, 2))) + expected_converter.finish()
    stream = WavStreamConverter()
    output = b"".join(stream.convert(piece) for piece in split_at_random(data, seed=1))
    assert output + stream.finish() == expected
    assert stream.sample_format == SampleFormat("int", 2, 2, 22_050)


def test_wav_stream_converter_rejects_other_formats_and_short_streams() -> None:
    with pytest.raises(AudioDecodeError, match="FLAC"):
        WavStreamConverter().convert(b"fLaC" + bytes(40))
    stream = WavStreamConverter()
    stream.convert(b"RIFF\x00\x00")
    with pytest.raises(AudioDecodeError, match="header"):
        stream.finish()
