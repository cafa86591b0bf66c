"""One stream across many sessions, against the local server: handovers, drops, idleness.

The engine here hears *content*: each word is a block of constant-valued samples whose value
names the word, so a session that is replayed audio recognises exactly the same words at the
same stream times. That makes "no word lost, none duplicated, timestamps exact" checkable
without real speech; the proof on real speech is in test_resilient_speech.py.
"""

from __future__ import annotations

import itertools
import struct
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

import pytest

from speechmatics_modes import (
    AudioFormat,
    AuthenticationError,
    Final,
    Settings,
    TransportError,
    stream,
)
from speechmatics_modes._rollover import AudioGap, Reconnected, RolloverPolicy, SessionRollover
from speechmatics_modes.local import EngineWord, Faults, LocalServer, SocketFault, StreamUpdate

pytestmark = pytest.mark.anyio

RATE = 16000
WORD_SECONDS = 0.4
GAP_SECONDS = 0.4
FORMAT = AudioFormat(encoding="pcm_s16le", sample_rate=RATE, chunk_size=3200)
FAST = {"backoff_initial": 0.01, "backoff_max": 0.05, "backoff_jitter": 0.0}


class ToneEngine:
    """Hears a word wherever samples hold a constant non-zero value; the value names it."""

    name = "tones"

    async def recognize_file(self, path: Path) -> list[EngineWord]:
        stream = ToneStream()
        update = await stream.feed(path.read_bytes())
        return [*update.finals, *(await stream.flush()).finals]

    async def open_stream(self, *, max_delay: float) -> ToneStream:
        return ToneStream()

    async def __aenter__(self) -> ToneEngine:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class ToneStream:
    def __init__(self) -> None:
        self._samples = 0
        self._run: tuple[int, int] | None = None  # (value, first sample)

    async def feed(self, pcm: bytes) -> StreamUpdate:
        finals: list[EngineWord] = []
        for value, group in itertools.groupby(array("h", pcm)):
            count = len(list(group))
            if self._run is not None and self._run[0] != value:
                finals.append(self._word(self._run, self._samples))
                self._run = None
            if value and self._run is None:
                self._run = (value, self._samples)
            self._samples += count
        partial = (self._word(self._run, self._samples),) if self._run else ()
        return StreamUpdate(tuple(finals), partial, bool(finals) and self._run is None)

    async def flush(self) -> StreamUpdate:
        run, self._run = self._run, None
        return StreamUpdate((self._word(run, self._samples),) if run else (), (), run is not None)

    async def aclose(self) -> None:
        return None

    @staticmethod
    def _word(run: tuple[int, int], end: int) -> EngineWord:
        value, start = run
        return EngineWord(f"w{value // 100}", start / RATE, end / RATE, 1.0)


Expected = list[tuple[str, float, float]]


def tone_audio(
    words: int, *, silence_every: int = 0, silence_seconds: float = 0.0
) -> tuple[bytes, Expected]:
    """Words w1, w2, ... with short gaps (optionally a long silence every few words), and the
    words with their exact times."""
    parts = [bytes(int(0.2 * RATE) * 2)]
    expected: Expected = []
    clock = 0.2
    for index in range(words):
        value = 100 * (index % 300 + 1)
        parts.append(struct.pack("<h", value) * int(WORD_SECONDS * RATE))
        expected.append((f"w{value // 100}", clock, clock + WORD_SECONDS))
        clock += WORD_SECONDS + GAP_SECONDS
        parts.append(bytes(int(GAP_SECONDS * RATE) * 2))
        if silence_every and (index + 1) % silence_every == 0:
            parts.append(bytes(int(silence_seconds * RATE) * 2))
            clock += silence_seconds
    return b"".join(parts), expected


def wav(pcm: bytes) -> bytes:
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        *(b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, 1, RATE, RATE * 2, 2, 16),
        *(b"data", len(pcm)),
    )
    return header + pcm


def assert_same_words(words: Expected, expected: Expected) -> None:
    assert [w[0] for w in words] == [w[0] for w in expected]
    for (_, start, end), (_, want_start, want_end) in zip(words, expected, strict=True):
        assert start == pytest.approx(want_start, abs=1e-3)
        assert end == pytest.approx(want_end, abs=1e-3)


async def run_stream(
    server: LocalServer, source: object, policy: RolloverPolicy, **kwargs: object
) -> tuple[list[object], list[tuple[str, float, float]], object]:
    events: list[object] = []
    async with stream(
        source, settings=server.settings(), rollover=policy, audio_format=FORMAT, **kwargs
    ) as feed:
        async for event in feed:
            events.append(event)
    words = [
        (w.content.lower(), w.start, w.end)
        for event in events
        if isinstance(event, Final)
        for w in event.words
        if not w.is_punctuation
    ]
    return events, words, feed


async def test_budget_rollovers_hand_over_at_pauses_without_losing_a_word() -> None:
    audio, expected = tone_audio(40)
    policy = RolloverPolicy(max_session=0.3, **FAST)
    async with LocalServer(engine=ToneEngine()) as server:
        events, words, feed = await run_stream(server, wav(audio), policy, pace=20.0)
    assert_same_words(words, expected)
    rollovers = [e for e in events if isinstance(e, SessionRollover)]
    assert rollovers
    assert all(r.reason == "budget" and r.at_pause for r in rollovers)
    assert feed.metrics.rollovers == len(rollovers)
    assert len(feed.transcript.session_ids) == feed.metrics.sessions == len(rollovers) + 1
    spoken = [w.content.lower() for w in feed.transcript.words if not w.is_punctuation]
    assert spoken == [w[0] for w in expected]
