from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import pytest

from benchmarks import read_pcm
from benchmarks._wer import word_error_rate
from speechmatics_modes.local import EngineWord, StreamingRecognizer, StreamUpdate
from speechmatics_modes.local._pocketsphinx import EngineFailure, PocketsphinxEngine
from tests.conftest import Clip

pytestmark = pytest.mark.anyio

CHUNK_BYTES = 3_200  # 100 ms at 16 kHz s16le
BYTES_PER_SECOND = 32_000


def librispeech(clips: Sequence[Clip]) -> list[Clip]:
    return [clip for clip in clips if clip.path.name.startswith("librispeech-")]


def two_sentences(clips: Sequence[Clip]) -> Path:
    """The espeak clip with a 1.5 s pause between two sentences, beside the real speech."""
    return clips[0].path.parent / "synthetic" / "espeak-two-sentences-with-pause.wav"


def text(words: Sequence[EngineWord]) -> str:
    return " ".join(word.text for word in words)


@pytest.fixture
async def engine() -> AsyncIterator[PocketsphinxEngine]:
    async with PocketsphinxEngine() as running:
        yield running


async def recognize_pcm(engine: PocketsphinxEngine, pcm: bytes, tmp_path: Path) -> list[EngineWord]:
    raw = tmp_path / f"{id(pcm)}.raw"
    raw.write_bytes(pcm)
    return await engine.recognize_file(raw)


async def stream_pcm(
    engine: PocketsphinxEngine, pcm: bytes, *, max_delay: float = 4.0
) -> list[tuple[float, StreamUpdate]]:
    """Feed ``pcm`` in 100 ms chunks; return each update with the audio seconds fed so far."""
    recognizer = await engine.open_stream(max_delay=max_delay)
    try:
        updates = []
        for start in range(0, len(pcm), CHUNK_BYTES):
            update = await recognizer.feed(pcm[start : start + CHUNK_BYTES])
            updates.append((min(len(pcm), start + CHUNK_BYTES) / BYTES_PER_SECOND, update))
        updates.append((len(pcm) / BYTES_PER_SECOND, await recognizer.flush()))
        return updates
    finally:
        await recognizer.aclose()


def finals_of(updates: Sequence[tuple[float, StreamUpdate]]) -> list[EngineWord]:
    return [word for _, update in updates for word in update.finals]


def assert_well_timed(words: Sequence[EngineWord], duration: float) -> None:
    assert words
    for previous, word in itertools.pairwise(words):
        assert previous.end <= word.start + 1e-9
    for word in words:
        assert 0 <= word.start <= word.end <= duration + 0.01
        assert 0.0 <= word.confidence <= 1.0
        assert word.text.strip() == word.text
        assert word.text
        assert word.text[0] not in "<[+"
        assert "(" not in word.text


@pytest.mark.slow
async def test_whole_files_are_recognised_with_bounded_wer(
    engine: PocketsphinxEngine, speech_clips: list[Clip], tmp_path: Path
) -> None:
    clips = librispeech(speech_clips)
    hypotheses: dict[Path, list[EngineWord]] = {}

    async def recognize(clip: Clip) -> None:
        hypotheses[clip.path] = await recognize_pcm(engine, read_pcm(clip.path), tmp_path)

    async with anyio.create_task_group() as group:
        for clip in clips:
            group.start_soon(recognize, clip)
    wer = word_error_rate([c.reference for c in clips], [text(hypotheses[c.path]) for c in clips])
    assert wer < 0.35  # measured 0.22-0.26 on these clips
    for clip in clips:
        assert_well_timed(hypotheses[clip.path], clip.duration)


@pytest.mark.slow
async def test_streaming_finals_match_batch_accuracy_and_partials_come_first(
    engine: PocketsphinxEngine, speech_clips: list[Clip]
) -> None:
    clips = librispeech(speech_clips)[:4]
    results: dict[Path, list[tuple[float, StreamUpdate]]] = {}

    async def stream(clip: Clip) -> None:
        results[clip.path] = await stream_pcm(engine, read_pcm(clip.path))

    async with anyio.create_task_group() as group:
        for clip in clips:
            group.start_soon(stream, clip)
    finals = {path: finals_of(updates) for path, updates in results.items()}
    wer = word_error_rate([c.reference for c in clips], [text(finals[c.path]) for c in clips])
    assert wer < 0.45  # measured ~0.3 streaming, ~0.25 batch on these clips
    for clip in clips:
        assert_well_timed(finals[clip.path], clip.duration)
        updates = [update for _, update in results[clip.path]]
        first_final = next(i for i, update in enumerate(updates) if update.finals)
        assert any(update.partial for update in updates[:first_final])


@pytest.mark.slow
async def test_a_pause_ends_an_utterance(
    engine: PocketsphinxEngine, speech_clips: list[Clip]
) -> None:
    updates = await stream_pcm(engine, read_pcm(two_sentences(speech_clips)))
    ended_at = [fed for fed, update in updates if update.utterance_ended]
    # 0.5 s silence, sentence one, 1.5 s pause, sentence two: the pause ends utterance one
    # while the second sentence is still to come.
    assert ended_at
    assert ended_at[0] < 6.0
    before_pause = [w for fed, u in updates if fed <= ended_at[0] for w in u.finals]
    assert before_pause
    assert finals_of(updates)[-1].start > before_pause[-1].end + 1.0


@pytest.mark.slow
async def test_utterances_keep_session_time(
    engine: PocketsphinxEngine, speech_clips: list[Clip]
) -> None:
    pcm = read_pcm(two_sentences(speech_clips))
    recognizer = await engine.open_stream(max_delay=4.0)
    try:
        first = await recognizer.feed(pcm[: 4 * BYTES_PER_SECOND])
        flushed = await recognizer.flush()
        rest = await recognizer.feed(pcm[4 * BYTES_PER_SECOND :])
        last = await recognizer.flush()
    finally:
        await recognizer.aclose()
    after_flush = list(rest.finals + last.finals)
    assert first.finals + flushed.finals
    assert after_flush
    assert all(word.start >= 4.0 for word in after_flush)
    assert_well_timed(list(first.finals + flushed.finals) + after_flush, 8.96)


async def test_silence_gives_no_words(engine: PocketsphinxEngine, tmp_path: Path) -> None:
    silence = bytes(3 * BYTES_PER_SECOND)
    assert await recognize_pcm(engine, silence, tmp_path) == []
    updates = await stream_pcm(engine, silence)
    assert finals_of(updates) == []
    assert not any(update.partial or update.utterance_ended for _, update in updates)


@pytest.mark.slow
@pytest.mark.parametrize("max_delay", [1.0, 2.0])
async def test_max_delay_is_respected_on_continuous_speech(
    engine: PocketsphinxEngine, speech_clips: list[Clip], max_delay: float
) -> None:
    clip = next(c for c in speech_clips if c.path.name == "librispeech-2412-153948-0001.wav")
    updates = await stream_pcm(engine, read_pcm(clip.path), max_delay=max_delay)
    lateness = [fed - word.end for fed, update in updates[:-1] for word in update.finals]
    assert len(lateness) > 10
    assert max(lateness) <= max_delay


@pytest.mark.slow
async def test_concurrent_streams_do_not_disturb_each_other(
    engine: PocketsphinxEngine, speech_clips: list[Clip]
) -> None:
    first, second = (read_pcm(clip.path) for clip in librispeech(speech_clips)[3:5])
    alone = [finals_of(await stream_pcm(engine, pcm)) for pcm in (first, second)]
    recognizers = [await engine.open_stream(max_delay=4.0) for _ in range(2)]
    together: list[list[EngineWord]] = [[], []]
    try:
        for start in range(0, max(len(first), len(second)), CHUNK_BYTES):
            for index, pcm in enumerate((first, second)):
                if start < len(pcm):
                    update = await recognizers[index].feed(pcm[start : start + CHUNK_BYTES])
                    together[index].extend(update.finals)
        for index in range(2):
            together[index].extend((await recognizers[index].flush()).finals)
    finally:
        for recognizer in recognizers:
            await recognizer.aclose()
    assert together == alone


async def test_repeated_jobs_decode_as_on_a_fresh_decoder(
    speech_clips: list[Clip], tmp_path: Path
) -> None:
    short, other = (read_pcm(clip.path) for clip in speech_clips[2:4])
    async with PocketsphinxEngine(batch_workers=1) as engine:
        fresh = await recognize_pcm(engine, short, tmp_path)
        await recognize_pcm(engine, other, tmp_path)
        again = await recognize_pcm(engine, short, tmp_path)
    assert [(w.text, w.start, w.end) for w in again] == [(w.text, w.start, w.end) for w in fresh]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states in /proc")
async def test_leaving_the_engine_stops_every_worker(tmp_path: Path) -> None:
    async with PocketsphinxEngine() as engine:
        await recognize_pcm(engine, bytes(BYTES_PER_SECOND), tmp_path)
        recognizer: StreamingRecognizer = await engine.open_stream(max_delay=2.0)
        await recognizer.feed(bytes(CHUNK_BYTES))
        pool_pids = list(engine._pool._processes)  # type: ignore[union-attr]
        stream_pid = recognizer._session._process.pid  # type: ignore[attr-defined]
        assert all(_running(pid) for pid in [*pool_pids, stream_pid])
    assert not any(_running(pid) for pid in [*pool_pids, stream_pid])
    assert multiprocessing.active_children() == []
    with pytest.raises(EngineFailure):
        await recognizer.feed(bytes(CHUNK_BYTES))


async def test_engine_refuses_work_outside_its_context(tmp_path: Path) -> None:
    engine = PocketsphinxEngine()
    with pytest.raises(EngineFailure, match="async with"):
        await engine.recognize_file(tmp_path / "none.raw")
    with pytest.raises(EngineFailure, match="async with"):
        await engine.open_stream(max_delay=2.0)
