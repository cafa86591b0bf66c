"""One real-time session against the local server: the caller sets the pace, memory is freed.

Events go straight from the SDK's receive loop into the caller's stream; when it is full they
wait in order, and no more audio is sent until the caller has taken them. A finished session
(and the SDK client it used) is freed by reference counting alone, one that failed as well as
one that completed, so a stream of sessions does not wait for the garbage collector's rare
full collections to give memory back.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
import speechmatics.rt as sm_rt
from anyio.streams.memory import MemoryObjectSendStream

from speechmatics_modes import (
    AudioFormat,
    AudioSourceError,
    Final,
    RolloverPolicy,
    StreamEvent,
    TranscriptionOptions,
    stream,
)
from speechmatics_modes._realtime import RealtimeSession
from speechmatics_modes.local import Faults, LocalServer, ScriptedEngine, SocketFault

pytestmark = pytest.mark.anyio

CHUNK = 3200
"""100 ms of 16 kHz 16-bit mono."""
WORDY = ScriptedEngine.from_text(" ".join(["hello world."] * 400))
"""Two words and a final about every 1.9 s of audio, for 12 minutes."""


def _session(
    server: LocalServer, events: MemoryObjectSendStream[StreamEvent] | None
) -> RealtimeSession:
    return RealtimeSession(
        settings=server.settings(),
        options=TranscriptionOptions(),
        audio_format=AudioFormat(chunk_size=CHUNK),
        events=events,
        max_in_flight_seconds=1.0,
    )


async def test_a_caller_who_stops_reading_stops_the_audio() -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"\x01\x00" * (CHUNK // 2)

    send, receive = anyio.create_memory_object_stream[StreamEvent](0)
    with send, receive:
        async with LocalServer(engine=WORDY) as server, anyio.create_task_group() as group:
            group.start_soon(_session(server, send).run, endless())
            with anyio.fail_after(30):
                for _ in range(3):
                    await receive.receive()
            with anyio.move_on_after(2):  # unpaced, an unchecked sender would pull minutes by now
                await anyio.sleep_forever()
            audio_seconds = pulled * 0.1
            group.cancel_scope.cancel()
    # 3 events read, a 4th waiting, the 1 s window in flight and one chunk in hand
    assert audio_seconds < 4 * 1.9 + 1.0 + 1.0


async def test_a_reader_slower_than_the_audio_loses_nothing_and_keeps_the_order() -> None:
    audio = b"\x01\x00" * (CHUNK // 2) * 300  # 30 s

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(audio), CHUNK):
            yield audio[start : start + CHUNK]

    send, receive = anyio.create_memory_object_stream[StreamEvent](0)  # every event waits
    async with LocalServer(engine=WORDY) as server:
        session = _session(server, send)
        finals: list[Final] = []

        async def read() -> None:
            async with receive:
                async for event in receive:
                    if isinstance(event, Final):
                        finals.append(event)
                    await anyio.sleep(0.01)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group, send:
                group.start_soon(read)
                await session.run(chunks())
    words = [word for final in finals for word in final.words]
    assert words == list(session.transcript().words)
    assert len(words) >= 2 * 15
    starts = [word.start for word in words]
    assert starts == sorted(starts)


@pytest.fixture
def no_full_collections() -> Iterator[None]:
    """Garbage collection off: what is not freed by reference counting stays, and shows."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _alive(kind: type) -> int:
    return sum(issubclass(type(thing), kind) for thing in gc.get_objects())


async def _seconds_of_audio(seconds: int, pace: float | None = None) -> AsyncIterator[bytes]:
    for index in range(seconds * 10):
        if pace is not None and index % 10 == 0:
            await anyio.sleep(1 / pace)
        yield b"\x01\x00" * (CHUNK // 2)


async def _enumerate(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    index = 0
    async for chunk in chunks:
        yield index, chunk
        index += 1


@pytest.mark.usefixtures("no_full_collections")
async def test_a_finished_session_is_freed_by_reference_counting_alone() -> None:
    clients, finals = _alive(sm_rt.AsyncClient), _alive(Final)  # other tests' leftovers
    async with LocalServer(engine=WORDY) as server:
        for _ in range(3):
            session = _session(server, None)
            await session.run(_seconds_of_audio(5))
            assert session.transcript().words
            freed = weakref.ref(session)
            del session
            assert freed() is None, "a reference cycle holds the finished session"
            assert _alive(sm_rt.AsyncClient) == clients, "a reference cycle holds the SDK client"
            assert _alive(Final) == finals


@pytest.mark.usefixtures("no_full_collections")
async def test_a_failed_session_is_freed_by_reference_counting_alone() -> None:
    """The error it raised holds its frames, and so the session: not the other way round."""
    clients = _alive(sm_rt.AsyncClient)
    async with LocalServer(engine=WORDY) as server:
        session = _session(server, None)
        with pytest.raises(AudioSourceError):
            await session.run(_seconds_of_audio(0))
        freed = weakref.ref(session)
        del session
        assert freed() is None, "a reference cycle through its error holds the failed session"
        assert _alive(sm_rt.AsyncClient) == clients


@pytest.mark.usefixtures("no_full_collections")
async def test_a_stream_frees_the_sessions_that_dropped() -> None:
    """The stream keeps a dropped session's error until it has reconnected, then lets go."""
    sessions = _alive(RealtimeSession)
    drops = Faults(socket=SocketFault(after_messages=15, close_code=1011, sessions=2))
    policy = RolloverPolicy(keep_transcript=False, backoff_initial=0.01)
    async with LocalServer(engine=WORDY, faults=drops) as server:
        with anyio.fail_after(60):
            async with stream(
                _seconds_of_audio(10), settings=server.settings(), rollover=policy
            ) as events:
                async for _ in events:
                    pass
    metrics = events.metrics
    del events  # it holds the last session, for its controls
    assert metrics is not None
    assert metrics.reconnects == 2
    assert _alive(RealtimeSession) == sessions


@pytest.mark.usefixtures("no_full_collections")
async def test_a_long_stream_frees_each_session_it_hands_over() -> None:
    """Two hours of rollovers in miniature: sessions alive stay few, however many have run."""
    sessions, clients = _alive(RealtimeSession), _alive(sm_rt.AsyncClient)  # leftovers
    most_alive = 0

    async def audio() -> AsyncIterator[bytes]:
        nonlocal most_alive
        async for index, chunk in _enumerate(_seconds_of_audio(40, pace=16)):
            if index % 10 == 0:  # a look at the heap for every second of audio
                most_alive = max(most_alive, _alive(RealtimeSession))
            yield chunk

    policy = RolloverPolicy(max_session=0.3, keep_transcript=False, backoff_initial=0.01)
    async with LocalServer(engine=WORDY) as server:
        with anyio.fail_after(60):
            async with stream(audio(), settings=server.settings(), rollover=policy) as events:
                async for _ in events:
                    pass
    metrics = events.metrics
    del events  # it holds the last session, for its controls
    assert metrics is not None
    assert metrics.rollovers >= 5
    assert most_alive <= sessions + 3  # the current session, the next one, one draining
    assert _alive(RealtimeSession) == sessions
    assert _alive(sm_rt.AsyncClient) == clients
