"""The legacy ``speechmatics-python`` CLI (5.x), pip-installed as a user would, unchanged.

Every flow a user of that CLI runs goes against :class:`LocalServer` with the scripted engine
(the words do not matter here; the protocol does): batch transcribe, the job commands,
real-time transcribe of WAV, of a compressed file and of two channels, and temporary keys.
"""

from __future__ import annotations

import ast
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from speechmatics_modes.local import LocalServer
from tests.local.conftest import scripted_engine, wav_file
from tests.local.test_formats import ENCODINGS, encode

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600)]

KEY = "a-long-lived-key-of-the-server"
SENTENCES = "Hello world. How are you."


@pytest.fixture
async def server(no_leaks: None) -> AsyncIterator[LocalServer]:
    """A keyed server whose jobs stay running a moment, so the CLI sees ``running`` first."""
    async with LocalServer(engine=scripted_engine(), api_key=KEY, realtime_factor=0.05) as running:
        yield running


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    return wav_file(tmp_path, 4, name="speech.wav")


async def cli(legacy_cli: Path, home: Path, *args: str, **env: str) -> str:
    """Run the CLI to completion; its stdout (a failure shows its stderr)."""
    environment = {**os.environ, "HOME": str(home), **env}
    with anyio.fail_after(120):
        done = await anyio.run_process([str(legacy_cli), *args], env=environment, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def batch_args(server: LocalServer) -> list[str]:
    return ["--url", server.batch_url, "--auth-token", KEY]


def rt_args(server: LocalServer) -> list[str]:
    return ["--url", server.rt_url, "--ssl-mode", "none", "--auth-token", KEY, "--lang", "en"]


WORDS = ["hello", "world", "how", "are", "you"]


def words(output: str) -> list[str]:
    """The words ``rt transcribe`` printed, lowercase, punctuation dropped.

    The local server may send a sentence's full stop in a transcript of its own (its engine
    notices the pause after the word is final), which this CLI prints as an empty line.
    """
    return [word.strip(".,?!").lower() for word in output.split() if word.strip(".,?!")]


async def test_batch_transcribe_waits_for_the_job(
    legacy_cli: Path, server: LocalServer, audio: Path, tmp_path: Path
) -> None:
    plain = await cli(
        legacy_cli, tmp_path, "batch", "transcribe", *batch_args(server), "--lang", "en", str(audio)
    )
    assert SENTENCES in plain.splitlines()
    diarized = await cli(
        legacy_cli, tmp_path, "batch", "transcribe", *batch_args(server), "--lang", "en",
        "--diarization", "speaker", str(audio),
    )  # fmt: skip
    assert f"SPEAKER: S1\n{SENTENCES}" in diarized


async def test_batch_submit_status_results_list_and_delete(
    legacy_cli: Path, server: LocalServer, audio: Path, tmp_path: Path
) -> None:
    args = batch_args(server)
    submitted = await cli(
        legacy_cli, tmp_path, "batch", "submit", *args, "--lang", "en", str(audio)
    )
    job_id = submitted.rsplit("job ID:", 1)[1].strip()
    with anyio.fail_after(30):
        while True:
            status: Any = ast.literal_eval(
                await cli(legacy_cli, tmp_path, "batch", "job-status", *args, "--job-id", job_id)
            )
            if status["job"]["status"] == "done":
                break
    assert status["job"]["duration"] == 4
    txt, srt = [
        await cli(legacy_cli, tmp_path, "batch", "get-results", *args, "--job-id", job_id,
                  "--output-format", output_format)
        for output_format in ("txt", "srt")
    ]  # fmt: skip
    assert txt.strip() == SENTENCES
    assert srt.startswith("1\n00:00:00,500 --> ")
    listed = ast.literal_eval(await cli(legacy_cli, tmp_path, "batch", "list-jobs", *args))
    assert [job["id"] for job in listed] == [job_id]
    deleted = await cli(legacy_cli, tmp_path, "batch", "delete", *args, "--job-id", job_id)
    assert deleted.strip() == f"Job {job_id} deleted"


async def test_rt_transcribe_prints_sentences_without_unknown_speakers(
    legacy_cli: Path, server: LocalServer, audio: Path, tmp_path: Path
) -> None:
    output = await cli(legacy_cli, tmp_path, "rt", "transcribe", *rt_args(server), str(audio))
    assert "SPEAKER" not in output
    assert words(output) == WORDS


async def test_rt_transcribe_of_a_compressed_file(
    legacy_cli: Path, server: LocalServer, tmp_path: Path
) -> None:
    mp3 = encode([np.zeros(4 * 16_000, dtype=np.int16)], tmp_path / "speech.mp3", ENCODINGS[0])
    output = await cli(legacy_cli, tmp_path, "rt", "transcribe", *rt_args(server), str(mp3))
    assert words(output) == WORDS


async def test_rt_transcribe_of_two_channels(
    legacy_cli: Path, server: LocalServer, audio: Path, tmp_path: Path
) -> None:
    output = await cli(
        legacy_cli, tmp_path, "rt", "transcribe", *rt_args(server),
        "--multichannel", "left,right", "--diarization", "channel", str(audio), str(audio),
    )  # fmt: skip
    for channel in ("left", "right"):
        lines = [line for line in output.splitlines() if line.startswith(f"{channel}:")]
        assert words(" ".join(line.removeprefix(f"{channel}:") for line in lines)) == WORDS


async def test_rt_transcribe_with_a_temporary_key(
    legacy_cli: Path, server: LocalServer, audio: Path, tmp_path: Path
) -> None:
    output = await cli(
        legacy_cli, tmp_path, "rt", "transcribe", *rt_args(server), "--generate-temp-token",
        str(audio), SM_MANAGEMENT_PLATFORM_URL=server.management_url,
    )  # fmt: skip
    assert words(output) == WORDS
    assert server.stats.unauthorised == 0
