"""Steering a live stream: force_end_of_utterance(), update() and get_speakers().

The source sends some audio, then waits on a gate the test opens once it has seen what it
needed: the audio cannot run ahead of the control being tested, so nothing depends on timing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import pytest

from speechmatics_modes import (
    ConfigurationError,
    Final,
    Partial,
    Reconnected,
    RolloverPolicy,
    SessionRollover,
    SpeakersResult,
    StreamEvent,
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
from speechmatics_modes.local._scripted import ScriptedStream
from tests.conftest import eventually
from tests.local.conftest import pcm_bytes

pytestmark = pytest.mark.anyio

_GATE_SECONDS = 30.0


async def gated(gate: anyio.Event, before: float, after: float) -> AsyncIterator[bytes]:
    """``before`` seconds of audio, a wait for ``gate``, then ``after`` seconds more."""
    for _ in range(round(before * 10)):
        yield pcm_bytes(0.1)
    with anyio.fail_after(_GATE_SECONDS):
        await gate.wait()
    for _ in range(round(after * 10)):
        yield pcm_bytes(0.1)


def engine(second_word_at: float, final_lag: float) -> ScriptedEngine:
    words = [
        EngineWord("hello", 0.5, 0.9, 0.9),
        EngineWord("there", second_word_at, second_word_at + 0.4, 0.9),
    ]
    return ScriptedEngine(words, final_lag=final_lag)


def spoken(words: tuple[object, ...]) -> list[str]:
    return [w.content.lower() for w in words if not w.is_punctuation]  # type: ignore[attr-defined]


async def test_force_end_of_utterance_yields_a_forced_final() -> None:
    """Words final only 3 s after they end come at once when forced (latency printed)."""
    gate = anyio.Event()
    options = {"enable_partials": True, "max_delay": 4.0}
    async with (
        LocalServer(engine=engine(1.0, final_lag=3.0)) as server,
        stream(gated(gate, 1.5, 0.5), options=options, settings=server.settings()) as events,
    ):
        forced_at: float | None = None
        finals: list[Final] = []
        async for event in events:
            if isinstance(event, Partial) and event.words and forced_at is None:
                forced_at = anyio.current_time()
                await events.force_end_of_utterance()
            elif isinstance(event, Final):
                if not finals:
                    assert forced_at is not None
                    print(f"forced final after {anyio.current_time() - forced_at:.3f} s")
                finals.append(event)
                gate.set()
    assert finals[0].forced
    assert spoken(finals[0].words)[0] == "hello"
    assert spoken(events.transcript.words) == ["hello", "there"]


class ForcibleStream(ScriptedStream):
    """A scripted stream with the optional quick end; it records how each end was asked."""

    ends: list[str]

    async def force_end_of_utterance(self) -> StreamUpdate:
        self.ends.append("forced")
        return await super().flush()

    async def flush(self) -> StreamUpdate:
        self.ends.append("flushed")
        return await super().flush()


class ForcibleEngine(ScriptedEngine):
    ends: list[str]

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> ScriptedStream:
        stream = ForcibleStream(self, min(self.final_lag, max_delay))
        stream.ends = self.ends
        return stream


async def test_an_engine_s_quick_end_answers_force_end_of_utterance_only() -> None:
    """ForceEndOfUtterance goes to force_end_of_utterance() where a stream has it; the end of
    the stream still goes to flush()."""
    gate = anyio.Event()
    script = ForcibleEngine([EngineWord("hello", 0.5, 0.9, 0.9)], final_lag=3.0)
    script.ends = []
    options = {"enable_partials": True, "max_delay": 4.0}
    async with (
        LocalServer(engine=script) as server,
        stream(gated(gate, 1.5, 0.5), options=options, settings=server.settings()) as events,
    ):
        async for event in events:
            if isinstance(event, Partial) and event.words and not gate.is_set():
                await events.force_end_of_utterance()
            elif isinstance(event, Final) and event.forced:
                gate.set()
    assert script.ends == ["forced", "flushed"]


class StallingStream(ForcibleStream):
    """A forcible stream whose interim work on its second second of audio lasts until it is
    told to hurry (as a real engine's partial decode would last a while)."""

    engine: StallingEngine
    fed_seconds = 0.0

    async def feed(self, pcm: bytes) -> StreamUpdate:
        self.fed_seconds += len(pcm) / 32_000
        if self.fed_seconds >= 1.0 and not self.engine.hurried.is_set():
            self.engine.stalled.set()
            await self.engine.hurried.wait()
        return await super().feed(pcm)

    def hurry(self) -> None:
        self.ends.append("hurried")
        self.engine.hurried.set()


class StallingEngine(ScriptedEngine):
    ends: list[str]
    stalled: anyio.Event
    hurried: anyio.Event

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> ScriptedStream:
        stream = StallingStream(self, min(self.final_lag, max_delay))
        stream.ends, stream.engine = self.ends, self
        return stream


async def test_a_forced_end_is_seen_while_the_engine_is_busy_with_the_audio_before_it() -> None:
    """The server reads on while the engine works: ForceEndOfUtterance behind audio still being
    fed tells the stream to hurry (drop its interim work) before that audio is done, so the
    answer need not wait for a partial nobody will see. On a server that read one message at a
    time, the stalled feed would never end."""
    gate = anyio.Event()
    script = StallingEngine([EngineWord("hello", 0.5, 0.9, 0.9)], final_lag=3.0)
    script.ends, script.stalled, script.hurried = [], anyio.Event(), anyio.Event()
    options = {"enable_partials": True, "max_delay": 4.0}
    async with (
        LocalServer(engine=script) as server,
        stream(gated(gate, 1.5, 0.5), options=options, settings=server.settings()) as events,
    ):
        with anyio.fail_after(_GATE_SECONDS):
            await script.stalled.wait()
            await events.force_end_of_utterance()
            async for event in events:
                if isinstance(event, Final) and event.forced:
                    gate.set()
    assert script.ends == ["hurried", "forced", "hurried", "flushed"]
    assert spoken(events.transcript.words) == ["hello"]


async def test_force_end_of_utterance_reaches_a_multichannel_session() -> None:
    """With several channels (AddChannelAudio, no binary frames) the forced final comes too."""
    gate = anyio.Event()
    options = {"enable_partials": True, "max_delay": 4.0}
    sources = {"agent": gated(gate, 1.5, 0.5), "caller": gated(gate, 1.5, 0.5)}
    async with (
        LocalServer(engine=engine(1.0, final_lag=3.0)) as server,
        stream(sources, options=options, settings=server.settings()) as events,
    ):
        forced = False
        finals: list[Final] = []
        async for event in events:
            if isinstance(event, Partial) and event.words and not forced:
                forced = True
                await events.force_end_of_utterance()
            elif isinstance(event, Final):
                finals.append(event)
                gate.set()
    assert finals[0].forced
    assert spoken(finals[0].words)[0] == "hello"
    by_channel = {
        channel: spoken(tuple(w for w in events.transcript.words if w.channel == channel))
        for channel in ("agent", "caller")
    }
    assert by_channel == {"agent": ["hello", "there"], "caller": ["hello", "there"]}


async def test_update_changes_the_running_session() -> None:
    """Partials switched on mid-stream start arriving; nothing before."""
    gate = anyio.Event()
    seen: list[str] = []
    async with (
        LocalServer(engine=engine(2.0, final_lag=0.3)) as server,
        stream(gated(gate, 1.5, 1.5), settings=server.settings()) as events,
    ):
        async for event in events:
            seen.append(event.kind)
            if isinstance(event, Final) and not gate.is_set():
                await events.update({"enable_partials": True, "max_delay": 2.0})
                seen.append("updated")
                gate.set()
    assert "partial" not in seen[: seen.index("updated")]
    assert "partial" in seen[seen.index("updated") :]


async def test_a_max_delay_lowered_mid_stream_reaches_the_engine() -> None:
    """With ``max_delay`` 4 "hello" (0.5-0.9 s) would be final 3 s after it ended; lowered to
    1 s it is final once 2 s of audio were sent, and the source waits for it there."""
    updated, final = anyio.Event(), anyio.Event()

    async def source() -> AsyncIterator[bytes]:
        async for chunk in gated(updated, 1.5, 0.5):
            yield chunk
        with anyio.fail_after(_GATE_SECONDS):
            await final.wait()

    options = {"enable_partials": True, "max_delay": 4.0}
    async with (
        LocalServer(engine=engine(3.0, final_lag=3.0)) as server,
        stream(source(), options=options, settings=server.settings()) as events,
    ):
        async for event in events:
            if isinstance(event, Partial) and event.words and not updated.is_set():
                await events.update({"max_delay": 1.0})
                updated.set()
            elif isinstance(event, Final) and event.words:
                assert not event.forced
                assert spoken(event.words) == ["hello"]
                final.set()
    assert final.is_set()


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"diarization": "speaker"}, "diarization cannot change"),
        ({"language": "de"}, "language cannot change"),
        ({"max_delay": 9.0}, "invalid update"),
    ],
)
async def test_update_refuses_what_a_session_cannot_change(
    changes: dict[str, object], problem: str
) -> None:
    gate = anyio.Event()
    async with (
        LocalServer(engine=engine(2.0, final_lag=0.3)) as server,
        stream(gated(gate, 0.5, 0.0), settings=server.settings()) as events,
    ):
        with pytest.raises(ConfigurationError, match=problem):
            await events.update(changes)
        gate.set()
        async for _ in events:
            pass


async def test_get_speakers_answers_with_the_speakers_so_far() -> None:
    gate = anyio.Event()
    options = {"diarization": "speaker"}
    async with (
        LocalServer(engine=engine(2.0, final_lag=0.3)) as server,
        stream(gated(gate, 1.5, 0.5), options=options, settings=server.settings()) as events,
    ):
        result: SpeakersResult | None = None
        async for event in events:
            if isinstance(event, Final) and result is None:
                result = await events.get_speakers()
                gate.set()
    assert result is not None
    assert [speaker.label for speaker in result.speakers] == ["S1"]
    assert result.speakers[0].speaker_identifiers


async def test_controls_reach_the_session_after_a_reconnection() -> None:
    gate = anyio.Event()
    options = {"enable_partials": True, "max_delay": 4.0, "diarization": "speaker"}
    policy = RolloverPolicy(backoff_initial=0.01, backoff_max=0.05, backoff_jitter=0.0)
    drop_first = SocketFault(after_messages=4, close_code=1011, sessions=1)
    faults = Faults(socket=drop_first)
    async with (
        LocalServer(engine=engine(1.0, final_lag=3.0), faults=faults) as server,
        stream(
            gated(gate, 1.5, 0.5), options=options, settings=server.settings(), rollover=policy
        ) as events,
    ):
        reconnected = False
        forced: list[Final] = []
        speakers: SpeakersResult | None = None
        async for event in events:
            reconnected = reconnected or isinstance(event, Reconnected)
            if isinstance(event, Partial) and event.words and reconnected and not forced:
                await events.force_end_of_utterance()
            elif isinstance(event, Final) and event.forced and not forced:
                forced.append(event)
                speakers = await events.get_speakers()
                gate.set()
    assert reconnected
    assert spoken(forced[0].words)[0] == "hello"
    assert speakers is not None
    assert [speaker.label for speaker in speakers.speakers] == ["S1"]


async def test_controls_need_a_running_session() -> None:
    async with (
        LocalServer(engine=engine(1.0, final_lag=0.3)) as server,
        stream([pcm_bytes(0.5)], settings=server.settings()) as events,
    ):
        async for _ in events:
            pass
        with pytest.raises(TransportError):
            await events.force_end_of_utterance()


async def test_forcing_with_nothing_pending_still_answers_with_a_forced_final() -> None:
    gate = anyio.Event()
    async with (
        LocalServer(engine=engine(2.0, final_lag=0.3)) as server,
        stream(gated(gate, 1.5, 1.0), settings=server.settings()) as events,
    ):
        finals: list[Final] = []
        async for event in events:
            if isinstance(event, Final):
                finals.append(event)
                if len(finals) == 1:
                    await events.force_end_of_utterance()
                elif event.forced:
                    gate.set()
    forced = [final for final in finals if final.forced]
    assert len(forced) == 1
    assert spoken(forced[0].words) == []
    assert spoken(events.transcript.words) == ["hello", "there"]


# --- across rollovers ------------------------------------------------------------------------
#
# A session is warned 5 s of audio into a 20 s limit (the limit counts audio), so the stream
# hands over after the first 6 s, once; the next session hears the script afresh from its own
# first byte and ends long before its own warning.

FAST = RolloverPolicy(backoff_initial=0.01, backoff_max=0.05, backoff_jitter=0.0, lead_in=0.0)
"""No context for handovers: the scripted engine says its words at the same session times in
every session, and with context the next session's would lie before the switch."""
LATE_WORD = [EngineWord("hello", 0.5, 0.9, 0.9), EngineWord("there", 4.5, 4.9, 0.9)]


def handover_server(engine: ScriptedEngine, faults: Faults | None = None) -> LocalServer:
    return LocalServer(
        engine=engine, max_session_seconds=20.0, session_clock="audio", faults=faults
    )


class HeldStarts(ScriptedEngine):
    """A scripted engine whose second stream opens only once the test releases it.

    The stream's next session is then known to be opening (asked for the settings in force
    when it was opened) and not started, for as long as the test needs.
    """

    def __init__(self, words: list[EngineWord], *, final_lag: float) -> None:
        super().__init__(words, final_lag=final_lag)
        self.opened = 0
        self.holding = anyio.Event()
        self.release = anyio.Event()

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> ScriptedStream:
        self.opened += 1
        if self.opened == 2:
            self.holding.set()
            with anyio.fail_after(_GATE_SECONDS):
                await self.release.wait()
        return await super().open_stream(max_delay=max_delay, partials=partials)


async def audio(*parts: float | anyio.Event | Callable[[], bool]) -> AsyncIterator[bytes]:
    """Seconds of audio, and gates (or conditions) to wait for, in order."""
    for part in parts:
        if isinstance(part, anyio.Event):
            with anyio.fail_after(_GATE_SECONDS):
                await part.wait()
            continue
        if callable(part):  # a server counter, which no event announces
            assert await eventually(part, _GATE_SECONDS), "the condition never held"
            continue
        for _ in range(round(part * 10)):
            yield pcm_bytes(0.1)


async def test_an_update_during_a_handover_reaches_the_next_session_too() -> None:
    """The next session was asked for the old settings; the update still reaches it."""
    engine = HeldStarts(LATE_WORD, final_lag=3.0)
    rolled = anyio.Event()
    after: list[StreamEvent] = []
    async with (
        handover_server(engine) as server,
        stream(audio(6.0, rolled, 2.0), settings=server.settings(), rollover=FAST) as events,
    ):
        with anyio.fail_after(_GATE_SECONDS):
            await engine.holding.wait()
            await events.update({"enable_partials": True})
        engine.release.set()
        async for event in events:
            if isinstance(event, SessionRollover):
                rolled.set()
            elif rolled.is_set():
                after.append(event)
    assert events.metrics is not None
    assert events.metrics.rollovers == 1
    partials = [event for event in after if isinstance(event, Partial) and event.words]
    assert partials, "the next session sent no partials: it kept the settings it opened with"
    assert spoken(partials[0].words) == ["hello"]


async def test_forcing_during_a_handover_finalises_on_the_session_holding_the_audio() -> None:
    engine = HeldStarts(LATE_WORD, final_lag=3.0)  # "there" (4.5 s) is pending at 6 s
    rolled = anyio.Event()
    finals: list[tuple[bool, Final]] = []
    async with (
        handover_server(engine) as server,
        stream(audio(6.0, rolled, 1.0), settings=server.settings(), rollover=FAST) as events,
    ):
        with anyio.fail_after(_GATE_SECONDS):
            await engine.holding.wait()
            await events.force_end_of_utterance()
        engine.release.set()
        async for event in events:
            if isinstance(event, SessionRollover):
                rolled.set()
            elif isinstance(event, Final):
                finals.append((rolled.is_set(), event))
    forced = [(later, final) for later, final in finals if final.forced]
    assert len(forced) == 1
    later, final = forced[0]
    assert not later  # the first session's, before the handover
    assert spoken(final.words) == ["there"]
    assert final.start == pytest.approx(4.5, abs=0.01)


async def test_forcing_after_a_drop_waits_for_the_audio_replayed_to_the_new_session() -> None:
    """Forced right after a reconnection, the final holds the words pending before the drop.

    The first session hears "hello" (3.0 s) and drops at 3.6 s of audio; once it has, more
    audio fills the client's window, which finds the connection gone. The new session is sent
    the audio again from 0, slowly (acknowledgements lag): sent at once, the request would
    reach a session that has not heard the word yet.
    """
    words = [EngineWord("hello", 3.0, 3.4, 0.9)]
    gate = anyio.Event()
    drop = SocketFault(after_audio_seconds=3.6, close_code=1011, sessions=1)
    faults = Faults(socket=drop, message_latency=0.02)
    forced: list[Final] = []
    options = {"max_delay": 4.0}  # the word is not final on its own before the end
    async with LocalServer(engine=ScriptedEngine(words, final_lag=4.0), faults=faults) as server:
        source = audio(4.0, lambda: server.stats.sessions_faulted > 0, 2.5, gate, 0.5)
        async with stream(
            source, options=options, settings=server.settings(), rollover=FAST
        ) as events:
            async for event in events:
                if isinstance(event, Reconnected):
                    await events.force_end_of_utterance()
                elif isinstance(event, Final) and event.forced:
                    forced.append(event)
                    gate.set()
    assert len(forced) == 1
    assert spoken(forced[0].words) == ["hello"]
    assert spoken(events.transcript.words) == ["hello"]


async def test_get_speakers_after_a_handover_names_every_sessions_speakers() -> None:
    """Each session labels its speakers afresh: both S1s come back, each with its session."""
    engine = ScriptedEngine(LATE_WORD, final_lag=0.3)
    rolled, asked = anyio.Event(), anyio.Event()
    result: SpeakersResult | None = None
    async with (
        handover_server(engine) as server,
        stream(
            audio(6.0, rolled, 2.0, asked),
            options={"diarization": "speaker"},
            settings=server.settings(),
            rollover=FAST,
        ) as events,
    ):
        async for event in events:
            if isinstance(event, SessionRollover):
                rolled.set()
            elif rolled.is_set() and isinstance(event, Final) and event.words and not result:
                result = await events.get_speakers()
                asked.set()
    sessions = events.transcript.session_ids
    assert len(sessions) == 2
    assert result is not None
    assert [(s.label, s.session_id) for s in result.speakers] == [
        ("S1", sessions[0]),
        ("S1", sessions[1]),
    ]
    first, second = result.speakers
    assert first.speaker_identifiers != second.speaker_identifiers
    assert events.transcript.speakers == result.speakers  # each session's answer at its end


async def test_a_session_dropped_while_the_source_is_paused_is_replaced_at_once() -> None:
    """No audio comes after the drop, so only the closed connection can tell: the words
    pending in the dropped session are heard again by its replacement before the source
    gives anything more."""
    words = [EngineWord("hello", 0.5, 0.9, 0.9)]
    gate = anyio.Event()
    drop = SocketFault(after_audio_seconds=2.0, close_code=1011, sessions=1)  # all it was sent
    async with (
        LocalServer(engine=ScriptedEngine(words, final_lag=4.0), faults=Faults(socket=drop)) as s,
        stream(audio(2.0, gate, 0.5), settings=s.settings(), rollover=FAST) as events,
    ):
        reconnected = False
        async for event in events:
            reconnected = reconnected or isinstance(event, Reconnected)
            if reconnected and not gate.is_set():
                gate.set()
    assert reconnected
    assert spoken(events.transcript.words) == ["hello"]


async def test_a_dropped_session_ends_at_once_even_with_nothing_to_send() -> None:
    gate = anyio.Event()
    drop = SocketFault(after_audio_seconds=1.5, close_code=1011)  # all it was sent
    async with LocalServer(engine=engine(2.0, final_lag=0.3), faults=Faults(socket=drop)) as s:
        with pytest.raises(TransportError, match="before EndOfTranscript"):
            await transcribe(audio(1.5, gate, 0.5), settings=s.settings())
    assert not gate.is_set()  # the source was still waiting
