"""Compressed audio (MP3, FLAC, Ogg, M4A, WebM) decoded with PyAV: batch uploads, real-time files.

The files are encoded here, with PyAV, from a WAV of real speech, so CI needs nothing more
than the ``local`` extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import anyio
import av
import numpy as np
import numpy.typing as npt
import pytest
from speechmatics import rt
from speechmatics.batch import AsyncClient, JobError, JobStatus, TranscriptionConfig
from speechmatics.batch import Transcript as BatchTranscript

from speechmatics_modes.local import LocalServer
from speechmatics_modes.local._audio import (
    AudioDecodeError,
    FileStreamConverter,
    convert_file_to_engine_pcm,
    pyav_demuxer,
)
from tests.conftest import Clip
from tests.local.conftest import scripted_engine
from tests.local.test_server_batch import plain_words, word_error_rate

Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True)
class Encoding:
    """How to write one test file: container, codec, and the rate and layout it is coded at."""

    suffix: str
    container: str
    codec: str
    rate: int
    layout: str
    experimental: bool = False
    """FFmpeg's own encoder needs ``strict=experimental`` (its Vorbis encoder does)."""


ENCODINGS = [
    Encoding("mp3", "mp3", "libmp3lame", 16_000, "mono"),
    Encoding("flac", "flac", "flac", 16_000, "mono"),
    Encoding("ogg", "ogg", "vorbis", 44_100, "stereo", experimental=True),
    Encoding("m4a", "ipod", "aac", 22_050, "mono"),
    Encoding("webm", "webm", "libopus", 48_000, "stereo"),
]
"""One of each format the batch API decodes besides WAV, at rates and layouts that make the
decoder resample and mix down."""

ADTS = Encoding("aac", "adts", "aac", 16_000, "mono")
"""Raw AAC frames, which start with the same frame sync as MP3."""


def read_wav(path: Path) -> Pcm:
    with wave.open(str(path)) as reader:
        assert (reader.getframerate(), reader.getnchannels()) == (16_000, 1)
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")


def encode(blocks: list[Pcm], path: Path, encoding: Encoding, repeat: int = 1) -> Path:
    """Encode 16 kHz mono blocks (played ``repeat`` times) one block at a time: memory stays
    flat however long the file is."""
    with av.open(str(path), "w", format=encoding.container) as output:
        stream = output.add_stream(encoding.codec, rate=encoding.rate, layout=encoding.layout)
        if encoding.experimental:
            stream.codec_context.options = {"strict": "experimental"}
        resampler = av.AudioResampler(
            format=stream.codec_context.format.name, layout=encoding.layout, rate=encoding.rate
        )
        written = 0

        def write(frames: list[av.AudioFrame]) -> None:
            nonlocal written
            for frame in frames:
                # Explicit timestamps: the MP4 muxer refuses the encoder's flush without them.
                frame.pts, frame.time_base = written, Fraction(1, encoding.rate)
                written += frame.samples
                output.mux(stream.encode(frame))

        for _ in range(repeat):
            for block in blocks:
                frame = av.AudioFrame.from_ndarray(
                    block.reshape(1, -1), format="s16", layout="mono"
                )
                frame.sample_rate = 16_000
                write(resampler.resample(frame))
        write(resampler.resample(None))
        output.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clip(speech_clips: list[Clip]) -> Clip:
    return min(speech_clips, key=lambda clip: abs(clip.duration - 8))


@pytest.fixture(scope="module")
def encoded(clip: Clip, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("encoded")
    pcm = read_wav(clip.path)
    return {
        encoding.suffix: encode([pcm], directory / f"speech.{encoding.suffix}", encoding)
        for encoding in [*ENCODINGS, ADTS]
    }


@pytest.mark.parametrize("encoding", [*ENCODINGS, ADTS], ids=lambda encoding: encoding.suffix)
def test_each_format_converts_to_16k_mono_of_the_same_length(
    encoding: Encoding, encoded: dict[str, Path], clip: Clip, tmp_path: Path
) -> None:
    info = convert_file_to_engine_pcm(encoded[encoding.suffix], tmp_path / "out.raw")
    channels = 2 if encoding.layout == "stereo" else 1
    assert (info.source_format.sample_rate, info.source_format.channels) == (
        encoding.rate,
        channels,
    )
    # Encoders add a few hundred milliseconds of priming and padding at most.
    assert clip.duration <= info.duration < clip.duration + 0.3
    assert info.output_samples == (tmp_path / "out.raw").stat().st_size // 2
    assert abs(info.output_samples / 16_000 - info.duration) < 0.01


@pytest.mark.slow
@pytest.mark.anyio
async def test_every_format_is_transcribed_through_the_batch_sdk(
    encoded: dict[str, Path], clip: Clip, no_leaks: None
) -> None:
    texts: dict[str, str] = {}
    async with (
        LocalServer(engine="whisper") as server,
        AsyncClient(api_key="any", url=server.batch_url) as client,
    ):

        async def transcribe(suffix: str) -> None:
            job = await client.submit_job(
                str(encoded[suffix]), transcription_config=TranscriptionConfig(language="en")
            )
            result = await client.wait_for_completion(job.id, polling_interval=0.2, timeout=60)
            assert isinstance(result, BatchTranscript)
            texts[suffix] = plain_words(result.transcript_text)

        async with anyio.create_task_group() as group:
            for encoding in ENCODINGS:
                group.start_soon(transcribe, encoding.suffix)
    rates = {suffix: word_error_rate(clip.reference, text) for suffix, text in texts.items()}
    # Whisper tiny.en makes ~3 % errors on WAV; lossy coding at these rates costs little more.
    assert all(rate < 0.25 for rate in rates.values()), (rates, texts)


def damaged(path: Path, destination: Path) -> Path:
    """``path`` with every 7th byte after its first 200 overwritten (headers intact)."""
    data = bytearray(path.read_bytes())
    data[200::7] = (
        np.random.default_rng(7).integers(0, 256, len(data[200::7]), dtype=np.uint8).tobytes()
    )
    destination.write_bytes(bytes(data))
    return destination


@pytest.mark.anyio
async def test_a_damaged_mp3_rejects_the_job_saying_why(
    encoded: dict[str, Path], tmp_path: Path, no_leaks: None
) -> None:
    corrupt = damaged(encoded["mp3"], tmp_path / "corrupt.mp3")
    async with (
        LocalServer(engine=scripted_engine()) as server,
        AsyncClient(api_key="any", url=server.batch_url) as client,
    ):
        job = await client.submit_job(str(corrupt), transcription_config=TranscriptionConfig())
        with pytest.raises(JobError, match="rejected"):
            await client.wait_for_completion(job.id, polling_interval=0.2, timeout=30)
        info = await client.get_job_info(job.id)
    assert info.status == JobStatus.REJECTED
    assert info.errors is not None
    message = info.errors[0].message
    assert "invalid audio" in message
    assert "found MP3" in message
    assert "damaged" in message
    assert "always works" in message


@pytest.mark.parametrize("suffix", ["ogg", "webm", "m4a"])
def test_a_file_without_audio_frames_is_refused_with_the_format_named(
    suffix: str, encoded: dict[str, Path], tmp_path: Path
) -> None:
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(encoded[suffix].read_bytes()[:60])
    with pytest.raises(AudioDecodeError, match=r"cut\.\w+: found .* cannot be decoded"):
        convert_file_to_engine_pcm(cut, tmp_path / "out.raw")


def test_without_pyav_compressed_files_are_refused_and_wav_still_works(
    encoded: dict[str, Path], clip: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # what `import av` meets when PyAV is absent
    monkeypatch.delitem(sys.modules, "speechmatics_modes.local._av", raising=False)
    with pytest.raises(AudioDecodeError) as caught:
        convert_file_to_engine_pcm(encoded["flac"], tmp_path / "out.raw")
    assert "found FLAC, which needs PyAV" in str(caught.value)
    assert "WAV (integer PCM, IEEE float or mu-law) always works" in str(caught.value)
    assert convert_file_to_engine_pcm(clip.path, tmp_path / "out.raw").output_samples > 0


@pytest.mark.parametrize(
    ("head", "demuxer"),
    [
        (b"\xff\xfb\x90\x00", "mp3"),
        (b"\xff\xf1\x50\x80", "aac"),
        (b"ID3\x04\x00", "mp3"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),
        (b"FORM\x00\x00\x00\x00AIFFCOMM", None),
        (b"", None),
    ],
)
def test_the_demuxer_comes_from_the_magic_bytes(head: bytes, demuxer: str | None) -> None:
    assert pyav_demuxer(head) == demuxer


_MEASURE_CONVERSION = """
import json, resource, sys
from pathlib import Path
from speechmatics_modes.local._audio import convert_file_to_engine_pcm
short, long, out = map(Path, sys.argv[1:])
convert_file_to_engine_pcm(short, out)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
info = convert_file_to_engine_pcm(long, out)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kib": after - before, "seconds": info.output_samples / 16000}))
"""


@pytest.mark.slow
def test_a_ten_minute_flac_converts_in_bounded_memory(clip: Clip, tmp_path: Path) -> None:
    speech = read_wav(clip.path)
    silence = np.zeros(16_000 * 60 - len(speech), dtype=np.int16)
    wide = Encoding("flac", "flac", "flac", 48_000, "stereo")  # 115 MB of samples decoded
    long = encode([speech, silence], tmp_path / "long.flac", wide, repeat=10)
    short = encode([speech], tmp_path / "short.flac", wide)
    # A fresh process: this one's peak RSS already holds whatever earlier tests loaded.
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE_CONVERSION, str(short), str(long), str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(measured.stdout)
    assert abs(result["seconds"] - 600) < 0.1
    growth_mib = result["growth_kib"] / 1024
    assert growth_mib < 24, f"peak RSS grew {growth_mib:.0f} MiB converting 10 min of FLAC"


@pytest.mark.parametrize("encoding", [*ENCODINGS, ADTS], ids=lambda encoding: encoding.suffix)
def test_a_real_time_file_stream_decodes_as_it_arrives(
    encoding: Encoding, encoded: dict[str, Path], tmp_path: Path
) -> None:
    """Real-time ``type: file`` takes what batch takes, chunk by chunk, with the same result."""
    convert_file_to_engine_pcm(encoded[encoding.suffix], tmp_path / "out.raw")
    whole = (tmp_path / "out.raw").read_bytes()
    data = encoded[encoding.suffix].read_bytes()
    converter = FileStreamConverter()
    half = len(data) // 2 // 4096 * 4096
    streamed = b"".join(converter.convert(data[i : i + 4096]) for i in range(0, half, 4096))
    if encoding.container != "ipod":  # MP4 keeps its index at the end: decoded at the end
        deadline = time.monotonic() + 30
        while not streamed and time.monotonic() < deadline:
            time.sleep(0.01)
            streamed += converter.convert(b"")
        assert streamed, "no audio decoded from the first half of the stream"
    streamed += b"".join(
        converter.convert(data[i : i + 4096]) for i in range(half, len(data), 4096)
    )
    streamed += converter.finish()
    # Read as a stream, MP3 keeps its encoder padding (up to one 72 ms frame here).
    assert abs(len(streamed) - len(whole)) <= 0.072 * 16_000 * 2
    if encoding.suffix != "mp3":
        assert streamed == whole


@pytest.mark.anyio
@pytest.mark.parametrize("suffix", ["mp3", "ogg", "m4a"])
async def test_the_rt_sdk_streams_a_compressed_file(
    suffix: str, encoded: dict[str, Path], no_leaks: None
) -> None:
    """The SDKs' default audio_format is ``type: file``: a compressed file works as WAV does."""
    finals: list[str] = []
    async with (
        LocalServer(engine=scripted_engine()) as server,
        rt.AsyncClient(api_key="any", url=server.rt_url) as client,
    ):
        client.on(
            rt.ServerMessageType.ADD_TRANSCRIPT,
            lambda message: finals.append(message["metadata"]["transcript"]),
        )
        with encoded[suffix].open("rb") as audio:
            await client.transcribe(audio, transcription_config=rt.TranscriptionConfig())
    assert plain_words(" ".join(finals)).lower().split() == ["hello", "world", "how", "are", "you"]


@pytest.mark.anyio
async def test_a_damaged_compressed_stream_is_invalid_audio_type(
    encoded: dict[str, Path], tmp_path: Path, no_leaks: None
) -> None:
    corrupt = damaged(encoded["mp3"], tmp_path / "corrupt.mp3")
    errors: list[dict[str, str]] = []
    async with (
        LocalServer(engine=scripted_engine()) as server,
        rt.AsyncClient(api_key="any", url=server.rt_url) as client,
    ):
        client.on(rt.ServerMessageType.ERROR, errors.append)
        with corrupt.open("rb") as audio:
            await client.transcribe(audio, transcription_config=rt.TranscriptionConfig())
    assert [error["type"] for error in errors] == ["invalid_audio_type"]
    assert "found MP3" in errors[0]["reason"]
    assert "damaged" in errors[0]["reason"]
