"""The offline engine: pocketsphinx 5 with its bundled US English model.

Where decoding runs, and why:

* **Never in the server's process.** The pocketsphinx decoder holds the GIL while it decodes (a
  16 s file stalled other threads for ~1.6 s), and a 100 ms chunk of streaming audio holds it
  for up to ~50 ms. With a few sessions that would starve the event loop, so every decoder lives
  in a worker process and the event loop only waits on pipes (from a worker thread that
  releases the GIL while it blocks).
* **Batch jobs share a small process pool** (at most :data:`MAX_BATCH_WORKERS`), started in
  ``__aenter__``. Each worker loads the model once and resets the decoder's feature
  normalisation (CMN) before every job, so a job decodes the same words as on a fresh decoder
  (confidences can differ in the last digits).
* **Each streaming session gets its own worker process**, fed through a pipe. A streaming
  decoder keeps adapting its CMN, so sharing one between sessions (or with batch) corrupts both;
  a process per session also lets sessions decode in parallel on separate cores. Workers are
  forked from a ``forkserver`` that has already imported pocketsphinx, so a session starts in
  about the time it takes to load the model (~0.6 s).

Utterances are cut by :class:`_Segmenter` from pocketsphinx's voice activity detector (30 ms
frames): after :attr:`_Limits.pause` of non-speech (an ``EndOfUtterance``), or, to honour
``max_delay``, at the first short gap once the oldest unfinished speech is more than
:attr:`_Limits.soft` old, and unconditionally at :attr:`_Limits.hard`. The decoder sees every
sample (silence included), so word times are simply the utterance's offset in the session plus
pocketsphinx's frame times (100 frames per second). Batch decoding cuts the same way, with
longer limits, and decodes each utterance whole (``full_utt``), which is both more accurate and
keeps memory bounded for long files.

The language-model weights are scaled by :data:`LM_WEIGHT_SCALE` (0.8): on the shared clips
this took word error rate from 27 % to 22 % (``python -m benchmarks.engine_accuracy``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import re
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import pocketsphinx

from speechmatics_modes._exceptions import ServerError
from speechmatics_modes.local._engine import ENGINE_SAMPLE_RATE, EngineWord, StreamUpdate

__all__ = [
    "LM_WEIGHT_SCALE",
    "MAX_BATCH_WORKERS",
    "STREAMS_PER_CORE",
    "EngineFailure",
    "PocketsphinxEngine",
    "StreamingDecoder",
    "new_decoder",
    "recognize_pcm_file",
]

LM_WEIGHT_SCALE = 0.8
"""Factor applied to pocketsphinx's default ``lw``, ``fwdflatlw`` and ``bestpathlw``."""

MAX_BATCH_WORKERS = 2
"""Batch decoder processes; each uses one core and ~100 MB."""

STREAMS_PER_CORE = 2
"""Live streams one core keeps up with: a stream costs about 0.46 of a core (real-time factor
in docs/engines.md), and 2 cores kept 4 paced streams on time."""

FRAMES_PER_SECOND = 100
"""pocketsphinx's feature frame rate, the unit of segment times."""

_DEFAULT_WEIGHTS = {"lw": 6.5, "fwdflatlw": 8.5, "bestpathlw": 9.5}
_BYTES_PER_SECOND = ENGINE_SAMPLE_RATE * 2
_FRAMES_PER_READ = 64
_WORKER_EXIT_TIMEOUT = 5.0
_PRONUNCIATION_SUFFIX = re.compile(r"\(\d+\)$")

WordTuple = tuple[str, float, float, float]
"""An :class:`EngineWord` as plain values, for pipes (slotted frozen dataclasses do not unpickle
on every Python we support)."""


class EngineFailure(ServerError):
    """A decoder worker process failed or died; the job or session cannot continue."""


def new_decoder(lm_weight_scale: float = LM_WEIGHT_SCALE) -> pocketsphinx.Decoder:
    """Load the bundled English model with scaled language-model weights."""
    weights = {name: value * lm_weight_scale for name, value in _DEFAULT_WEIGHTS.items()}
    return pocketsphinx.Decoder(loglevel="FATAL", **weights)


def _is_word(token: str) -> bool:
    """Tell words from silence and filler tokens (``<s>``, ``<sil>``, ``[NOISE]``, ``++UH++``)."""
    return not token.startswith(("<", "[", "+"))


def _decoded_words(decoder: pocketsphinx.Decoder, offset: float) -> list[EngineWord]:
    """Read the decoder's current best path as words, with times relative to ``offset``."""
    if decoder.hyp() is None:
        return []
    words = []
    for segment in decoder.seg():
        if not _is_word(segment.word):
            continue
        words.append(
            EngineWord(
                text=_PRONUNCIATION_SUFFIX.sub("", segment.word),
                start=offset + segment.start_frame / FRAMES_PER_SECOND,
                end=offset + (segment.end_frame + 1) / FRAMES_PER_SECOND,
                confidence=min(1.0, max(0.0, float(segment.prob))),
            )
        )
    return words


@dataclass(frozen=True, slots=True)
class _Limits:
    """When :class:`_Segmenter` ends an utterance, in seconds."""

    pause: float
    """Non-speech this long after speech ends the utterance: the speaker paused."""
    soft: float
    """Speech older than this: end at the next short gap."""
    hard: float
    """Speech older than this: end now, mid-word if need be."""
    gap: float = 0.09
    """A gap this long is short enough to find often, long enough to fall between words."""
    idle: float = 10.0
    """Silence-only utterances are restarted after this, so they never grow without bound."""

    @classmethod
    def for_max_delay(cls, max_delay: float) -> _Limits:
        """Limits that make words final within ``max_delay`` of being spoken.

        A margin covers what arrives after the cut: the client's chunk size, decoding and the
        trip back. Pauses end utterances at 0.5 s, or sooner if ``max_delay`` demands it.
        """
        hard = max(0.3, max_delay - 0.35)
        return cls(pause=min(0.5, hard), soft=0.6 * hard, hard=hard)


BATCH_LIMITS = _Limits(pause=0.5, soft=20.0, hard=30.0)
"""Batch cuts at real pauses and bounds utterances (and memory) at 30 s."""


@dataclass(frozen=True, slots=True)
class _Ending:
    """Why an utterance ended, as :class:`_Segmenter` saw it."""

    paused: bool
    """The speaker paused (rather than ``max_delay`` or a length limit forcing the cut)."""
    heard_speech: bool
    """Any frame was speech; without speech, whatever the decoder guessed is noise."""


class _Segmenter:
    """Decides, frame by frame, where utterances end; knows nothing of decoding."""

    def __init__(self, limits: _Limits) -> None:
        self._limits = limits
        self._vad = pocketsphinx.Vad(pocketsphinx.Vad.LOOSE, ENGINE_SAMPLE_RATE)
        self.frame_bytes: int = self._vad.frame_bytes
        self._frame_seconds = self.frame_bytes / _BYTES_PER_SECOND
        self.restart()

    def restart(self) -> None:
        """Forget the current utterance: the next frame starts a new one."""
        self._elapsed = 0.0
        self._speech_since: float | None = None
        self._silence = 0.0

    @property
    def heard_speech(self) -> bool:
        """The current utterance has speech in it, so its words are worth decoding."""
        return self._speech_since is not None

    def push(self, frame: bytes) -> _Ending | None:
        """Take one frame of :attr:`frame_bytes`; say whether the utterance ends with it."""
        speech = bool(self._vad.is_speech(frame))
        self._elapsed += self._frame_seconds
        if speech:
            if self._speech_since is None:
                self._speech_since = self._elapsed - self._frame_seconds
            self._silence = 0.0
        else:
            self._silence += self._frame_seconds
        ends, paused = self._decide()
        if not ends:
            return None
        ending = _Ending(paused=paused, heard_speech=self.heard_speech)
        self.restart()
        return ending

    def _decide(self) -> tuple[bool, bool]:
        limits = self._limits
        if self._speech_since is None:
            return self._elapsed >= limits.idle, False
        if self._silence >= limits.pause:
            return True, True
        age = self._elapsed - self._speech_since
        forced = age >= limits.hard or (age >= limits.soft and self._silence >= limits.gap)
        return forced, False


def _cut(segmenter: _Segmenter, pcm: bytes) -> Iterator[tuple[bytes, _Ending | None]]:
    """Split whole frames of ``pcm`` into runs that end where the segmenter ends utterances.

    Yields (audio, how the utterance ends after it). The run after the last cut is yielded at
    the end with no ending; it includes a trailing partial frame, which the
    voice activity detector cannot judge.
    """
    start = 0
    for position in range(0, len(pcm) - segmenter.frame_bytes + 1, segmenter.frame_bytes):
        ending = segmenter.push(pcm[position : position + segmenter.frame_bytes])
        if ending is not None:
            yield pcm[start : position + segmenter.frame_bytes], ending
            start = position + segmenter.frame_bytes
    if start < len(pcm):
        yield pcm[start:], None


class StreamingDecoder:
    """Incremental recognition for one session, in whichever process owns it."""

    def __init__(self, max_delay: float, decoder: pocketsphinx.Decoder | None = None) -> None:
        self._decoder = decoder if decoder is not None else new_decoder()
        self._segmenter = _Segmenter(_Limits.for_max_delay(max_delay))
        self._pending = b""
        self._utterance_offset = 0
        """Bytes of session audio before the current utterance."""
        self._utterance_bytes = 0
        self._first_utterance: list[bytes] | None = []
        """Audio of the utterance being decoded while CMN is still at its initial guess."""
        self._decoder.start_utt()

    def feed(self, pcm: bytes) -> StreamUpdate:
        """Decode more audio; see :meth:`StreamingRecognizer.feed`."""
        data = self._pending + pcm
        whole = len(data) - len(data) % self._segmenter.frame_bytes
        self._pending = data[whole:]
        finals: list[EngineWord] = []
        utterance_ended = False
        for audio, ending in _cut(self._segmenter, data[:whole]):
            self._process(audio)
            if ending is not None:
                finals.extend(self._end_utterance(ending.heard_speech))
                utterance_ended = utterance_ended or (ending.paused and bool(finals))
        return StreamUpdate(tuple(finals), self._partial(), utterance_ended)

    def flush(self) -> StreamUpdate:
        """Finalise everything heard so far; see :meth:`StreamingRecognizer.flush`."""
        if len(self._pending) >= 2:
            whole = len(self._pending) - len(self._pending) % 2
            self._process(self._pending[:whole])
        self._pending = b""
        heard_speech = self._segmenter.heard_speech
        self._segmenter.restart()
        return StreamUpdate(finals=tuple(self._end_utterance(heard_speech)))

    def close(self) -> None:
        """End the decoder's utterance so it can be released cleanly."""
        self._decoder.end_utt()

    def _process(self, audio: bytes) -> None:
        if audio:
            self._decoder.process_raw(audio)
            self._utterance_bytes += len(audio)
            if self._first_utterance is not None:
                self._first_utterance.append(audio)

    def _offset_seconds(self) -> float:
        return self._utterance_offset / _BYTES_PER_SECOND

    def _end_utterance(self, heard_speech: bool) -> list[EngineWord]:
        self._decoder.end_utt()
        words = _decoded_words(self._decoder, self._offset_seconds()) if heard_speech else []
        if self._first_utterance is not None and words:
            words = self._redecode_first_utterance(b"".join(self._first_utterance))
        if self._first_utterance is not None:
            self._first_utterance = None if words else []
        self._utterance_offset += self._utterance_bytes
        self._utterance_bytes = 0
        self._decoder.start_utt()
        return words

    def _redecode_first_utterance(self, audio: bytes) -> list[EngineWord]:
        """Decode the first speech again, now that CMN has adapted to this speaker and channel.

        Live CMN starts from a generic guess and needs a few seconds of speech to settle, so
        a session's first words came out far worse than the rest: on the shared clips, streaming
        WER was 32 % without this and 24 % with it (batch: 23 %). Once per session costs little.
        """
        self._decoder.start_utt()
        self._decoder.process_raw(audio)
        self._decoder.end_utt()
        return _decoded_words(self._decoder, self._offset_seconds())

    def _partial(self) -> tuple[EngineWord, ...]:
        if self._utterance_bytes == 0:
            return ()
        return tuple(_decoded_words(self._decoder, self._offset_seconds()))


def recognize_pcm_file(path: Path, decoder: pocketsphinx.Decoder) -> list[EngineWord]:
    """Decode a raw 16 kHz mono s16le file utterance by utterance, each decoded whole."""
    segmenter = _Segmenter(BATCH_LIMITS)
    words: list[EngineWord] = []
    utterance: list[bytes] = []
    offset = 0
    with path.open("rb") as reader:
        while block := reader.read(segmenter.frame_bytes * _FRAMES_PER_READ):
            for audio, ending in _cut(segmenter, block[: len(block) - len(block) % 2]):
                utterance.append(audio)
                if ending is not None:
                    audio = b"".join(utterance)
                    words.extend(_decode_whole(decoder, audio, offset, ending.heard_speech))
                    offset += len(audio)
                    utterance.clear()
    words.extend(_decode_whole(decoder, b"".join(utterance), offset, segmenter.heard_speech))
    return words


def _decode_whole(
    decoder: pocketsphinx.Decoder, audio: bytes, offset: int, heard_speech: bool
) -> list[EngineWord]:
    """Decode one utterance starting ``offset`` bytes into the file; skip it if silent."""
    if not heard_speech:
        return []
    decoder.start_utt()
    decoder.process_raw(audio, full_utt=True)
    decoder.end_utt()
    return _decoded_words(decoder, offset / _BYTES_PER_SECOND)


def _as_tuples(words: tuple[EngineWord, ...] | list[EngineWord]) -> list[WordTuple]:
    return [(word.text, word.start, word.end, word.confidence) for word in words]


def _as_words(rows: list[WordTuple]) -> tuple[EngineWord, ...]:
    return tuple(EngineWord(*row) for row in rows)


# --- Code that runs in worker processes -------------------------------------------------------

_pool_decoder: pocketsphinx.Decoder | None = None
_pool_initial_cmn = ""


def _pool_job(path: str) -> list[WordTuple]:
    """Batch job entry point: reuse this worker's decoder, reset to a fresh decoder's CMN."""
    global _pool_decoder, _pool_initial_cmn
    if _pool_decoder is None:
        _pool_decoder = new_decoder()
        _pool_initial_cmn = _pool_decoder.get_cmn(False)
    _pool_decoder.set_cmn(_pool_initial_cmn)
    return _as_tuples(recognize_pcm_file(Path(path), _pool_decoder))


def _stream_worker(connection: Connection, max_delay: float) -> None:
    """Streaming session entry point: answer requests until told to close (or orphaned)."""
    try:
        recognizer = StreamingDecoder(max_delay)
        connection.send(("ready", None))
        while _serve_one(connection, recognizer):
            pass
    except EOFError:
        return
    except Exception as exc:  # reported to the parent, which raises EngineFailure there
        connection.send(("error", f"{type(exc).__name__}: {exc}"))


def _serve_one(connection: Connection, recognizer: StreamingDecoder) -> bool:
    command, payload = connection.recv()
    if command == "close":
        recognizer.close()
        connection.send(("closed", None))
        return False
    update = recognizer.feed(payload) if command == "feed" else recognizer.flush()
    finals, partial = _as_tuples(update.finals), _as_tuples(update.partial)
    connection.send(("update", (finals, partial, update.utterance_ended)))
    return True


# --- The event-loop side ----------------------------------------------------------------------


def _worker_context() -> BaseContext:
    """A forkserver that has already imported pocketsphinx where possible, else spawn.

    Plain fork is avoided: forking a process that runs an event loop and threads is unsafe.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


class _WorkerSession:
    """One streaming session's worker process, driven over a pipe."""

    def __init__(self, process: BaseProcess, connection: Connection) -> None:
        self._process = process
        self._connection = connection
        self._lock = anyio.Lock()
        self._closed = False

    @classmethod
    async def start(cls, context: BaseContext, max_delay: float) -> _WorkerSession:
        parent_end, child_end = context.Pipe()
        process = context.Process(  # type: ignore[attr-defined]
            target=_stream_worker, args=(child_end, max_delay), daemon=True
        )
        await anyio.to_thread.run_sync(process.start)
        child_end.close()
        session = cls(process, parent_end)
        try:
            await session._receive("ready")
        except BaseException:
            await session.aclose()
            raise
        return session

    async def feed(self, pcm: bytes) -> StreamUpdate:
        return await self._request("feed", pcm)

    async def flush(self) -> StreamUpdate:
        return await self._request("flush", None)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await anyio.to_thread.run_sync(self._stop_process)

    def _stop_process(self) -> None:
        try:
            self._connection.send(("close", None))
            if self._connection.poll(_WORKER_EXIT_TIMEOUT):
                self._connection.recv()
        except (OSError, EOFError):
            pass
        self._process.join(_WORKER_EXIT_TIMEOUT)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()

    async def _request(self, command: str, payload: bytes | None) -> StreamUpdate:
        if self._closed:
            raise EngineFailure("the streaming recogniser is closed")
        async with self._lock:
            await anyio.to_thread.run_sync(self._connection.send, (command, payload))
            finals, partial, ended = await self._receive("update")
        return StreamUpdate(_as_words(finals), _as_words(partial), ended)

    async def _receive(self, expected: str) -> Any:
        try:
            kind, body = await anyio.to_thread.run_sync(self._connection.recv)
        except (EOFError, OSError) as exc:
            raise EngineFailure(
                f"the decoder process died (exit code {self._exit_code()})"
            ) from exc
        if kind != expected:
            raise EngineFailure(f"the decoder process failed: {body}")
        return body

    def _exit_code(self) -> int | None:
        self._process.join(0.1)
        return self._process.exitcode


class PocketsphinxEngine:
    """Offline English recognition with pocketsphinx, decoding in worker processes.

    Use as an async context manager: worker processes exist only inside it.
    """

    name = "pocketsphinx"

    def __init__(self, *, batch_workers: int = MAX_BATCH_WORKERS) -> None:
        """Configure the engine; nothing starts until ``async with``.

        Args:
            batch_workers: Processes decoding batch jobs in parallel (capped by the CPU count).
        """
        self._batch_workers = max(1, min(batch_workers, multiprocessing.cpu_count()))
        self.max_streams = STREAMS_PER_CORE * multiprocessing.cpu_count()
        """Live streams the server admits by default (each has its own decoder process)."""
        self._context: BaseContext | None = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._sessions: set[_WorkerSession] = set()

    async def __aenter__(self) -> PocketsphinxEngine:
        self._context = _worker_context()
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=self._batch_workers, mp_context=self._context
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            for session in list(self._sessions):
                await session.aclose()
            self._sessions.clear()
            if self._pool is not None:
                pool, self._pool = self._pool, None
                await anyio.to_thread.run_sync(lambda: pool.shutdown(cancel_futures=True))

    async def recognize_file(self, path: Path) -> list[EngineWord]:
        """Recognise raw 16 kHz mono s16le PCM in a batch worker; see :class:`Engine`."""
        if self._pool is None:
            raise EngineFailure("the engine is not running: use it inside `async with`")
        future = self._pool.submit(_pool_job, str(path))
        try:
            rows = await asyncio.wrap_future(future)
        except concurrent.futures.process.BrokenProcessPool as exc:
            raise EngineFailure(f"a batch decoder process died: {exc}") from exc
        return list(_as_words(rows))

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> _StreamingRecognizer:
        """Start a worker process for one real-time session; see :class:`Engine`."""
        if self._context is None or self._pool is None:
            raise EngineFailure("the engine is not running: use it inside `async with`")
        session = await _WorkerSession.start(self._context, max_delay)
        self._sessions.add(session)
        return _StreamingRecognizer(session, self._sessions)


class _StreamingRecognizer:
    """The :class:`StreamingRecognizer` handed to the server; forgets itself when closed."""

    def __init__(self, session: _WorkerSession, registry: set[_WorkerSession]) -> None:
        self._session = session
        self._registry = registry

    async def feed(self, pcm: bytes) -> StreamUpdate:
        return await self._session.feed(pcm)

    async def flush(self) -> StreamUpdate:
        return await self._session.flush()

    async def aclose(self) -> None:
        await self._session.aclose()
        self._registry.discard(self._session)
