"""The local server's batch API, driven by the official batch SDK and by raw HTTP."""

from __future__ import annotations

import json
import resource
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from speechmatics.batch import (
    AsyncClient,
    AuthenticationError,
    BatchError,
    FormatType,
    JobError,
    JobExpiredError,
    JobStatus,
    TranscriptionConfig,
)
from speechmatics.batch import Transcript as BatchTranscript

from speechmatics_modes import ConfigurationError, Transcript
from speechmatics_modes.local import Faults, HttpFailure, LocalServer
from tests.conftest import Clip
from tests.local.conftest import scripted_engine, wav_bytes
from tests.security._origin import origin

pytestmark = pytest.mark.anyio

EN = TranscriptionConfig(language="en")
Writer = Callable[[bytes], str]


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    """Write audio bytes to a fresh file and return its path (the SDK takes paths)."""
    counter = iter(range(1_000_000))

    def write_file(data: bytes) -> str:
        path = tmp_path / f"audio-{next(counter)}.wav"
        path.write_bytes(data)
        return str(path)

    return write_file


def form(config: dict[str, Any] | str, audio: bytes | None = None) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("config", config if isinstance(config, str) else json.dumps(config))
    if audio is not None:
        data.add_field("data_file", audio, filename="a.wav", content_type="audio/wav")
    return data


async def post_job(server: LocalServer, data: aiohttp.FormData, query: str = "") -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.batch_url}/jobs{query}", data=data) as response,
    ):
        return response.status, await response.json()


async def get(server: LocalServer, path: str) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{server.batch_url}{path}") as response:
        body = await response.read()
        return response.status, body, response.content_type


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, hyp_word in enumerate(hyp, 1):
            previous, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, previous + (ref_word != hyp_word)),
            )
    return row[len(hyp)] / max(1, len(ref))


def plain_words(text: str) -> str:
    return "".join(char for char in text if char.isalnum() or char.isspace() or char == "'")


@pytest.mark.slow
async def test_real_speech_job_gives_json_txt_and_srt(
    speech_clips: list[Clip], no_leaks: None
) -> None:
    clip = min(speech_clips, key=lambda clip: abs(clip.duration - 10))
    async with LocalServer() as server, AsyncClient(api_key="any", url=server.batch_url) as client:
        job = await client.submit_job(str(clip.path), transcription_config=EN)
        result = await client.wait_for_completion(job.id, polling_interval=0.5, timeout=60)
        text = await client.get_transcript(job.id, format_type=FormatType.TXT)
        srt = await client.get_transcript(job.id, format_type=FormatType.SRT)
        status, body, content_type = await get(server, f"/jobs/{job.id}/transcript")
    assert isinstance(result, BatchTranscript)
    assert isinstance(srt, str)
    assert word_error_rate(clip.reference, plain_words(result.transcript_text)) < 0.5
    document = json.loads(body)
    assert (status, content_type) == (200, "application/vnd.speechmatics.v2+json")
    alternatives = [result["alternatives"][0] for result in document["results"]]
    assert {(a["language"], a["speaker"]) for a in alternatives} == {("en", "UU")}
    assert document["results"][-1]["alternatives"][0]["content"] == "."
    assert text == Transcript.from_batch_json(document).to_text()
    assert srt.startswith("1\n00:00:")


async def test_config_is_echoed_exactly(server: LocalServer) -> None:
    config = {
        "type": "transcription",
        "transcription_config": {"language": "en", "diarization": "speaker"},
        "tracking": {"title": "t", "tags": ["a"]},
    }
    status, body = await post_job(server, form(config, wav_bytes(3)), "?wait=10")
    assert (status, body["status"]) == (201, "done")
    speakers = {r["alternatives"][0]["speaker"] for r in body["json-v2"]["results"]}
    assert speakers == {"S1"}
    _, info, _ = await get(server, f"/jobs/{body['id']}")
    assert json.loads(info)["job"]["config"] == config


async def test_txt_with_speakers_is_in_the_protocols_form(
    server: LocalServer, write: Writer
) -> None:
    diarized = TranscriptionConfig(language="en", diarization="speaker")
    async with AsyncClient(api_key="any", url=server.batch_url) as client:
        text = await client.transcribe(
            write(wav_bytes(4)), transcription_config=diarized, format_type=FormatType.TXT, wait=10
        )
    assert text == "SPEAKER: S1\nHello world. How are you."


async def test_sdk_transcribe_with_wait_embeds_text(server: LocalServer, write: Writer) -> None:
    async with AsyncClient(api_key="any", url=server.batch_url) as client:
        text = await client.transcribe(
            write(wav_bytes(4)), transcription_config=EN, format_type=FormatType.TXT, wait=10
        )
    assert text == "Hello world. How are you."


async def test_wrong_key_is_an_authentication_error(no_leaks: None) -> None:
    async with (
        LocalServer(engine=scripted_engine(), api_key="secret") as server,
        AsyncClient(api_key="wrong", url=server.batch_url) as client,
    ):
        with pytest.raises(AuthenticationError):
            await client.list_jobs()
        assert server.stats.unauthorised == 1
    async with (
        LocalServer(engine=scripted_engine(), api_key="secret") as server,
        AsyncClient(api_key="secret", url=server.batch_url) as client,
    ):
        assert await client.list_jobs() == []


@pytest.mark.parametrize(
    ("config", "detail"),
    [
        ("{broken", "Job config JSON is invalid"),
        (
            {"type": "transcription", "transcription_config": {"language": "en", "bogus": 1}},
            "bogus",
        ),
        (
            {"type": "transcription", "transcription_config": {"language": "en", "max_delay": 9}},
            "max_delay",
        ),
        ({"type": "transcription", "transcription_config": {"model": "enhanced"}}, "language"),
        ({"type": "transcription", "transcription_config": {"language": "xx"}}, "'xx'"),
    ],
)
async def test_invalid_config_is_rejected_with_400(
    server: LocalServer, config: dict[str, Any] | str, detail: str
) -> None:
    status, body = await post_job(server, form(config, wav_bytes(1)))
    assert status == 400
    assert body["code"] == 400
    assert body["error"] == "Job rejected"
    assert detail in body["detail"]
    assert (server.stats.jobs_submitted, server.stats.jobs_refused) == (0, 1)


async def test_sdk_submit_of_unsupported_language_is_a_batch_error(
    server: LocalServer, write: Writer
) -> None:
    async with AsyncClient(api_key="any", url=server.batch_url) as client:
        with pytest.raises(BatchError, match="400"):
            await client.submit_job(
                write(wav_bytes(1)), transcription_config=TranscriptionConfig(language="xx")
            )


async def test_missing_data_file_and_missing_language(server: LocalServer) -> None:
    status, body = await post_job(
        server, form({"type": "transcription", "transcription_config": {"language": "en"}})
    )
    assert (status, body) == (400, {"code": 400, "error": "Missing data_file"})
    status, body = await post_job(server, form({"type": "transcription"}, wav_bytes(1)))
    assert (status, body) == (400, {"code": 400, "error": "No language selected"})


async def test_undecodable_audio_rejects_the_job(server: LocalServer, write: Writer) -> None:
    async with AsyncClient(api_key="any", url=server.batch_url) as client:
        job = await client.submit_job(write(b"ID3\x04" + b"\x00" * 500), transcription_config=EN)
        with pytest.raises(JobError, match="rejected"):
            await client.wait_for_completion(job.id, polling_interval=0.5, timeout=30)
        info = await client.get_job_info(job.id)
    assert info.status == JobStatus.REJECTED
    assert info.errors is not None
    assert "invalid audio" in info.errors[0].message
    assert "MP3" in info.errors[0].message


async def test_running_job_transcript_404_delete_423_then_forced(
    no_leaks: None, write: Writer
) -> None:
    async with (
        LocalServer(engine=scripted_engine(), realtime_factor=100) as server,
        AsyncClient(api_key="any", url=server.batch_url) as client,
    ):
        job = await client.submit_job(write(wav_bytes(2)), transcription_config=EN)
        status, body, _ = await get(server, f"/jobs/{job.id}/transcript")
        assert (status, json.loads(body)["error"]) == (404, "Transcription not ready")
        with pytest.raises(JobError, match="running"):
            await client.delete_job(job.id)
        await client.delete_job(job.id, force=True)
        assert (await client.get_job_info(job.id)).status == JobStatus.DELETED
        assert await client.list_jobs() == []
        status, body, _ = await get(server, "/jobs?include_deleted=true")
        assert [listed["id"] for listed in json.loads(body)["jobs"]] == [job.id]


async def test_list_limit_and_bad_limit(server: LocalServer) -> None:
    for _ in range(3):
        await post_job(
            server,
            form(
                {"type": "transcription", "transcription_config": {"language": "en"}}, wav_bytes(1)
            ),
        )
    status, body, _ = await get(server, "/jobs?limit=2")
    assert (status, len(json.loads(body)["jobs"])) == (200, 2)
    newest = json.loads(body)["jobs"][0]["created_at"]
    status, body, _ = await get(server, f"/jobs?created_after={newest}")
    assert (status, json.loads(body)["jobs"]) == (200, [])
    status, body, _ = await get(server, "/jobs?created_after=2020-01-01T00:00:00Z")
    assert len(json.loads(body)["jobs"]) == 3
    status, body, _ = await get(server, "/jobs?limit=abc")
    assert (status, json.loads(body)["code"]) == (422, 422)
    status, body, _ = await get(server, "/jobs/nosuchjob")
    assert (status, json.loads(body)) == (404, {"code": 404, "error": "Job not found"})


async def test_expired_job_answers_410(no_leaks: None, write: Writer) -> None:
    async with (
        LocalServer(engine=scripted_engine(), job_retention_seconds=0.2) as server,
        AsyncClient(api_key="any", url=server.batch_url) as client,
    ):
        job = await client.submit_job(write(wav_bytes(1)), transcription_config=EN)
        await anyio.sleep(0.3)
        with pytest.raises(JobExpiredError):
            await client.get_job_info(job.id)


async def test_polls_survive_injected_429_and_submit_is_not_duplicated(
    server: LocalServer, write: Writer
) -> None:
    server.faults = Faults(
        http_failure=HttpFailure(count=2, status=429, retry_after=1, method="GET"), job_seconds=0.2
    )
    async with AsyncClient(api_key="any", url=server.batch_url) as client:
        result = await client.transcribe(
            write(wav_bytes(2)), transcription_config=EN, polling_interval=0.5
        )
    assert isinstance(result, BatchTranscript)
    assert result.transcript_text == "Hello world."
    assert server.stats.http_failures_injected == 2
    assert server.stats.jobs_submitted == 1


async def test_injected_failure_carries_retry_after(server: LocalServer) -> None:
    server.faults = Faults(
        http_failure=HttpFailure(status=503, retry_after=7, path_prefix="/v2/jobs")
    )
    async with aiohttp.ClientSession() as http, http.get(f"{server.batch_url}/jobs") as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "7"
        assert await response.json() == {"code": 503, "error": "Internal Server Error"}
    status, _, _ = await get(server, "/jobs")
    assert status == 200


async def test_injected_http_latency_delays_answers(server: LocalServer) -> None:
    server.faults = Faults(http_latency=0.3)
    with anyio.move_on_after(0.2) as scope:
        await get(server, "/jobs")
    assert scope.cancelled_caught


@pytest.fixture
async def audio_host(tmp_path: Path) -> AsyncIterator[str]:
    """A second HTTP server on loopback, serving a WAV for fetch_data (404 for anything else)."""
    audio = wav_bytes(4)

    async def serve(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer audio-token":
            return web.Response(status=403)
        return web.Response(body=audio, content_type="audio/wav")

    async def serve_slowly(request: web.Request) -> web.StreamResponse:
        """Half the file, a pause, the rest: a fetch that is still going on for a while."""
        response = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        await response.prepare(request)
        await response.write(audio[: len(audio) // 2])
        await anyio.sleep(0.5)
        await response.write(audio[len(audio) // 2 :])
        await response.write_eof()
        return response

    async with origin({"/speech.wav": serve, "/slow.wav": serve_slowly}) as host:
        yield host.url("")


@pytest.fixture
async def fetching_server(no_leaks: None) -> AsyncIterator[LocalServer]:
    """A server that may fetch from loopback, which it refuses by default (see tests/security)."""
    async with LocalServer(engine=scripted_engine(), allow_fetch_from=["127.0.0.1"]) as server:
        yield server


async def test_fetch_data_from_another_local_server(
    fetching_server: LocalServer, audio_host: str
) -> None:
    fetch = {
        "url": f"{audio_host}/speech.wav",
        "auth_headers": ["Authorization: Bearer audio-token"],
    }
    config = {
        "type": "transcription",
        "transcription_config": {"language": "en"},
        "fetch_data": fetch,
    }
    status, body = await post_job(fetching_server, form(config), "?wait=10")
    assert (status, body["status"]) == (201, "done")
    assert body["json-v2"]["job"]["data_name"] == "speech.wav"
    missing = {**config, "fetch_data": {"url": f"{audio_host}/nothing.wav"}}
    status, body = await post_job(fetching_server, form(missing), "?wait=10")
    assert body["status"] == "rejected"
    _, info, _ = await get(fetching_server, f"/jobs/{body['id']}")
    assert json.loads(info)["job"]["errors"][0]["message"] == "Audio fetch error, http status 404"


async def test_duration_is_known_from_the_first_status(
    fetching_server: LocalServer, audio_host: str, write: Writer
) -> None:
    """The legacy SDK reads job.duration from the first status after submit (KeyError without)."""
    config = {
        "type": "transcription",
        "transcription_config": {"language": "en"},
        "fetch_data": {"url": f"{audio_host}/slow.wav"},
    }
    fetching_server.faults = Faults(job_seconds=30)
    _, body = await post_job(fetching_server, form(config))
    _, info, _ = await get(fetching_server, f"/jobs/{body['id']}")
    assert json.loads(info)["job"]["status"] == "running"
    assert json.loads(info)["job"]["duration"] == 4
    async with AsyncClient(api_key="any", url=fetching_server.batch_url) as client:
        job = await client.submit_job(write(wav_bytes(3)), transcription_config=EN)
        assert (await client.get_job_info(job.id)).duration == 3
        await client.delete_job(job.id, force=True)
        await client.delete_job(body["id"], force=True)


async def test_upload_over_the_limit_is_413(no_leaks: None) -> None:
    async with LocalServer(engine=scripted_engine(), max_upload_bytes=10_000) as server:
        config = {"type": "transcription", "transcription_config": {"language": "en"}}
        status, body = await post_job(server, form(config, wav_bytes(5)))
        assert (status, body["code"], body["error"]) == (413, 413, "Job rejected")
        assert server.stats.jobs_submitted == 0


@pytest.mark.slow
async def test_large_upload_streams_to_disk_in_bounded_memory(server: LocalServer) -> None:
    size = 300 * 1024 * 1024
    header = wav_bytes(0)  # data size 0: "read to the end", as streaming recorders write
    block = b"\x00" * (1024 * 1024)

    async def body() -> AsyncIterator[bytes]:
        yield header
        for _ in range(size // len(block)):
            yield block

    data = aiohttp.FormData()
    data.add_field(
        "config", json.dumps({"type": "transcription", "transcription_config": {"language": "en"}})
    )
    data.add_field("data_file", body(), filename="big.wav", content_type="audio/wav")
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    status, created = await post_job(server, data)
    growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert status == 201
    assert growth_mib < 64, f"peak RSS grew {growth_mib:.0f} MiB for a 300 MiB upload"
    async with aiohttp.ClientSession() as http:
        await http.delete(f"{server.batch_url}/jobs/{created['id']}?force=true")


def test_non_loopback_bind_needs_a_key() -> None:
    with pytest.raises(ConfigurationError, match="api_key"):
        LocalServer(host="0.0.0.0")
    LocalServer(host="0.0.0.0", api_key="a-key-of-16-char")
    LocalServer(host="::1")


async def test_settings_point_both_sdks_at_the_server(server: LocalServer) -> None:
    settings = server.settings()
    assert (settings.batch_url, settings.rt_url) == (server.batch_url, server.rt_url)
    assert settings.batch_url == f"http://127.0.0.1:{server.port}/v2"
    assert settings.api_key is not None
    async with AsyncClient(
        api_key=settings.api_key.get_secret_value(), url=settings.batch_url
    ) as c:
        assert await c.list_jobs() == []
