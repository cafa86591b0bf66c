"""The default engine: Whisper tiny.en through faster-whisper (CTranslate2), fully offline.

Decisions a reader would otherwise have to rediscover:

* **One model, a bounded pool of threads.** CTranslate2 releases the GIL while it computes and
  one loaded model may serve several threads at once (``num_workers``), so every job and session
  shares one model, and decoding runs in worker threads behind a capacity limiter of
  :attr:`WhisperEngine.workers` slots. The event loop only awaits those threads. On 2 cores the
  default is 2 workers of 1 thread each: two decodes in parallel beat one decode on two threads
  when several sessions are live.
* **Weights never download silently**: see :mod:`~speechmatics_modes.local._model_files`.
* **Voice activity filtering is always on** (faster-whisper's Silero VAD): without it Whisper
  turns silence into words ("You").
* **Punctuation and capitals are Whisper's own.** Marks are split off each word into
  :attr:`EngineWord.punctuation`, and the result shaper sends them as separate punctuation
  results, as the service does.
* **Batch decodes the whole file**, in pieces of :data:`BATCH_PIECE_SECONDS` cut at the quietest
  moment near each boundary, so an hour of audio never sits in memory as floats at once.

Real-time uses a *local agreement* policy, because Whisper has no incremental decoder: the audio
not yet committed is re-decoded about once a second (:data:`DECODE_INTERVAL`); the words two
consecutive decodes agree on become final, and so does everything at a pause, at ``flush()``, or
when waiting for the next decode would break ``max_delay``. Committed audio is cut off the
buffer, so a decode never covers more than about ``max_delay`` plus a second of audio however
long the session runs; finals are never revised.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel

from speechmatics_modes._exceptions import ServerError
from speechmatics_modes.local._engine import ENGINE_SAMPLE_RATE, EngineWord, StreamUpdate
from speechmatics_modes.local._model_files import resolve_model

__all__ = [
    "BATCH_PIECE_SECONDS",
    "DECODE_INTERVAL",
    "PAUSE_SECONDS",
    "LocalAgreement",
    "WhisperEngine",
    "WhisperStream",
    "split_punctuation",
]

Audio = npt.NDArray[np.float32]

DECODE_INTERVAL = 1.0
"""Seconds of new audio between two re-decodes of a stream (shorter if ``max_delay`` needs)."""

PAUSE_SECONDS = 0.8
"""Audio after the last decoded word this long ends the utterance: the speaker paused."""

MAX_BUFFER_SECONDS = 12.0
"""Uncommitted audio is never older than this, whatever ``max_delay`` allows (Whisper's window
is 30 s; a shorter buffer keeps each re-decode cheap)."""

MAX_CONTEXT_SECONDS = 8.0
"""Committed audio is cut off the buffer once it holds this much, even mid-sentence."""

BATCH_PIECE_SECONDS = 600.0
"""Batch files are decoded in pieces this long (about 38 MB of float samples each)."""

_DECODE_MARGIN = 0.4
"""Seconds a re-decode and the trip to the client may take, kept free inside ``max_delay``."""
_CUT_SEARCH_SECONDS = 5.0
_CUT_FRAME_SAMPLES = ENGINE_SAMPLE_RATE // 100
_SILENCE_KEPT_SECONDS = 1.0
_TOKENS_PER_SECOND = 10
_LEADING_MARKS = "\"'([{¿¡-«"
_TRAILING_MARKS = ".,?!:;\"')]}-»…"
_SENTENCE_MARKS = frozenset(".?!")


class WhisperFailure(ServerError):
    """The Whisper engine was used outside ``async with`` or its model could not load."""


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


def engine_words(segments: Iterable[Any], offset: float) -> list[EngineWord]:
    """faster-whisper segments as engine words, ``offset`` seconds later.

    A token that is punctuation only (rare: faster-whisper merges marks into words) joins the
    word before it.
    """
    words: list[EngineWord] = []
    for segment in segments:
        for word in segment.words or ():
            text, mark = split_punctuation(str(word.word))
            if text:
                start = offset + float(word.start)
                end = max(start, offset + float(word.end))
                confidence = min(1.0, max(0.0, float(word.probability)))
                words.append(EngineWord(text, start, end, confidence, mark))
            elif mark and words and not words[-1].punctuation:
                previous = words[-1]
                words[-1] = EngineWord(
                    previous.text, previous.start, previous.end, previous.confidence, mark
                )
    return words


def pcm_to_audio(pcm: bytes) -> Audio:
    """Mono s16le bytes as the float32 samples in [-1, 1) that faster-whisper takes."""
    audio: Audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768.0)
    return audio


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


def _same(first: EngineWord, second: EngineWord) -> bool:
    return (first.text.lower(), first.punctuation) == (second.text.lower(), second.punctuation)


@dataclass
class LocalAgreement:
    """Which words of successive decodes of one stream are final; sans I/O, no model.

    Each decode hypothesises the words of the uncommitted audio. A word is final once two
    consecutive hypotheses agree on it and on every word before it, or when it is too old to
    wait for another decode, or when the speaker paused after it.
    """

    max_delay: float
    """Seconds after its end by which a word must be final."""
    interval: float
    """Seconds of audio between decodes."""
    previous: tuple[EngineWord, ...] = ()
    """The last hypothesis, minus whatever has been committed since."""
    committed_end: float = 0.0
    """Session time at which the last final word ends."""

    def decide(self, hypothesis: Sequence[EngineWord], audio_end: float) -> StreamUpdate:
        """Take a decode of the uncommitted audio (ending at ``audio_end``); say what is final."""
        words = self._uncommitted(hypothesis)
        paused = bool(words) and audio_end - words[-1].end >= PAUSE_SECONDS
        if paused:
            count = len(words)
        else:
            agreed = 0
            while agreed < min(len(words), len(self.previous)) and _same(
                words[agreed], self.previous[agreed]
            ):
                agreed += 1
            deadline = audio_end + self.interval + _DECODE_MARGIN - self.max_delay
            overdue = sum(1 for word in words if word.end <= deadline)
            count = max(agreed, overdue)
        finals = tuple(words[:count])
        self.previous = tuple(words[count:])
        self._commit(finals)
        return StreamUpdate(finals, self.previous, paused)

    def commit_all(self, hypothesis: Sequence[EngineWord]) -> StreamUpdate:
        """Everything in ``hypothesis`` is final (a flush)."""
        finals = tuple(self._uncommitted(hypothesis))
        self.previous = ()
        self._commit(finals)
        return StreamUpdate(finals)

    def _uncommitted(self, hypothesis: Sequence[EngineWord]) -> list[EngineWord]:
        """The words of a decode that lie after the last final (its audio may still be there)."""
        return [word for word in hypothesis if (word.start + word.end) / 2 > self.committed_end]

    def _commit(self, finals: Sequence[EngineWord]) -> None:
        if finals:
            self.committed_end = finals[-1].end


class WhisperStream:
    """One real-time session's :class:`StreamingRecognizer` over the shared model."""

    def __init__(self, engine: WhisperEngine, max_delay: float) -> None:
        self._engine = engine
        max_delay = min(max_delay, MAX_BUFFER_SECONDS - 2 * DECODE_INTERVAL)
        interval = min(DECODE_INTERVAL, max(0.2, (max_delay - _DECODE_MARGIN) / 2))
        self._agreement = LocalAgreement(max_delay=max_delay, interval=interval)
        self._buffer: Audio = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0.0
        """Session seconds at the buffer's first sample."""
        self._odd_byte = b""
        self._undecoded = 0.0
        self._partial: tuple[EngineWord, ...] = ()
        self._closed = False

    @property
    def buffered_seconds(self) -> float:
        """Seconds of audio held for the next decode: bounded, however long the session."""
        return len(self._buffer) / ENGINE_SAMPLE_RATE

    @property
    def _audio_end(self) -> float:
        return self._buffer_start + self.buffered_seconds

    async def feed(self, pcm: bytes) -> StreamUpdate:
        """Buffer audio; re-decode once :data:`DECODE_INTERVAL` of it has arrived."""
        self._check_open()
        data = self._odd_byte + pcm
        whole = len(data) - len(data) % 2
        self._odd_byte = data[whole:]
        self._buffer = np.concatenate((self._buffer, pcm_to_audio(data[:whole])))
        self._undecoded += whole / 2 / ENGINE_SAMPLE_RATE
        if self._undecoded < self._agreement.interval:
            return StreamUpdate(partial=self._partial)
        self._undecoded = 0.0
        hypothesis = await self._decode(final=False)
        update = self._agreement.decide(hypothesis, self._audio_end)
        self._partial = update.partial
        self._trim(hypothesis, update)
        return update

    async def flush(self) -> StreamUpdate:
        """Decode what is buffered one last time and make all of it final."""
        self._check_open()
        hypothesis = await self._decode(final=True) if len(self._buffer) else []
        update = self._agreement.commit_all(hypothesis)
        self._buffer_start = self._audio_end
        self._buffer = np.zeros(0, dtype=np.float32)
        self._undecoded = 0.0
        self._partial = ()
        return update

    async def aclose(self) -> None:
        """Drop the buffer; the model stays with the engine."""
        self._closed = True
        self._buffer = np.zeros(0, dtype=np.float32)

    async def _decode(self, *, final: bool) -> list[EngineWord]:
        return await self._engine.decode(self._buffer, self._buffer_start, final=final)

    def _trim(self, hypothesis: Sequence[EngineWord], update: StreamUpdate) -> None:
        """Cut committed audio off the front of the buffer, at a sentence end if possible.

        Committed words stay in the buffer until their sentence ends, because Whisper decodes
        a sentence's remaining words (and their case and punctuation) far better with its
        start in view; cutting right after each final word clipped the next word's onset and
        tripled the word error rate.
        """
        cut_at = self._buffer_start
        at_boundary = update.utterance_ended or (
            bool(update.finals) and update.finals[-1].punctuation in _SENTENCE_MARKS
        )
        if not hypothesis:
            cut_at = self._audio_end - _SILENCE_KEPT_SECONDS
        elif at_boundary or self.buffered_seconds > MAX_CONTEXT_SECONDS:
            next_start = update.partial[0].start if update.partial else self._audio_end
            cut_at = min(self._agreement.committed_end, next_start)
        cut_at = max(cut_at, self._audio_end - MAX_BUFFER_SECONDS)
        samples = round((cut_at - self._buffer_start) * ENGINE_SAMPLE_RATE)
        if samples > 0:
            self._buffer = self._buffer[samples:]
            self._buffer_start += samples / ENGINE_SAMPLE_RATE

    def _check_open(self) -> None:
        if self._closed:
            raise WhisperFailure("the streaming recogniser is closed")


class WhisperEngine:
    """Offline English recognition with Whisper tiny.en, decoding in a bounded thread pool.

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
        self.max_streams = self.workers
        """Live streams the server admits by default: one per decode worker. A stream
        re-decodes up to 12 s of audio every second, which keeps a one-thread worker about
        90 % busy (real-time factor 0.875 in docs/engines.md); 2 workers on 2 cores kept up
        with 2 paced streams and fell behind with 3."""
        self._model: Any = None
        self._limiter: anyio.CapacityLimiter | None = None

    async def __aenter__(self) -> WhisperEngine:
        source = await anyio.to_thread.run_sync(resolve_model, self._model_choice)
        self._model = await anyio.to_thread.run_sync(
            lambda: WhisperModel(
                source.location,
                device="cpu",
                compute_type="int8",
                cpu_threads=self._cpu_threads,
                num_workers=self.workers,
                local_files_only=source.local_files_only,
            )
        )
        self._limiter = anyio.CapacityLimiter(self.workers)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._model = None
        self._limiter = None

    async def recognize_file(self, path: Path) -> list[EngineWord]:
        """Recognise raw 16 kHz mono s16le PCM, whole, in a worker thread; see :class:`Engine`."""
        model, limiter = self._running()

        def recognise() -> list[EngineWord]:
            words: list[EngineWord] = []
            for offset, audio in file_pieces(path):
                segments, _ = model.transcribe(
                    audio, language="en", beam_size=5, word_timestamps=True, vad_filter=True
                )
                words.extend(engine_words(segments, offset))
            return words

        return await anyio.to_thread.run_sync(recognise, limiter=limiter)

    async def open_stream(self, *, max_delay: float) -> WhisperStream:
        """Start a local-agreement stream over the shared model; see :class:`Engine`."""
        self._running()
        return WhisperStream(self, max_delay)

    async def decode(self, audio: Audio, offset: float, *, final: bool) -> list[EngineWord]:
        """Decode a stream's buffered audio in a worker thread; times start at ``offset``.

        Re-decodes are tuned for bounded cost: no temperature fallback, and at most
        :data:`_TOKENS_PER_SECOND` tokens per second of audio, so a word cut off at the end
        of the buffer cannot send greedy decoding into a loop. The final decode of a flush is
        allowed fallback, as batch is. There is no text prompt: committed words stay in the
        audio until their sentence ends, and prompting with earlier sentences made tiny.en
        loop on silence ("I'm going to take a look at how I'm going to...": 51 % WER over a
        2-minute stream with pauses, 2.6 % without).
        """
        model, limiter = self._running()
        seconds = len(audio) / ENGINE_SAMPLE_RATE
        options: dict[str, Any] = {"max_new_tokens": int(8 + _TOKENS_PER_SECOND * seconds)}
        if not final:
            options["temperature"] = 0.0

        def transcribe() -> list[EngineWord]:
            segments, _ = model.transcribe(
                audio,
                language="en",
                beam_size=5,
                word_timestamps=True,
                vad_filter=True,
                vad_parameters={"min_silence_duration_ms": 500},
                condition_on_previous_text=False,
                **options,
            )
            return engine_words(segments, offset)

        return await anyio.to_thread.run_sync(transcribe, limiter=limiter)

    def _running(self) -> tuple[Any, anyio.CapacityLimiter]:
        if self._model is None or self._limiter is None:
            raise WhisperFailure("the engine is not running: use it inside `async with`")
        return self._model, self._limiter
