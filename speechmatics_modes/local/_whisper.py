"""The default engine: Whisper tiny.en through faster-whisper (CTranslate2), fully offline.

Decisions a reader would otherwise have to rediscover:

* **One model, a bounded pool of threads.** CTranslate2 releases the GIL while it computes and
  one loaded model may serve several threads at once (``num_workers``), so every job and session
  shares one model, and decoding runs in :attr:`WhisperEngine.workers` worker threads. The event
  loop only awaits those threads. On 2 cores the default is 2 workers of 1 thread each: two
  decodes in parallel beat one decode on two threads when several sessions are live.
* **numpy's BLAS runs on one thread** while the engine does
  (:mod:`~speechmatics_modes.local._blas`): its idle threads spun on the decoders' cores.
* **Weights never download silently**: see :mod:`~speechmatics_modes.local._model_files`.
* **Voice activity filtering is always on**: without it Whisper turns silence into words
  ("You"). Batch uses faster-whisper's Silero VAD filter; real time decodes only what
  :mod:`~speechmatics_modes.local._speech_detector` (the same Silero model) calls speech.
* **Punctuation and capitals are Whisper's own.** Marks are split off each word into
  :attr:`EngineWord.punctuation`, and the result shaper sends them as separate punctuation
  results, as the service does.
* **Batch decodes the whole file**, in pieces of :data:`BATCH_PIECE_SECONDS` cut at the quietest
  moment near each boundary, so an hour of audio never sits in memory as floats at once.

Real-time decoding is in :mod:`~speechmatics_modes.local._whisper_stream` (whole utterances
cut by Silero VAD); this module owns the model, the decode options and the evidence checks.

* **One queue of decodes.** Every job and session asks one
  :class:`~speechmatics_modes.local._decode_queue.DecodeQueue` for a worker, most urgent first,
  so four live sessions share two workers instead of each holding one.
* **A live decode encodes only the audio it has** (:class:`_ShortContextModel`). Whisper's
  encoder always takes a 30 s window, padded with silence, and that pass is most of a decode's
  cost; a 4 s utterance encoded with :func:`encoder_seconds` of context instead costs a third
  to a fifth as much, and measured as accurate (docs/engines.md). An interim decode (one whose
  words may change, or become final only by a vote of several) gets less padding still
  (:data:`INTERIM_PADDING_SECONDS`): it is most of a live session's work. Batch keeps the full
  window.
* **Whisper's own doubts are heeded** (:func:`credible`): a segment it thinks is probably not
  speech and decoded with low confidence, whose text compresses like a loop, or whose words
  look made up (:func:`anomalous`) is dropped, in batch and real time alike. A live interim
  decode, whose words are heard again before any is final, doubts more. No list of phrases
  is involved.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import anyio
import anyio.to_thread
import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel

from speechmatics_modes.local._blas import one_blas_thread
from speechmatics_modes.local._decode_queue import DecodeQueue
from speechmatics_modes.local._engine import ENGINE_SAMPLE_RATE, EngineWord
from speechmatics_modes.local._model_files import resolve_model
from speechmatics_modes.local._whisper_stream import WhisperFailure, WhisperStream

__all__ = [
    "BATCH_PIECE_SECONDS",
    "STREAMS_PER_WORKER",
    "WhisperEngine",
    "WhisperFailure",
    "WhisperSegment",
    "WhisperWord",
    "anomalous",
    "credible",
    "encoder_seconds",
    "engine_words",
    "guessed",
    "split_punctuation",
]

Audio = npt.NDArray[np.float32]

BATCH_PIECE_SECONDS = 600.0
"""Batch files are decoded in pieces this long (about 38 MB of float samples each)."""

STREAMS_PER_WORKER = 2
"""Live streams admitted per decode worker. A stream decodes once per utterance (plus when
``max_delay`` or partials ask), about a third of a worker for continuous speech, so each
worker serves two with room for bursts; see docs/engines.md for the measurement."""

NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
"""Whisper's own thresholds (the values its reference implementation uses for fallback)."""
ANOMALOUS_PROBABILITY = 0.15
SHORTEST_WORD_SECONDS = 0.133
LONGEST_WORD_SECONDS = 2.0
ANOMALY_WORDS = 8
ANOMALY_SCORE = 3.0
"""What :func:`anomalous` calls a made-up word, and how many make a segment: the values of
openai-whisper's hallucination check (``word_anomaly_score``, ``is_segment_anomaly``)."""
DOUBTED_PROBABILITY = 0.5
"""Words whose mean probability is under this, Whisper thinks more likely wrong than right."""

SHORTEST_WINDOW_SECONDS = 0.05
"""A live window shorter than this holds no word and is not decoded: faster-whisper's word
alignment raises ``IndexError`` on one under 20 ms (two mel frames), and a decode that raises
ends its session."""

BATCH_DEADLINE_SECONDS = 30.0
"""A batch job waits behind live decodes due within this long: a live session is waiting."""

CONTEXT_PADDING_SECONDS = 10.0
"""Padding the encoder of a live decode whose words will be final sees after the audio. Whisper
was trained on 30 s windows; with 2-5 s of padding tiny.en dropped a sentence's first word now
and then, and invented more words in noisy tails than with 10 s (measured on the dev set)."""
INTERIM_PADDING_SECONDS = 4.0
"""Padding for an interim decode's encoder. Interim decodes are most of a live session's work
(at ``max_delay`` 1 s, about two a second of speech), and the encoder pass is half of each:
with 4 s instead of 10 s an interim decode costs a fifth less, and one live session through
the server 0.70 -> 0.61 CPU seconds per audio second. The paced finals, voted on by several
interim decodes, were as accurate: in a fake-clock simulation of the paced rows with real
decodes, WER on speech 0.040 -> 0.041 at ``max_delay`` 1 s and 0.037 -> 0.038 at 2 s (0.045
-> 0.044 with faster decodes), with noisy tails 0.067 -> 0.061 and 0.054 -> 0.042 (no more
invented words); single clips moved both ways. Finals keep 10 s: they are heard once."""
CONTEXT_STEP_SECONDS = 2.0
"""Encoder contexts are whole multiples of this many seconds."""
BEAM_SIZE = 5
"""Beam width of batch decodes and of every live decode but a forced end's."""
QUICK_BEAM_SIZE = 1
"""A forced end's tail is decoded greedily, at temperature 0 with an interim decode's padding.
Beam search was 60 % of a short decode (0.11 of 0.18 s for 2 s of audio on one core of an
AVX2 machine), and batch's options let a tail fall back to a second pass (answers after up to
1.4 s). On the dev set forced at 20, 40, 60 and 80 % of each clip, the words were as good
greedy (WER 0.237, noisy tails 0.145) as with beam 5 (0.233, 0.158): a forced end cuts words,
and those dominate its errors. ForceEndOfUtterance through the server: median 0.35 -> 0.24 s."""

_ENCODER_FRAMES: ContextVar[int | None] = ContextVar("_ENCODER_FRAMES", default=None)
"""Mel frames the encoder of the decode running in this thread sees; ``None``: all 3000."""
_FRAMES_PER_SECOND = 100
_CUT_SEARCH_SECONDS = 5.0
_CUT_FRAME_SAMPLES = ENGINE_SAMPLE_RATE // 100
_TOKENS_PER_SECOND = 10
_LEADING_MARKS = "\"'([{¿¡-«"
_TRAILING_MARKS = ".,?!:;\"')]}-»…"


class WhisperWord(Protocol):
    """What this module reads of a faster-whisper word (faster-whisper ships no type hints)."""

    start: float
    end: float
    word: str
    probability: float


class WhisperSegment(Protocol):
    """What this module reads of a faster-whisper segment: Whisper's evidence, and its words."""

    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float

    @property
    def words(self) -> Sequence[WhisperWord] | None:
        """Its words, if the decode timed them (``word_timestamps``)."""


def split_punctuation(token: str) -> tuple[str, str]:
    r"""Split a Whisper word (``" me,"``) into the word and the mark after it (``("me", ",")``).

    Quotes and brackets around a word are dropped: the service's results carry no such marks.
    Of several trailing marks (``"?\\""``) the first sentence-ending one is kept, else the first.
    """
    text = token.strip().lstrip(_LEADING_MARKS)
    word = text.rstrip(_TRAILING_MARKS)
    marks = [mark for mark in text[len(word) :] if mark in ".,?!:;…"]
    enders = [mark for mark in marks if mark in ".?!…"]
    chosen = (enders or marks or [""])[0]
    return word, "." if chosen == "…" else chosen


def credible(segment: WhisperSegment, *, heard_again: bool = False) -> bool:
    """Whether a faster-whisper segment is worth keeping, by Whisper's own evidence.

    Dropped: a segment Whisper thinks is probably not speech (``no_speech_prob``) *and* decoded
    with low confidence (``avg_logprob``), the rule its reference implementation uses to skip
    silent windows; one whose text compresses too well (``compression_ratio``), the mark
    of a decoder stuck repeating itself ("Thank you. Thank you. Thank you."); one Whisper
    only guessed at (:func:`guessed`); and one whose words look made up (:func:`anomalous`).

    Args:
        segment: One segment of a decode.
        heard_again: The words will be heard again by a later decode before any is final (a
            live stream's interim decode), so dropping them loses nothing for good: a segment
            Whisper thinks probably not speech is dropped however confident the decoder was.
            Interim decodes of a crowd's babble heard it as speech with no more than that
            doubt ("no_speech_prob" 0.6-0.8) and their vote made finals of it.
    """
    doubtful = segment.no_speech_prob > NO_SPEECH_THRESHOLD and (
        heard_again or segment.avg_logprob < LOG_PROB_THRESHOLD
    )
    repeating = segment.compression_ratio > COMPRESSION_RATIO_THRESHOLD
    return not (
        doubtful or repeating or guessed(segment) or anomalous(segment, heard_again=heard_again)
    )


def guessed(segment: WhisperSegment) -> bool:
    """Whether Whisper was guessing throughout a segment, token by token and word by word.

    Speech played backwards and a crowd's babble are decoded into fluent sentences ("It's the
    current of life, y'all.") that pass the no-speech, compression and anomaly checks: every
    word is plausible English of a plausible length. What gives them away is that the decoder
    was guessing: its tokens average under an even chance (``avg_logprob`` below ln
    :data:`DOUBTED_PROBABILITY`) *and* it thinks most of its words more likely wrong than
    right. Clear speech, read or synthetic, in a telephone's band or under a room's noise,
    decodes far above both.

    On the dev set in batch, the 18 speech-like clips gave 201 words before and 136 after;
    speech, noisy tails, the telephone band and 40 sentences in synthetic voices lost none;
    under four talkers' babble 5 dB below the speech, a word or three either way with the mix,
    and as loud as it WER 0.656 -> 0.636 (the dropped words were wrong). In real time it cost
    one misheard phrase under noise (docs/engines.md). The tokens alone dropped speech under
    the 5 dB babble (WER 0.268 -> 0.380). Most words, not their mean: one improbable word in
    a short segment ("ask" at 0.05 before "not" at 0.89) is not a guess throughout.
    """
    words = _spoken_words(segment)
    if segment.avg_logprob >= math.log(DOUBTED_PROBABILITY):
        return False
    doubted = sum(1 for word in words if word.probability < DOUBTED_PROBABILITY)
    return doubted > len(words) / 2


def anomalous(segment: WhisperSegment, *, heard_again: bool = False) -> bool:
    """Whether a segment's words look made up, by the test Whisper's reference code uses.

    Speech-like sound with no words in it (a crowd's babble, speech played backwards, a
    voice under loud chatter) passes the voice activity filter, and Whisper reads sentences
    into it ("Thank you very much.", "I agree. I agree.") too short for the compression
    check and decoded, on the whole, with confidence enough. Their words give them away:
    improbable (:data:`ANOMALOUS_PROBABILITY`), or squeezed into less time than a word takes,
    or stretched over more than :data:`LONGEST_WORD_SECONDS` (:func:`_anomaly`). A segment
    is made up when its first :data:`ANOMALY_WORDS` words score about one each, or
    :data:`ANOMALY_SCORE` in all: openai-whisper's ``is_segment_anomaly``, which it applies
    around silences only.

    Applied everywhere, the second half of that test cost real speech under loud chatter:
    Whisper gives short words it cannot place no length (2 points each), and a whole
    sentence was dropped for three of them. So where dropping loses the words for good (a
    decode whose words are final, unless ``heard_again``), a segment scoring 3 is made up
    only if Whisper also thinks its words more likely wrong than right
    (:data:`DOUBTED_PROBABILITY`).
    """
    words = _spoken_words(segment)
    first = words[:ANOMALY_WORDS]
    if not first:
        return False
    score = sum(_anomaly(word) for word in first)
    doubted = sum(word.probability for word in first) / len(first) < DOUBTED_PROBABILITY
    return score + 0.01 >= len(first) or (score >= ANOMALY_SCORE and (heard_again or doubted))


def _spoken_words(segment: WhisperSegment) -> list[WhisperWord]:
    """A segment's words that are words, not a lone punctuation mark."""
    return [word for word in segment.words or () if split_punctuation(word.word)[0]]


def _anomaly(word: WhisperWord) -> float:
    """How unlike a spoken word a Whisper word is: 0 for a likely word of a likely length."""
    duration = word.end - word.start
    improbable = 1.0 if word.probability < ANOMALOUS_PROBABILITY else 0.0
    squeezed = max(0.0, SHORTEST_WORD_SECONDS - duration) * 15
    stretched = max(0.0, duration - LONGEST_WORD_SECONDS)
    return improbable + squeezed + stretched


def engine_words(
    segments: Iterable[WhisperSegment], offset: float, *, heard_again: bool = False
) -> list[EngineWord]:
    """The words of the :func:`credible` segments (``heard_again``: see there), times shifted.

    Times are ``offset`` seconds later than the decode's.

    A token that is punctuation only (rare: faster-whisper merges marks into words) joins the
    word before it.
    """
    words: list[EngineWord] = []
    for segment in segments:
        if not credible(segment, heard_again=heard_again):
            continue
        for word in segment.words or ():
            text, mark = split_punctuation(word.word)
            if text:
                start = offset + float(word.start)  # numpy's floats become Python's here
                end = max(start, offset + float(word.end))
                confidence = min(1.0, max(0.0, float(word.probability)))
                words.append(EngineWord(text, start, end, confidence, mark))
            elif mark and words and not words[-1].punctuation:
                previous = words[-1]
                words[-1] = EngineWord(
                    previous.text, previous.start, previous.end, previous.confidence, mark
                )
    return words


def encoder_seconds(audio_seconds: float, *, final: bool = True) -> float:
    """Seconds of encoder context for a live decode of ``audio_seconds``.

    The audio, then at least :data:`CONTEXT_PADDING_SECONDS` of padding (an interim decode's:
    :data:`INTERIM_PADDING_SECONDS`), in steps of :data:`CONTEXT_STEP_SECONDS`; at most
    Whisper's 30 s window.
    """
    padding = CONTEXT_PADDING_SECONDS if final else INTERIM_PADDING_SECONDS
    steps = math.ceil((audio_seconds + padding) / CONTEXT_STEP_SECONDS)
    return min(30.0, steps * CONTEXT_STEP_SECONDS)


class _ShortContextModel(WhisperModel):  # type: ignore[misc]
    """A ``WhisperModel`` whose encoder sees only the first :data:`_ENCODER_FRAMES` frames.

    faster-whisper pads every window's features to 30 s before calling :meth:`encode`; the
    padding beyond the context is cut off here. Word alignment is given the true number of
    frames, so it never looks past the context. tests/local/test_whisper.py checks that a live
    decode really reaches this method with a shorter window (the day faster-whisper changes
    how it encodes, that test fails rather than the engine silently slowing down).
    """

    last_encoded_frames = 0
    """Frames the last :meth:`encode` took (for the test above)."""

    def encode(self, features: npt.NDArray[np.float32]) -> Any:
        frames = _ENCODER_FRAMES.get()
        if frames is not None and features.shape[-1] > frames:
            features = np.ascontiguousarray(features[..., :frames])
        self.last_encoded_frames = int(features.shape[-1])
        return super().encode(features)


def _quietest_cut(samples: npt.NDArray[np.int16], target: int) -> int:
    """The sample index, within the last few seconds before ``target``, of the quietest 10 ms.

    Cutting a file there rather than at ``target`` keeps a word from being split in two.
    """
    start = max(0, target - int(_CUT_SEARCH_SECONDS * ENGINE_SAMPLE_RATE))
    frames = (target - start) // _CUT_FRAME_SAMPLES
    if frames == 0:
        return target
    window = samples[start : start + frames * _CUT_FRAME_SAMPLES].astype(np.float32)
    energy = np.square(window).reshape(frames, _CUT_FRAME_SAMPLES).sum(axis=1)
    return start + int(np.argmin(energy)) * _CUT_FRAME_SAMPLES


def file_pieces(path: Path) -> Iterator[tuple[float, Audio]]:
    """Raw 16 kHz s16le in ``path`` as (offset seconds, float samples) pieces of bounded size."""
    size = path.stat().st_size // 2
    if size == 0:
        return
    samples = np.memmap(path, dtype="<i2", mode="r", shape=(size,))
    piece = int(BATCH_PIECE_SECONDS * ENGINE_SAMPLE_RATE)
    start = 0
    while start < size:
        stop = size if size - start <= piece else _quietest_cut(samples, start + piece)
        stop = stop if stop > start else min(size, start + piece)
        audio = np.asarray(samples[start:stop], dtype=np.float32) / np.float32(32768.0)
        yield start / ENGINE_SAMPLE_RATE, audio
        start = stop


class WhisperEngine:
    """Offline English recognition with Whisper tiny.en, decoding in a shared queue of workers.

    Use as an async context manager: the model is loaded (and the bundled weights verified) on
    entry, in a worker thread.
    """

    name = "whisper"

    def __init__(
        self,
        *,
        model: str | Path | None = None,
        workers: int | None = None,
        cpu_threads: int | None = None,
    ) -> None:
        """Configure the engine; nothing loads until ``async with``.

        Args:
            model: A CTranslate2 Whisper model directory, or a faster-whisper model name
                (which faster-whisper may download). ``None``: ``SPEECHMATICS_MODES_WHISPER_MODEL``
                if set, else the bundled, hash-verified tiny.en.
            workers: Decodes that may run at once, shared by all jobs and sessions; default:
                the CPU count, at most 4.
            cpu_threads: Threads per decode; default: CPU count divided by ``workers``.
        """
        cpus = os.cpu_count() or 1
        self._model_choice = model
        self.workers = max(1, workers if workers is not None else min(cpus, 4))
        """Decodes that may run at once."""
        self._cpu_threads = max(1, cpu_threads if cpu_threads is not None else cpus // self.workers)
        self.max_streams = STREAMS_PER_WORKER * self.workers
        """Live streams the server admits by default (:data:`STREAMS_PER_WORKER` per worker)."""
        self._model: Any = None
        self._queue: DecodeQueue | None = None
        self._exits = AsyncExitStack()

    async def __aenter__(self) -> WhisperEngine:
        async with AsyncExitStack() as exits:
            exits.enter_context(one_blas_thread())
            source = await anyio.to_thread.run_sync(resolve_model, self._model_choice)
            self._model = await anyio.to_thread.run_sync(
                lambda: _ShortContextModel(
                    source.location,
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=self._cpu_threads,
                    num_workers=self.workers,
                    local_files_only=source.local_files_only,
                )
            )
            self._queue = await exits.enter_async_context(DecodeQueue(self.workers))
            self._exits = exits.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        exits, self._exits = self._exits, AsyncExitStack()
        self._queue = None  # no new decodes; those nobody waits for end first
        try:
            await exits.__aexit__(exc_type, exc, tb)
        finally:
            self._model = None

    async def recognize_file(self, path: Path) -> list[EngineWord]:
        """Recognise raw 16 kHz mono s16le PCM, whole, in a worker thread; see :class:`Engine`."""
        model, queue = self._running()

        def recognise() -> list[EngineWord]:
            words: list[EngineWord] = []
            for offset, audio in file_pieces(path):
                segments, _ = model.transcribe(
                    audio, language="en", beam_size=BEAM_SIZE, word_timestamps=True, vad_filter=True
                )
                words.extend(engine_words(segments, offset))
            return words

        return await queue.run(recognise, deadline=time.monotonic() + BATCH_DEADLINE_SECONDS)

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> WhisperStream:
        """Start a real-time stream over the shared model and queue; see :class:`Engine`."""
        self._running()
        return WhisperStream(self.decode, max_delay=max_delay, partials=partials)

    async def decode(
        self,
        audio: Audio,
        offset: float,
        *,
        final: bool,
        deadline: float,
        optional: bool = False,
        idle: bool = False,
        quick: bool = False,
        late: Callable[[list[EngineWord]], None] | None = None,
    ) -> list[EngineWord] | None:
        """Decode a stream's window in a worker thread; times start at ``offset``.

        Args:
            audio: Float samples at 16 kHz.
            offset: Session seconds of the first sample.
            final: The words will be final (an utterance ended, or a flush): batch's options,
                temperature fallback included. Otherwise one pass at temperature 0.
            deadline: ``time.monotonic()`` by which the result is needed; the queue serves
                the earliest first.
            optional: Skip (return ``None``) unless a worker is free right now.
            idle: With ``optional``: skip unless every worker is free right now.
            quick: Wanted within about 0.3 s (a forced end): as an interim decode, but
                greedy (:data:`QUICK_BEAM_SIZE`), whatever ``final`` says.
            late: Gets the words if the caller stopped waiting for them
                (:meth:`DecodeQueue.run <speechmatics_modes.local._decode_queue.DecodeQueue.run>`).

        At most :data:`_TOKENS_PER_SECOND` tokens per second of audio are generated, so a word
        cut off at the end of the window cannot send decoding into a loop. There is no text
        prompt: prompting with earlier sentences made tiny.en loop on silence. The encoder sees
        :func:`encoder_seconds` of context, not 30 s (less for an interim decode).
        """
        model, queue = self._running()
        seconds = len(audio) / ENGINE_SAMPLE_RATE
        if seconds < SHORTEST_WINDOW_SECONDS:
            return []
        careful = final and not quick
        options: dict[str, Any] = {
            "max_new_tokens": int(8 + _TOKENS_PER_SECOND * seconds),
            "beam_size": QUICK_BEAM_SIZE if quick else BEAM_SIZE,
        }
        if not careful:
            options["temperature"] = 0.0

        frames = round(encoder_seconds(seconds, final=careful) * _FRAMES_PER_SECOND)

        def transcribe() -> list[EngineWord]:
            _ENCODER_FRAMES.set(frames)  # this worker thread's copy of the context only
            segments, _ = model.transcribe(
                audio,
                language="en",
                word_timestamps=True,
                condition_on_previous_text=False,
                no_speech_threshold=NO_SPEECH_THRESHOLD,
                log_prob_threshold=LOG_PROB_THRESHOLD,
                compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
                **options,
            )
            return engine_words(segments, offset, heard_again=not final)

        if optional:
            return await queue.try_run(transcribe, idle=idle, late=late)
        return await queue.run(transcribe, deadline=deadline, late=late)

    def _running(self) -> tuple[Any, DecodeQueue]:
        if self._model is None or self._queue is None:
            raise WhisperFailure("the engine is not running: use it inside `async with`")
        return self._model, self._queue
