"""Steering a live stream: force_end_of_utterance(), update() and get_speakers().

The source sends some audio, then waits on a gate the test opens once it has seen what it
needed: the audio cannot run ahead of the control being tested, so nothing depends on timing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from speechmatics_modes import (
    ConfigurationError,
    Final,
    Partial,
    Reconnected,
    RolloverPolicy,
    SpeakersResult,
    TransportError,
    stream,
)
from speechmatics_modes.local import EngineWord, Faults, LocalServer, ScriptedEngine, SocketFault
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
