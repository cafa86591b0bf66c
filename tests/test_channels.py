"""Several channels in one session: a dict of sources, or a multichannel file split apart."""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from speechmatics_modes import (
    AudioFormat,
    AudioSourceError,
    ConfigurationError,
    Final,
    JobFailedError,
    Mode,
    RolloverPolicy,
    stream,
    transcribe,
)
from speechmatics_modes._sources import spooled_channels
from speechmatics_modes.local import LocalServer, ScriptedEngine
from speechmatics_modes.local._disk import DiskGuard
from speechmatics_modes.local._fetch import Fetcher
from speechmatics_modes.local._jobs import Job, prepare_job
from tests.local.conftest import pcm_bytes

pytestmark = pytest.mark.anyio

SCRIPT = "hello world. how are you"


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(engine=ScriptedEngine.from_text(SCRIPT)) as running:
        yield running


def chunks(seconds: float) -> list[bytes]:
    return [pcm_bytes(0.1)] * round(seconds * 10)


def stereo_wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        writer.writeframes(b"\x00\x00\x00\x00" * int(seconds * 16_000))
    return buffer.getvalue()


def spoken_by_channel(words: tuple[object, ...]) -> dict[str | None, list[str]]:
    found: dict[str | None, list[str]] = {}
    for word in words:
        if not word.is_punctuation:  # type: ignore[attr-defined]
            found.setdefault(word.channel, []).append(word.content.lower())  # type: ignore[attr-defined]
    return found


async def test_a_dict_of_sources_is_one_session_with_a_channel_per_source(
    server: LocalServer,
) -> None:
    sources = {"agent": chunks(5.0), "caller": chunks(5.0)}
    async with stream(sources, settings=server.settings()) as events:
        finals = [event async for event in events if isinstance(event, Final)]
    assert {final.channel for final in finals} == {"agent", "caller"}
    transcript = events.transcript
    expected = SCRIPT.replace(".", "").split()
    assert spoken_by_channel(transcript.words) == {"agent": expected, "caller": expected}
    assert {segment.channel for segment in transcript.segments()} == {"agent", "caller"}
    assert [word.start for word in transcript.words] == sorted(w.start for w in transcript.words)
    assert server.stats.sessions_started == 1


async def test_a_channel_that_ends_early_leaves_the_others_going(server: LocalServer) -> None:
    transcript = await transcribe(
        {"agent": chunks(5.0), "caller": chunks(1.2)}, settings=server.settings()
    )
    heard = spoken_by_channel(transcript.words)
    assert heard["agent"] == SCRIPT.replace(".", "").split()
    assert heard["caller"] == ["hello", "world"]


async def test_a_stereo_file_in_real_time_is_split_into_its_channels(server: LocalServer) -> None:
    options = {"diarization": "channel", "channel_diarization_labels": ["left", "right"]}
    transcript = await transcribe(
        stereo_wav(5.0), "realtime", options=options, settings=server.settings()
    )
    expected = SCRIPT.replace(".", "").split()
    assert spoken_by_channel(transcript.words) == {"left": expected, "right": expected}


async def test_a_stereo_file_without_labels_gets_numbered_channels(server: LocalServer) -> None:
    transcript = await transcribe(
        stereo_wav(2.0), "realtime", options={"diarization": "channel"}, settings=server.settings()
    )
    assert set(spoken_by_channel(transcript.words)) == {"channel_1", "channel_2"}


async def test_a_stereo_file_without_channel_diarization_is_refused(server: LocalServer) -> None:
    with pytest.raises(AudioSourceError, match="diarization='channel'"):
        await transcribe(stereo_wav(1.0), "realtime", settings=server.settings())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"options": {"diarization": "speaker"}}, ConfigurationError, "diarization='channel'"),
        (
            {
                "options": {
                    "diarization": "channel",
                    "channel_diarization_labels": ["a", "b"],
                }
            },
            ConfigurationError,
            "do not match",
        ),
        ({"rollover": RolloverPolicy()}, ConfigurationError, "one audio clock"),
    ],
)
async def test_what_channels_cannot_do_is_refused_before_any_audio(
    server: LocalServer, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        await transcribe(
            {"agent": chunks(1.0), "caller": chunks(1.0)},
            settings=server.settings(),
            **kwargs,  # type: ignore[arg-type]
        )
    assert server.stats.sessions_started == 0


async def test_a_stereo_file_split_for_rollover_is_refused_too(server: LocalServer) -> None:
    options = {"diarization": "channel"}
    with pytest.raises(ConfigurationError, match="rollover cannot carry several channels"):
        await transcribe(
            stereo_wav(1.0),
            "realtime",
            options=options,
            settings=server.settings(),
            rollover=RolloverPolicy(),
        )
    assert server.stats.sessions_opened == 0


async def test_channels_must_share_one_audio_format(server: LocalServer) -> None:
    wav = io.BytesIO()
    with wave.open(wav, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8_000)
        writer.writeframes(b"\x00\x00" * 8_000)
    with pytest.raises(AudioSourceError, match="one audio format"):
        await transcribe(
            {"agent": chunks(1.0), "caller": wav.getvalue()},
            "realtime",
            settings=server.settings(),
        )


@pytest.mark.parametrize("labels", [{}, {"a b": chunks(1.0)}, {"x": {"y": chunks(1.0)}}])
async def test_bad_channel_dicts_are_audio_source_errors(
    server: LocalServer, labels: dict[str, object]
) -> None:
    with pytest.raises(AudioSourceError):
        await transcribe(labels, settings=server.settings())  # type: ignore[arg-type]


async def test_batch_gives_the_same_channels_as_real_time(server: LocalServer) -> None:
    options = {"diarization": "channel", "channel_diarization_labels": ["left", "right"]}
    audio = stereo_wav(5.0)
    batch = await transcribe(audio, "batch", options=options, settings=server.settings())
    realtime = await transcribe(audio, "realtime", options=options, settings=server.settings())
    assert spoken_by_channel(batch.words) == spoken_by_channel(realtime.words)
    assert [(w.content, w.channel) for w in batch.words if not w.is_punctuation] == [
        (w.content, w.channel) for w in realtime.words if not w.is_punctuation
    ]


async def test_a_dict_of_sources_in_batch_is_one_multichannel_upload(server: LocalServer) -> None:
    sources = {"agent": chunks(5.0), "caller": chunks(5.0)}
    batch = await transcribe(sources, "batch", settings=server.settings())
    realtime = await transcribe(sources, "realtime", settings=server.settings())
    assert batch.mode is Mode.BATCH
    expected = SCRIPT.replace(".", "").split()
    assert spoken_by_channel(batch.words) == {"agent": expected, "caller": expected}
    assert spoken_by_channel(realtime.words) == spoken_by_channel(batch.words)
    assert server.stats.jobs_submitted == 1


@pytest.mark.parametrize(
    ("audio_format", "first", "second", "frames"),
    [
        (
            AudioFormat(),
            struct.pack("<3h", 1, 2, -3),
            struct.pack("<h", -1),
            struct.pack("<6h", 1, -1, 2, 0, -3, 0),
        ),
        (
            AudioFormat(encoding="mulaw", sample_rate=8_000),
            b"\x01\x02",
            b"\x03",
            b"\x01\x03\x02\xff",
        ),
    ],
    ids=["pcm_s16le", "mulaw"],
)
async def test_channels_interleave_frame_by_frame_and_the_shorter_is_padded_with_silence(
    audio_format: AudioFormat, first: bytes, second: bytes, frames: bytes
) -> None:
    async def turns() -> AsyncIterator[tuple[str, bytes]]:
        yield "a", first[:1]  # chunks need not hold whole samples
        yield "b", second
        yield "a", first[1:]

    async with spooled_channels(turns(), audio_format, ("a", "b")) as file:
        wav = file.read()
    tag, channels, rate, byte_rate, block, bits = struct.unpack_from("<HHIIHH", wav, 20)
    width = audio_format.bytes_per_sample
    assert tag == {"pcm_s16le": 1, "mulaw": 7}[audio_format.encoding]
    assert (channels, rate, byte_rate, block, bits) == (
        2,
        audio_format.sample_rate,
        audio_format.sample_rate * width * 2,
        width * 2,
        width * 8,
    )
    assert struct.unpack_from("<I", wav, 40) == (len(frames),)
    assert wav[44:] == frames


async def test_a_batch_of_empty_channels_is_refused(server: LocalServer) -> None:
    with pytest.raises(AudioSourceError, match="every channel was empty"):
        await transcribe({"a": [b""], "b": []}, "batch", settings=server.settings())
    assert server.stats.jobs_submitted == 0


async def test_batch_refuses_labels_for_another_number_of_channels(server: LocalServer) -> None:
    options = {"diarization": "channel", "channel_diarization_labels": ["a", "b", "c"]}
    with pytest.raises(JobFailedError, match="names 3 channels but the audio has 2"):
        await transcribe(stereo_wav(1.0), "batch", options=options, settings=server.settings())


def channel_job(directory: Path, labels: list[str]) -> Job:
    """A local batch job of a stereo WAV with channel diarization; where a mono mixdown of
    it would be written is taken by a directory, so converting it fails the job."""
    config = {"language": "en", "diarization": "channel", "channel_diarization_labels": labels}
    job = Job(
        id="job",
        created_at=datetime.now(timezone.utc),
        config={"type": "transcription", "transcription_config": config},
        data_name="call.wav",
        directory=directory,
    )
    job.upload_path.write_bytes(stereo_wav(1.0))
    job.pcm_path.mkdir()
    return job


async def prepare(job: Job) -> None:
    await prepare_job(
        job, fetcher=Fetcher(allow_from=(), max_bytes=None, disk=DiskGuard(job.directory, 0))
    )


async def test_a_local_batch_job_converts_each_channel_and_no_mixdown(tmp_path: Path) -> None:
    job = channel_job(tmp_path, ["left", "right"])
    await prepare(job)
    assert job.running, job.errors
    assert job.duration == 1.0
    assert [label for label, _ in job.channels] == ["left", "right"]
    assert all(path.stat().st_size == 2 * 16_000 for _, path in job.channels)


async def test_a_local_batch_job_checks_the_channel_labels_before_converting(
    tmp_path: Path,
) -> None:
    job = channel_job(tmp_path, ["a", "b", "c"])
    (tmp_path / "channel_0.pcm").mkdir()  # and the first channel: nothing may be converted
    await prepare(job)
    assert job.status == "rejected"
    assert [error["message"] for error in job.errors] == [
        "Job rejected: channel_diarization_labels names 3 channels but the audio has 2"
    ]
