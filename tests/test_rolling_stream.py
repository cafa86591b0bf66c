"""One stream across many sessions, against the local server: handovers, drops, idleness.

The engine here hears *content*: each word is a block of constant-valued samples whose value
names the word, so a session that is replayed audio recognises exactly the same words at the
same stream times. That makes "no word lost, none duplicated, timestamps exact" checkable
without real speech; the proof on real speech is in test_rolling_stream_speech.py.
"""

from __future__ import annotations

import itertools
import struct
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import anyio
import pytest
from pydantic import SecretStr

from speechmatics_modes import (
    AudioFormat,
    AudioGap,
    AudioSource,
    AuthenticationError,
    Final,
    Reconnected,
    RolloverPolicy,
    SessionLimitError,
    SessionRollover,
    Settings,
    StreamEvent,
    StreamMetrics,
    Transcript,
    TransportError,
    stream,
    transcribe,
)
from speechmatics_modes.local import (
    EngineWord,
    Faults,
    LocalServer,
    ScriptedEngine,
    SocketFault,
    StreamUpdate,
)
from speechmatics_modes.local._engine import NothingToStart
from tests.conftest import final_words

pytestmark = pytest.mark.anyio

RATE = 16000
WORD_SECONDS = 0.4
GAP_SECONDS = 0.4
FORMAT = AudioFormat(encoding="pcm_s16le", sample_rate=RATE, chunk_size=3200)
FAST = RolloverPolicy(backoff_initial=0.01, backoff_max=0.05, backoff_jitter=0.0)


def fast(**changes: object) -> RolloverPolicy:
    """The test policy (backoff in milliseconds) with some fields changed, validated."""
    return RolloverPolicy.model_validate({**FAST.model_dump(), **changes})


class ToneEngine(NothingToStart):
    """Hears a word wherever samples hold a constant non-zero value; the value names it."""

    name = "tones"

    def __init__(
        self, overhang: float = 0.0, max_streams: int | None = None, utterance_pause: float = 0.0
    ) -> None:
        self.max_streams = max_streams
        """Live sessions the server admits (``None``: no limit)."""
        self.overhang = overhang
        """Seconds each word's end is reported late, so it overlaps the next word (Whisper's
        timestamps do that)."""
        self.utterance_pause = utterance_pause
        """Seconds of silence that end an utterance: its words stay partial until then, as
        Whisper's do (0: each word is final as soon as it ends)."""

    async def recognize_file(self, path: Path) -> list[EngineWord]:
        stream = ToneStream(self.overhang)
        update = await stream.feed(await anyio.Path(path).read_bytes())
        return [*update.finals, *(await stream.flush()).finals]

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> ToneStream:
        return ToneStream(self.overhang, self.utterance_pause)


class ToneStream:
    def __init__(self, overhang: float, utterance_pause: float = 0.0) -> None:
        self._overhang = overhang
        self._pause_samples = int(utterance_pause * RATE)
        self._samples = 0
        self._quiet = 0  # samples of silence since the last word
        self._held: list[EngineWord] = []  # ended words waiting for the utterance to end
        self._run: tuple[int, int] | None = None  # (value, first sample)

    async def feed(self, pcm: bytes) -> StreamUpdate:
        for value, group in itertools.groupby(array("h", pcm)):
            count = len(list(group))
            if self._run is not None and self._run[0] != value:
                self._held.append(self._word(self._run, self._samples))
                self._run = None
            if value and self._run is None:
                self._run = (value, self._samples)
            self._samples += count
            self._quiet = 0 if value else self._quiet + count
        finals: tuple[EngineWord, ...] = ()
        utterance_over = self._run is None and self._quiet >= self._pause_samples
        if utterance_over or not self._pause_samples:
            finals, self._held = tuple(self._held), []
        running = (self._word(self._run, self._samples),) if self._run else ()
        return StreamUpdate(finals, (*self._held, *running), bool(finals) and self._run is None)

    async def flush(self) -> StreamUpdate:
        run, self._run = self._run, None
        words = (*self._held, *((self._word(run, self._samples),) if run else ()))
        self._held = []
        return StreamUpdate(words, (), bool(words))

    async def aclose(self) -> None:
        return None

    def _word(self, run: tuple[int, int], end: int) -> EngineWord:
        value, start = run
        return EngineWord(f"w{value // 100 - 20}", start / RATE, end / RATE + self._overhang, 1.0)


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
        value = 2000 + 100 * (index % 300 + 1)  # loud enough not to count as quiet
        parts.append(struct.pack("<h", value) * int(WORD_SECONDS * RATE))
        expected.append((f"w{value // 100 - 20}", clock, clock + WORD_SECONDS))
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
    server: LocalServer, source: AudioSource, policy: RolloverPolicy, pace: float | None = None
) -> tuple[list[StreamEvent], Expected, StreamMetrics, Transcript]:
    events: list[StreamEvent] = []
    async with stream(
        source, settings=server.settings(), rollover=policy, audio_format=FORMAT, pace=pace
    ) as feed:
        async for event in feed:
            events.append(event)
    words = final_words(events)
    assert feed.metrics is not None
    return events, words, feed.metrics, feed.transcript


async def test_budget_rollovers_hand_over_at_pauses_without_losing_a_word() -> None:
    audio, expected = tone_audio(40)
    policy = fast(max_session=0.3)
    async with LocalServer(engine=ToneEngine()) as server:
        events, words, metrics, transcript = await run_stream(server, wav(audio), policy, pace=20.0)
    assert_same_words(words, expected)
    rollovers = [e for e in events if isinstance(e, SessionRollover)]
    assert rollovers
    assert all(r.reason == "budget" and r.at_pause for r in rollovers)
    assert metrics.rollovers == len(rollovers)
    assert len(transcript.session_ids) == metrics.sessions == len(rollovers) + 1
    spoken = [w.content.lower() for w in transcript.words if not w.is_punctuation]
    assert spoken == [w[0] for w in expected]


class RecordingTone(ToneStream):
    """A tone stream that keeps the finals it sends."""

    def __init__(self, heard: list[EngineWord]) -> None:
        super().__init__(overhang=0.0)
        self._heard = heard

    async def feed(self, pcm: bytes) -> StreamUpdate:
        return self._record(await super().feed(pcm))

    async def flush(self) -> StreamUpdate:
        return self._record(await super().flush())

    def _record(self, update: StreamUpdate) -> StreamUpdate:
        self._heard.extend(update.finals)
        return update


class RecordingTones(ToneEngine):
    """Tones, with the finals each session sent (in its own times)."""

    def __init__(self) -> None:
        super().__init__()
        self.heard: list[list[EngineWord]] = []

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> ToneStream:
        self.heard.append([])
        return RecordingTone(self.heard[-1])


@pytest.mark.parametrize("lead_in", [1.0, 0.0])
async def test_a_handover_sends_the_audio_before_the_switch_again_as_a_lead_in(
    lead_in: float,
) -> None:
    """Each new session hears what came before its first words (the words there again), and the
    stream drops what it hears there: every word once, at its place."""
    audio, expected = tone_audio(40)
    engine = RecordingTones()
    policy = fast(max_session=0.3, lead_in=lead_in)
    async with LocalServer(engine=engine) as server:
        events, words, metrics, _ = await run_stream(server, wav(audio), policy, pace=20.0)
    assert_same_words(words, expected)
    assert [e for e in events if isinstance(e, SessionRollover)]
    heard_again = sum(map(len, engine.heard)) - len(expected)
    assert metrics.deduplicated_words == heard_again
    if lead_in:
        assert heard_again >= metrics.rollovers, "a word before each switch"
    else:
        assert heard_again == 0


async def test_one_session_keeps_words_that_overlap_the_previous_one() -> None:
    audio, _ = tone_audio(20)
    async with LocalServer(engine=ToneEngine(overhang=GAP_SECONDS + 0.1)) as server:
        plain = await transcribe(wav(audio), "realtime", settings=server.settings())
        _, words, metrics, _ = await run_stream(server, wav(audio), FAST)
    assert metrics.sessions == 1
    assert metrics.deduplicated_words == 0
    spoken = [w.content.lower() for w in plain.words if not w.is_punctuation]
    assert [w[0] for w in words] == spoken


async def test_service_warning_starts_a_handover_before_the_session_limit() -> None:
    audio, expected = tone_audio(30)
    policy = FAST  # a 47-hour budget: only the warning can trigger it
    async with LocalServer(engine=ToneEngine(), max_session_seconds=1.0) as server:
        events, words, metrics, _ = await run_stream(server, wav(audio), policy, pace=12.0)
    assert_same_words(words, expected)
    reasons = {e.reason for e in events if isinstance(e, SessionRollover)}
    assert reasons == {"warning"}
    assert metrics.reconnects == 0  # no session reached its limit


@pytest.mark.parametrize("close_code", [1011, 4013, None], ids=["1011", "4013", "abrupt"])
async def test_dropped_sessions_are_replayed_from_the_last_final(close_code: int | None) -> None:
    audio, expected = tone_audio(30)
    policy = fast(healthy_after=0.0)
    fault = SocketFault(after_messages=25, close_code=close_code)
    async with LocalServer(engine=ToneEngine(), faults=Faults(socket=fault)) as server:
        events, words, metrics, _ = await run_stream(server, wav(audio), policy)
    assert_same_words(words, expected)
    reconnects = [e for e in events if isinstance(e, Reconnected)]
    assert len(reconnects) == metrics.reconnects >= 2
    assert all(r.replayed_seconds >= 0 and r.attempts == 1 for r in reconnects)
    offsets = [r.offset for r in reconnects]
    assert offsets == sorted(offsets)
    assert not [e for e in events if isinstance(e, AudioGap)]


async def test_a_session_ended_while_the_window_is_full_raises_instead_of_hanging() -> None:
    """The service's limit arrives while audio waits for acknowledgements that never come."""
    audio, _ = tone_audio(60)
    slow_acks = Faults(message_latency=0.02)  # the client fills its in-flight window
    async with LocalServer(engine=ToneEngine(), max_session_seconds=1.0, faults=slow_acks) as s:
        with anyio.fail_after(20), pytest.raises(SessionLimitError, match="session_timeout"):
            await transcribe(wav(audio), "realtime", settings=s.settings(), audio_format=FORMAT)


async def test_a_refused_key_surfaces_at_once() -> None:
    audio, _ = tone_audio(3)
    async with LocalServer(engine=ToneEngine(), api_key="right") as server:
        settings = Settings(api_key=SecretStr("wrong"), rt_url=server.rt_url, backend="cloud")
        with pytest.raises(AuthenticationError):
            await transcribe(wav(audio), "realtime", settings=settings, rollover=RolloverPolicy())
        assert server.stats.sessions_opened == 0  # refused at the handshake, never retried


async def test_reconnection_gives_up_after_max_attempts_with_the_words_so_far() -> None:
    audio, _ = tone_audio(20)
    policy = fast(max_attempts=3, healthy_after=60.0)
    fault = SocketFault(after_messages=12, close_code=1011)
    async with LocalServer(engine=ToneEngine(), faults=Faults(socket=fault)) as server:
        with pytest.raises(TransportError) as caught:
            await run_stream(server, wav(audio), policy)
        assert server.stats.sessions_opened == 4  # the first, then three attempts
    partial = caught.value.partial_transcript
    assert partial is not None
    assert partial.words


async def test_sessions_that_drop_before_their_first_final_use_up_the_attempts() -> None:
    """Each session is dropped before its first final, so each replays the same audio and
    fails at the same point: none counts as healthy, however long it ran, and the stream
    raises instead of looping forever."""
    engine = ScriptedEngine.from_text("too late", start=4.0)  # no word ends in the first 1 s
    policy = fast(max_attempts=3, healthy_after=0.0)
    fault = SocketFault(after_audio_seconds=1.0, close_code=1011)
    async with LocalServer(engine=engine, faults=Faults(socket=fault)) as server:
        with anyio.fail_after(30), pytest.raises(TransportError) as caught:
            await run_stream(server, wav(bytes(6 * RATE * 2)), policy)
        assert server.stats.sessions_opened == 4  # the first, then three attempts
    partial = caught.value.partial_transcript
    assert partial is not None
    assert not partial.words


@pytest.mark.parametrize("clock", ["audio", "wall"])
async def test_words_pending_at_the_server_session_limit_are_replayed(
    clock: Literal["audio", "wall"],
) -> None:
    """The server's limit cuts sessions mid-utterance. The engine keeps an utterance's words
    partial until the pause after it, as Whisper does, so at each cut some words were heard but
    not finalised: the next session must hear them again. The client never hands over (the
    warnings are ignored), so every session ends at the limit."""
    audio, expected = tone_audio(24, silence_every=4, silence_seconds=0.6)
    policy = fast(roll_on_warning=False, healthy_after=0.0)
    engine = ToneEngine(utterance_pause=0.6)  # longer than the gap between words
    limit, pace = (5.0, None) if clock == "audio" else (2.0, 4.0)  # 8 s of audio at 4x
    async with LocalServer(engine=engine, max_session_seconds=limit, session_clock=clock) as server:
        events, words, metrics, _ = await run_stream(server, wav(audio), policy, pace=pace)
    assert_same_words(words, expected)
    reconnects = [e for e in events if isinstance(e, Reconnected)]
    assert reconnects
    assert all("session_timeout" in r.cause for r in reconnects)
    assert sum(r.replayed_seconds for r in reconnects) > 0
    assert metrics.gaps == 0


async def test_a_session_cut_while_it_drains_is_transcribed_again_without_a_gap() -> None:
    """The first session is handed over mid-utterance and then cut (1011) as its EndOfStream
    arrives, before its last words (a server limit does that to a session whose engine lags).
    Its unfinished audio is transcribed again in a session of its own: no word lost or
    doubled, and no AudioGap for the quiet audio after its last word."""
    audio, expected = tone_audio(20, silence_every=4, silence_seconds=0.6)
    policy = fast(max_session=0.01)  # hand over at every pause
    fault = SocketFault(at_end_of_stream=True, close_code=1011, sessions=1)
    engine = ToneEngine(utterance_pause=0.6)
    async with LocalServer(engine=engine, faults=Faults(socket=fault)) as server:
        events, words, metrics, _ = await run_stream(server, wav(audio), policy, pace=4.0)
        assert server.stats.sessions_faulted == 1
    assert_same_words(words, expected)
    assert [e for e in events if isinstance(e, SessionRollover)]
    assert metrics.replayed_seconds > 0  # the cut session's tail, heard again
    assert not [e for e in events if isinstance(e, AudioGap)]
    assert metrics.gaps == 0


async def test_a_session_that_proved_healthy_before_an_idle_close_resets_the_attempts() -> None:
    """Attempts count consecutive failures: the first session drops at once (one attempt
    used of one), the second transcribes speech for longer than healthy_after and is closed
    for idleness, and the session opened when speech returns drops at once too. That drop
    follows a healthy session, so it is a first failure again, not a second."""
    audio, expected = tone_audio(8, silence_every=4, silence_seconds=3.0)
    policy = fast(max_attempts=1, healthy_after=1.0, idle_after=1.0)
    drop_at_start = Faults(socket=SocketFault(after_messages=1, close_code=1011, sessions=1))
    events: list[StreamEvent] = []
    async with LocalServer(engine=ToneEngine(), faults=drop_at_start) as server:
        async with stream(
            wav(audio), settings=server.settings(), rollover=policy, audio_format=FORMAT, pace=2.0
        ) as feed:  # the first utterance alone lasts 1.6 s
            async for event in feed:
                events.append(event)
                if isinstance(event, Final) and len(final_words(events)) == 1:
                    server.faults = drop_at_start  # for the session after the idle close
        assert server.stats.sessions_faulted == 2
    assert [w[0] for w in final_words(events)] == [w[0] for w in expected]
    assert [e.reason for e in events if isinstance(e, SessionRollover)] == ["idle"]


async def test_quiet_audio_closes_the_session_and_speech_reopens_it_on_the_same_clock() -> None:
    audio, expected = tone_audio(12, silence_every=4, silence_seconds=3.0)
    policy = fast(idle_after=1.0)
    async with LocalServer(engine=ToneEngine()) as server:
        events, words, metrics, _ = await run_stream(server, wav(audio), policy)
    assert_same_words(words, expected)
    assert metrics.idle_closes == 3  # the trailing silence closes the last one
    assert [e.reason for e in events if isinstance(e, SessionRollover)] == ["idle", "idle"]
    assert metrics.skipped_seconds > 3.0


async def test_a_live_source_that_overflows_the_buffer_reports_every_lost_second() -> None:
    audio, expected = tone_audio(40)
    policy = RolloverPolicy(
        buffer_seconds=2.0,
        healthy_after=0.0,
        backoff_initial=0.3,
        backoff_max=0.3,
        backoff_jitter=0.0,
    )

    async def live() -> AsyncIterator[bytes]:  # never waits: a feed that cannot be paused
        for offset in range(0, len(audio), 3200):
            yield audio[offset : offset + 3200]

    fault = SocketFault(after_messages=20, close_code=1011, sessions=1)
    async with LocalServer(engine=ToneEngine(), faults=Faults(socket=fault)) as server:
        events, words, metrics, _ = await run_stream(server, live(), policy)
    gaps = [e for e in events if isinstance(e, AudioGap)]
    assert gaps
    assert metrics.gaps == len(gaps)
    heard = {w[0] for w in words}
    assert len(heard) == len(words)  # nothing duplicated
    for name, start, end in expected:
        lost = any(g.start - 1e-3 <= start and end <= g.end + WORD_SECONDS for g in gaps)
        assert name in heard or lost, f"{name} at {start:.1f} s vanished without a gap"


async def test_a_handover_refused_for_capacity_waits_and_loses_nothing() -> None:
    """One session at a time: every planned handover is refused (quota_exceeded), so the
    stream keeps its session until the server ends it, then reconnects; no audio is lost."""
    audio, expected = tone_audio(16)
    policy = fast(max_session=1.0, max_attempts=30)  # the server frees a slot a moment late
    async with LocalServer(engine=ToneEngine(max_streams=1), max_session_seconds=3.0) as server:
        events, words, metrics, _ = await run_stream(server, wav(audio), policy, pace=2.0)
        refused = server.stats.sessions_refused
    assert_same_words(words, expected)
    assert refused > 0
    assert not [e for e in events if isinstance(e, AudioGap)]
    assert metrics.gaps == 0
