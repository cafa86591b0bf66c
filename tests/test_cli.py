"""The command line as a user runs it: subprocesses, a real local server, real files."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from speechmatics_modes._cli import EXIT_CODES
from speechmatics_modes.local import Faults, LocalServer, ScriptedEngine
from tests._virtual_mic import missing_tools, virtual_microphone
from tests.conftest import SYNTHETIC_AUDIO

SYNTHETIC = sorted(SYNTHETIC_AUDIO.glob("*.wav"))
HELLO = SYNTHETIC_AUDIO / "espeak-hello-world.wav"
CLI = [sys.executable, "-m", "speechmatics_modes"]
RUN_SECONDS = 60


@dataclass
class Served:
    """A local server running in a thread of the test process, so its counters can be read."""

    server: LocalServer
    portal: BlockingPortal

    def env(self, key: str = "any-key") -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SPEECHMATICS_")}
        return {
            **clean,
            "SPEECHMATICS_API_KEY": key,
            "SPEECHMATICS_BATCH_URL": self.server.batch_url,
            "SPEECHMATICS_RT_URL": self.server.rt_url,
        }


@contextmanager
def served(**kwargs: object) -> Iterator[Served]:
    engine = ScriptedEngine.from_text("hello world")
    with start_blocking_portal("asyncio") as portal:
        server = LocalServer(engine=engine, **kwargs)  # type: ignore[arg-type]
        with portal.wrap_async_context_manager(server):
            yield Served(server, portal)


@pytest.fixture
def local() -> Iterator[Served]:
    with served() as running:
        yield running


def run(args: list[str], env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=RUN_SECONDS, **kwargs
    )


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, stderr
    return errors[0]


def test_one_file_prints_its_transcript_to_stdout(local: Served) -> None:
    done = run(["transcribe", str(HELLO)], local.env())
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello world.\n"
    assert local.server.stats.jobs_submitted == 1


@pytest.mark.parametrize(
    ("output_format", "marker"),
    [("json", '"mode":"batch"'), ("srt", "00:00:00,500 --> "), ("vtt", "WEBVTT")],
)
def test_each_format_is_rendered(local: Served, output_format: str, marker: str) -> None:
    done = run(["transcribe", str(HELLO), "--format", output_format], local.env())
    assert done.returncode == 0, done.stderr
    assert marker in done.stdout


def test_a_directory_of_mixed_files_transcribes_the_audio_and_names_the_rest(
    local: Served, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    (inputs / "nested").mkdir(parents=True)
    shutil.copy(SYNTHETIC[0], inputs / "a.wav")
    shutil.copy(SYNTHETIC[1], inputs / "nested" / "b.WAV")
    (inputs / "notes.txt").write_text("not audio")
    (inputs / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "out"
    done = run(["transcribe", str(inputs), "--out", str(out), "--format", "srt"], local.env())
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in out.glob("*.srt")) == ["a.srt", "b.srt"]
    assert "skipped 2 file(s) that are not audio" in done.stderr
    assert local.server.stats.jobs_submitted == 2


def test_a_missing_path_fails_alone_with_exit_status_3(local: Served, tmp_path: Path) -> None:
    missing = tmp_path / "missing.wav"
    done = run(
        ["transcribe", str(HELLO), str(missing), "--out", str(tmp_path / "out")], local.env()
    )
    assert done.returncode == 3
    assert one_error_line(done.stderr).endswith(f"{missing}: no such file")
    assert (tmp_path / "out" / "espeak-hello-world.txt").read_text() == "Hello world.\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_an_input_error(local: Served, tmp_path: Path) -> None:
    locked = tmp_path / "locked.wav"
    shutil.copy(HELLO, locked)
    locked.chmod(0)
    done = run(["transcribe", str(locked)], local.env())
    assert done.returncode == 3
    assert "cannot read it" in one_error_line(done.stderr)
    assert local.server.stats.jobs_submitted == 0


def test_a_directory_as_a_file_argument_and_an_empty_file_are_input_errors(
    local: Served, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    done = run(["transcribe", str(empty)], local.env())
    assert done.returncode == 3
    assert "is empty" in one_error_line(done.stderr)
    nothing = tmp_path / "no-audio"
    nothing.mkdir()
    done = run(["transcribe", str(nothing)], local.env())
    assert done.returncode == 3
    assert "no audio files" in one_error_line(done.stderr)
    assert local.server.stats.jobs_submitted == 0


def test_a_quoted_glob_is_expanded(local: Served, tmp_path: Path) -> None:
    for path in SYNTHETIC[:2]:
        shutil.copy(path, tmp_path / path.name)
    out = tmp_path / "out"
    done = run(["transcribe", str(tmp_path / "*.wav"), "--out", str(out), "-q"], local.env())
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(list(out.glob("*.txt"))) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a.wav", "b.wav"], "give --out DIR"),
        ([str(HELLO), "--language", "12"], "--language: String should match pattern"),
        ([str(HELLO), "--concurrency", "0"], "--concurrency must be at least 1"),
        (["-", str(HELLO)], "cannot be mixed"),
    ],
)
def test_usage_errors_exit_2_before_anything_is_sent(
    local: Served, args: list[str], message: str
) -> None:
    done = run(["transcribe", *args], local.env())
    assert done.returncode == 2
    assert message in one_error_line(done.stderr)
    assert local.server.stats.http_requests == 0


def test_stdin_takes_a_wav_file_or_raw_pcm(local: Served) -> None:
    wav = HELLO.read_bytes()
    done = run(["transcribe", "-"], local.env(), input=wav.decode("latin-1"), encoding="latin-1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello world.\n"
    assert local.server.stats.jobs_submitted == 1
    raw = run(
        ["transcribe", "-", "--sample-rate", "16000"],
        local.env(),
        input=wav[44:].decode("latin-1"),
        encoding="latin-1",
    )
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == "Hello world.\n"
    assert local.server.stats.sessions_started == 1


def test_a_refused_key_exits_4_and_verbose_shows_the_traceback(tmp_path: Path) -> None:
    with served(api_key="the-right-key") as guarded:
        done = run(["transcribe", str(HELLO)], guarded.env("a-wrong-key"))
        assert done.returncode == 4
        assert "refused the API key" in one_error_line(done.stderr)
        verbose = run(["transcribe", str(HELLO), "--verbose"], guarded.env("a-wrong-key"))
        assert verbose.returncode == 4
        assert "Traceback" in verbose.stderr


def test_a_run_killed_half_way_resumes_without_submitting_any_file_twice(
    tmp_path: Path,
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for number in range(12):
        shutil.copy(SYNTHETIC[number % len(SYNTHETIC)], inputs / f"clip-{number:02d}.wav")
    out = tmp_path / "out"
    args = [*CLI, "transcribe", str(inputs), "--out", str(out), "--concurrency", "3"]
    with served(faults=Faults(job_seconds=0.6)) as slow:
        first = subprocess.Popen(args, env=slow.env(), stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + RUN_SECONDS
            while len(list(out.glob("*.txt"))) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            first.kill()  # a crash: no clean-up, no chance to delete the jobs in flight
            first.wait()
        written_before = len(list(out.glob("*.txt")))
        submitted_before = slow.server.stats.jobs_submitted
        assert 4 <= written_before < 12
        assert submitted_before < 12

        second = run(args[len(CLI) :], slow.env())
        assert second.returncode == 0, second.stderr
        assert len(list(out.glob("*.txt"))) == 12
        assert slow.server.stats.jobs_submitted == 12
        assert second.stderr.count("(done in an earlier run)") >= written_before
        assert not list(out.glob("*.part"))


def test_jobs_are_listed_shown_and_deleted(local: Served) -> None:
    run(["transcribe", str(HELLO)], local.env())
    listed = run(["jobs", "list"], local.env())
    assert listed.returncode == 0, listed.stderr
    job_id, status, *_rest, name = listed.stdout.strip().split("\t")
    assert (status, name) == ("done", HELLO.name)
    shown = run(["jobs", "show", job_id], local.env())
    assert f"id: {job_id}\nstatus: done\n" in shown.stdout
    deleted = run(["jobs", "delete", job_id], local.env())
    assert deleted.returncode == 0, deleted.stderr
    assert local.server.stats.jobs_deleted == 1
    unknown = run(["jobs", "show", "no-such-job"], local.env())
    assert unknown.returncode == 1
    assert "404" in one_error_line(unknown.stderr)


def test_serve_runs_a_server_that_transcribe_uses_until_interrupted(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SPEECHMATICS_")}
    with subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--engine", "scripted"],
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            urls = dict(server.stdout.readline().strip().split("=", 1) for _ in range(2))
            env = {**clean, **urls, "SPEECHMATICS_API_KEY": "k"}
            done = run(["transcribe", str(HELLO)], env)
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith("Hello world.")
        finally:
            server.send_signal(signal.SIGINT)
        assert server.wait(timeout=RUN_SECONDS) == 0


@pytest.mark.slow
def test_without_a_key_it_says_so_and_uses_the_embedded_server() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SPEECHMATICS_")}
    done = run(["transcribe", str(HELLO)], clean)
    assert done.returncode == 0, done.stderr
    notices = [line for line in done.stderr.splitlines() if "SPEECHMATICS_API_KEY" in line]
    assert len(notices) == 1
    assert "hello" in done.stdout.lower()


def test_every_exit_status_is_documented_as_help_describes_it() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (.*) \|$", doc, flags=re.MULTILINE)
    documented = {int(code): meaning for code, meaning in rows}
    assert set(documented) == set(EXIT_CODES)
    for code, meaning in EXIT_CODES.items():
        assert documented[code] == meaning[0].upper() + meaning[1:] + ".", code


def test_a_file_that_is_not_audio_is_a_rejected_job_exit_1_as_documented(
    local: Served, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_text("these are meeting notes, not a recording\n" * 20)
    done = run(["transcribe", str(notes)], local.env())
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "not audio" in line
    assert "WAV (integer PCM, IEEE float or mu-law) always works" in line
    assert "can be decoded here" not in line  # MP3, FLAC... decode too, with PyAV
    assert "rejected job (e.g. not audio)" in EXIT_CODES[1]


def test_another_format_into_the_same_out_writes_it_from_the_same_job(
    local: Served, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = run(["transcribe", str(HELLO), "--out", str(out)], local.env())
    assert first.returncode == 0, first.stderr
    again = run(["transcribe", str(HELLO), "--out", str(out), "--format", "srt"], local.env())
    assert again.returncode == 0, again.stderr
    assert "Hello world." in (out / "espeak-hello-world.srt").read_text()
    assert local.server.stats.jobs_submitted == 1  # the journal's job, re-attached to
    (out / "espeak-hello-world.txt").unlink()
    deleted = run(["transcribe", str(HELLO), "--out", str(out)], local.env())
    assert deleted.returncode == 0, deleted.stderr
    assert (out / "espeak-hello-world.txt").read_text() == "Hello world.\n"
    same = run(["transcribe", str(HELLO), "--out", str(out)], local.env())
    assert "(done in an earlier run)" in same.stderr
    assert local.server.stats.jobs_submitted == 1


def test_jobs_without_a_key_says_an_embedded_server_has_none(local: Served) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SPEECHMATICS_")}
    for args in (["jobs", "list"], ["jobs", "show", "some-id"]):
        done = run(args, clean)
        assert done.returncode == 2
        assert "SPEECHMATICS_API_KEY" in one_error_line(done.stderr)
        assert done.stdout == ""
    local_backend = run(["jobs", "list"], {**local.env(), "SPEECHMATICS_MODES_BACKEND": "local"})
    assert local_backend.returncode == 2
    assert "would have none" in one_error_line(local_backend.stderr)


def test_listen_without_pyaudio_says_so_in_one_line_with_exit_status_3(
    local: Served, tmp_path: Path
) -> None:
    (tmp_path / "pyaudio.py").write_text("raise ImportError('No module named pyaudio')\n")
    env = {**local.env(), "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = run(["listen"], env)
    assert done.returncode == 3
    assert "needs the PyAudio package" in one_error_line(done.stderr)
    assert len(done.stderr.splitlines()) == 1
    assert local.server.stats.sessions_started == 0


def test_listen_offers_every_option_the_realtime_api_has(local: Served) -> None:
    shown = run(["listen", "--help"], {**local.env(), "COLUMNS": "500"})
    assert "--model {standard,enhanced,melia-1,oak-1}" in shown.stdout
    assert "--max-delay" in shown.stdout
    assert "--enable-partials" not in shown.stdout  # listen always asks for partials
    refused = run(["listen", "--model", "oak-1"], local.env())
    assert refused.returncode == 2
    assert "model='oak-1' is not available in real-time" in one_error_line(refused.stderr)
    batch = run(["transcribe", "--help"], {**local.env(), "COLUMNS": "500"})
    assert "--model" in batch.stdout
    assert "--max-delay" not in batch.stdout


def test_every_transcription_option_help_is_its_field_description(local: Served) -> None:
    shown = run(["transcribe", "--help"], {**local.env(), "COLUMNS": "500"})
    assert "Language code such as" in shown.stdout
    assert "--diarization {none,speaker,channel,channel_and_speaker}" in shown.stdout


@pytest.mark.slow
def test_listen_captions_the_virtual_microphone_and_ctrl_c_prints_the_transcript(
    local: Served, tmp_path: Path
) -> None:
    if missing_tools():
        pytest.skip(f"no virtual microphone: {missing_tools()} missing")
    pytest.importorskip("pyaudio")
    (tmp_path / "pulse").mkdir()
    with (
        virtual_microphone(tmp_path / "pulse") as mic,
        subprocess.Popen(
            [*CLI, "listen", "--format", "json"],
            env={**local.env(), **mic.client_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as listener,
    ):
        try:
            player = mic.play(HELLO)
            assert player.wait(timeout=RUN_SECONDS) == 0
            assert listener.stderr is not None
            captions = iter(listener.stderr.readline, "")
            assert any(line.strip() == "world" for line in captions)  # finals, as lines
        finally:
            listener.send_signal(signal.SIGINT)
        stdout, stderr = listener.communicate(timeout=RUN_SECONDS)
    assert listener.returncode == 0, stderr
    assert '"mode":"realtime"' in stdout
    assert '"content":"Hello"' in stdout
