"""The local server's real-time API, driven by the official real-time SDK and raw WebSockets."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import anyio.abc
import numpy as np
import pytest
from speechmatics.rt import (
    AsyncClient,
    AsyncMultiChannelClient,
    AudioEncoding,
    AudioFormat,
    ConnectionError,
    ServerMessageType,
    TranscriptionConfig,
    TranscriptionError,
)

from speechmatics_modes.local import Faults, LocalServer, ScriptedEngine, SocketFault, StreamUpdate
from speechmatics_modes.local._scripted import ScriptedStream
from tests.conftest import Clip, eventually
from tests.local.conftest import pcm_bytes, scripted_engine, wav_bytes

pytestmark = pytest.mark.anyio

START: dict[str, Any] = {
    "message": "StartRecognition",
    "audio_format": {"type": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
    "transcription_config": {"language": "en"},
}
CHUNK = 3200


@asynccontextmanager
async def connect(
    server: LocalServer, path: str = "", **kwargs: Any
) -> AsyncIterator[aiohttp.ClientWebSocketResponse[bool]]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(server.rt_url + path, max_msg_size=0, **kwargs) as socket,
    ):
        yield socket


async def until_closed(socket: aiohttp.ClientWebSocketResponse[bool]) -> list[dict[str, Any]]:
    messages = []
    async for message in socket:
        if message.type is aiohttp.WSMsgType.TEXT:
            messages.append(json.loads(message.data))
    return messages


async def started(socket: aiohttp.ClientWebSocketResponse[bool], **config: Any) -> dict[str, Any]:
    start = {**START, "transcription_config": {"language": "en", **config}}
    await socket.send_json(start)
    reply: dict[str, Any] = await socket.receive_json()
    assert reply["message"] == "RecognitionStarted", reply
    return reply


async def send_audio(socket: aiohttp.ClientWebSocketResponse[bool], audio: bytes) -> None:
    for offset in range(0, len(audio), CHUNK):
        await socket.send_bytes(audio[offset : offset + CHUNK])


def of_kind(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [message for message in messages if message["message"] == kind]


def final_text(messages: list[dict[str, Any]]) -> str:
    return " ".join(
        m["metadata"]["transcript"] for m in of_kind(messages, "AddTranscript")
    ).replace(" .", ".")


@pytest.mark.slow
async def test_real_speech_with_partials_and_finals(
    speech_clips: list[Clip], no_leaks: None
) -> None:
    from tests.local.test_server_batch import plain_words, word_error_rate

    clip = min(speech_clips, key=lambda clip: abs(clip.duration - 8))
    messages: list[dict[str, Any]] = []
    async with LocalServer() as server, AsyncClient(api_key="any", url=server.rt_url) as client:
        for kind in (ServerMessageType.ADD_TRANSCRIPT, ServerMessageType.ADD_PARTIAL_TRANSCRIPT):
            client.on(kind, messages.append)
        with clip.path.open("rb") as audio:
            await client.transcribe(
                audio, transcription_config=TranscriptionConfig(language="en", enable_partials=True)
            )
    assert of_kind(messages, "AddPartialTranscript")
    assert word_error_rate(clip.reference, plain_words(final_text(messages))) < 0.5
    assert final_text(messages).endswith(".")


async def test_sdk_file_session_gives_sentences(server: LocalServer) -> None:
    messages: list[dict[str, Any]] = []
    async with AsyncClient(api_key="any", url=server.rt_url) as client:
        client.on(ServerMessageType.ADD_TRANSCRIPT, messages.append)
        client.on(ServerMessageType.END_OF_TRANSCRIPT, messages.append)
        await client.transcribe(
            io.BytesIO(wav_bytes(5)), transcription_config=TranscriptionConfig()
        )
    assert final_text(messages) == "Hello world. How are you."
    assert messages[-1] == {"message": "EndOfTranscript"}
    assert server.stats.sessions_started == 1


@pytest.mark.parametrize(
    ("encoding", "rate", "sample"),
    [
        (AudioEncoding.PCM_F32LE, 44_100, np.zeros(1, "<f4").tobytes()),
        (AudioEncoding.MULAW, 8_000, b"\xff"),
    ],
)
async def test_raw_encodings_at_any_rate(
    server: LocalServer, encoding: AudioEncoding, rate: int, sample: bytes
) -> None:
    messages: list[dict[str, Any]] = []
    audio = io.BytesIO(sample * rate * 5)
    async with AsyncClient(api_key="any", url=server.rt_url) as client:
        client.on(ServerMessageType.ADD_TRANSCRIPT, messages.append)
        await client.transcribe(
            audio,
            transcription_config=TranscriptionConfig(),
            audio_format=AudioFormat(encoding=encoding, sample_rate=rate),
        )
    assert final_text(messages) == "Hello world. How are you."


async def test_wrong_key_is_refused_before_upgrade(no_leaks: None) -> None:
    async with LocalServer(engine=scripted_engine(), api_key="secret") as server:
        async with AsyncClient(api_key="wrong", url=server.rt_url) as client:
            with pytest.raises(ConnectionError, match="401"):
                await client.start_session(transcription_config=TranscriptionConfig())
        async with connect(server, "/en?jwt=secret&sm-app=x") as socket:
            await started(socket)


async def test_invalid_config_fails_the_sdk_start(server: LocalServer) -> None:
    async with AsyncClient(api_key="any", url=server.rt_url) as client:
        with pytest.raises(TranscriptionError, match="not available"):
            await client.start_session(transcription_config=TranscriptionConfig(language="xx"))


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (lambda s: s.send_str("{nope"), ("invalid_message", 1003)),
        (lambda s: s.send_bytes(b"\x00\x00"), ("protocol_error", 1003)),
        (lambda s: s.send_json({"message": "Dance"}), ("protocol_error", 1003)),
        (lambda s: s.send_bytes(b"\x00" * (2 * 1024 * 1024)), ("protocol_error", 1003)),
        (
            lambda s: s.send_json({**START, "audio_format": {"type": "raw"}}),
            ("invalid_audio_type", 1003),
        ),
    ],
)
async def test_bad_messages_get_the_protocol_error_and_the_server_lives_on(
    server: LocalServer, send: Any, expected: tuple[str, int]
) -> None:
    async with connect(server) as socket:
        await send(socket)
        messages = await until_closed(socket)
        assert (messages[-1]["type"], socket.close_code) == expected
    async with connect(server) as socket:
        await started(socket)


async def test_second_start_and_unknown_message_after_start(server: LocalServer) -> None:
    async with connect(server) as socket:
        await started(socket)
        await socket.send_json(START)
        assert (await until_closed(socket))[-1]["type"] == "protocol_error"
    async with connect(server) as socket:
        await started(socket)
        await socket.send_json({"message": "Dance"})
        assert (await until_closed(socket))[-1]["type"] == "invalid_message"
        assert socket.close_code == 1003


async def test_eou_force_and_end_of_transcript_then_the_server_closes(
    server: LocalServer,
) -> None:
    async with connect(server) as socket:
        await started(socket, conversation_config={"end_of_utterance_silence_trigger": 0.5})
        await send_audio(socket, pcm_bytes(2.2))
        await socket.send_json({"message": "ForceEndOfUtterance"})
        await socket.send_json({"message": "EndOfStream", "last_seq_no": 0})
        with anyio.fail_after(10):
            messages = await until_closed(socket)
        assert socket.close_code == 1000
    eous = of_kind(messages, "EndOfUtterance")
    assert [eou.get("forced", False) for eou in eous] == [False, True]
    assert [m["metadata"]["transcript"] for m in of_kind(messages, "AddTranscript")][:2] == [
        "Hello",
        "world",
    ]
    assert of_kind(messages, "AddTranscript")[-1]["forced"] is True
    assert messages[-1] == {"message": "EndOfTranscript"}
    assert len(of_kind(messages, "AudioAdded")) == len(range(0, len(pcm_bytes(2.2)), CHUNK))
    assert await eventually(lambda: server.stats.sessions_active == 0)


class _GatedStream(ScriptedStream):
    """Flushes only once the test opens the gate: an engine still busy with the last words."""

    def __init__(self, engine: ScriptedEngine, gate: anyio.Event) -> None:
        super().__init__(engine, final_lag=0.0)
        self._gate = gate

    async def flush(self) -> StreamUpdate:
        await self._gate.wait()
        return await super().flush()


class _GatedEngine(ScriptedEngine):
    def __init__(self, gate: anyio.Event) -> None:
        super().__init__(scripted_engine().words)
        self._gate = gate

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> ScriptedStream:
        return _GatedStream(self, self._gate)


async def test_audio_after_end_of_stream_is_warned_before_end_of_transcript(
    no_leaks: None,
) -> None:
    gate = anyio.Event()
    async with LocalServer(engine=_GatedEngine(gate)) as server, connect(server) as socket:
        await started(socket)
        await send_audio(socket, pcm_bytes(1.0))
        await socket.send_json({"message": "EndOfStream", "last_seq_no": 0})
        await socket.send_bytes(pcm_bytes(0.1))
        messages: list[dict[str, Any]] = []
        with anyio.fail_after(10):
            while not messages or messages[-1]["message"] != "Warning":
                messages.append(await socket.receive_json())
            gate.set()
            messages += await until_closed(socket)
    warning = of_kind(messages, "Warning")
    assert [w["type"] for w in warning] == ["add_audio_after_eos"]
    assert messages.index(warning[0]) < messages.index({"message": "EndOfTranscript"})
    assert messages[-1] == {"message": "EndOfTranscript"}


class _BusyStream(ScriptedStream):
    """Records what each feed brought, and the audio it was shown arriving (before its feed);
    the first feed waits at the gate (a decode that takes long)."""

    def __init__(self, engine: _BusyEngine) -> None:
        super().__init__(engine, final_lag=0.0)
        self._busy = engine
        self.joins_backlog = engine.joins

    async def feed(self, pcm: bytes) -> StreamUpdate:
        self._busy.fed.append(len(pcm))
        if len(self._busy.fed) == 1:
            await self._busy.gate.wait()
        return await super().feed(pcm)

    def arriving(self, pcm: bytes) -> None:
        self._busy.arrived.append(len(pcm))


class _BusyEngine(ScriptedEngine):
    def __init__(self, *, joins: bool) -> None:
        super().__init__(scripted_engine().words)
        self.joins = joins
        self.gate = anyio.Event()
        self.fed: list[int] = []
        self.arrived: list[int] = []
        """The length of each audio message shown arriving."""

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> ScriptedStream:
        return _BusyStream(self)


@pytest.mark.parametrize("joins", [True, False])
async def test_audio_read_while_the_engine_is_busy_reaches_it_in_one_feed(
    joins: bool, no_leaks: None
) -> None:
    """Chunks that came during a long decode are fed together when it ends, so the engine's
    next decode hears all of them (a pause among them is seen at once, not a decode later);
    each chunk is still acknowledged, in order. Only if the stream asks: a quick one is fed
    each message's audio, so what it says follows the client's chunks, not the timing.
    Either way each chunk is shown to the stream as it arrives, during the decode (a stream
    that sees a pause begin there may drop the decode)."""
    engine = _BusyEngine(joins=joins)
    chunk = pcm_bytes(0.1)
    async with LocalServer(engine=engine) as server, connect(server) as socket:
        await started(socket)
        for _ in range(6):
            await socket.send_bytes(chunk)
        assert await eventually(lambda: server.stats.audio_frames == 6)
        assert engine.fed == [len(chunk)]
        assert engine.arrived == [len(chunk)] * 6, "shown as read, while the first is fed"
        engine.gate.set()  # the first decode ends with five chunks read behind it
        await socket.send_json({"message": "EndOfStream", "last_seq_no": 6})
        messages = await until_closed(socket)
    assert engine.fed == [len(chunk), 5 * len(chunk)] if joins else [len(chunk)] * 6
    assert [m["seq_no"] for m in of_kind(messages, "AudioAdded")] == [1, 2, 3, 4, 5, 6]
    assert messages[-1] == {"message": "EndOfTranscript"}


class _TurnsEngine(ScriptedEngine):
    """Records the EndOfUtterance triggers and ``max_delay_mode`` its streams are told of."""

    def __init__(self) -> None:
        super().__init__(scripted_engine().words)
        self.triggers: list[float] = []
        self.entities: list[bool] = []

    async def open_stream(self, *, max_delay: float, partials: bool = True) -> ScriptedStream:
        return _TurnsStream(self)


class _TurnsStream(ScriptedStream):
    def __init__(self, engine: _TurnsEngine) -> None:
        super().__init__(engine, final_lag=0.0)
        self._triggers = engine.triggers
        self._entities = engine.entities

    def end_utterances_after(self, seconds: float) -> None:
        self._triggers.append(seconds)

    def finish_entities(self, allowed: bool) -> None:
        self._entities.append(allowed)


async def told_after(start: dict[str, Any], changes: list[dict[str, Any]]) -> _TurnsEngine:
    """The engine of a session started with ``start`` and reconfigured with each of ``changes``."""
    engine = _TurnsEngine()
    async with LocalServer(engine=engine) as server, connect(server) as socket:
        await started(socket, **start)
        for change in changes:
            await socket.send_json(
                {"message": "SetRecognitionConfig", "transcription_config": change}
            )
        await send_audio(socket, pcm_bytes(0.2))
        await socket.send_json({"message": "EndOfStream", "last_seq_no": 1})
        messages = await until_closed(socket)
    assert messages[-1] == {"message": "EndOfTranscript"}
    return engine


async def test_engine_streams_hear_the_end_of_utterance_trigger_and_its_changes(
    no_leaks: None,
) -> None:
    def trigger(seconds: float) -> dict[str, Any]:
        return {"conversation_config": {"end_of_utterance_silence_trigger": seconds}}

    engine = await told_after(trigger(0.25), [trigger(0.25), trigger(0.0)])  # 1st: no change
    assert engine.triggers == [0.25, 0.0]


async def test_engine_streams_hear_max_delay_mode_and_its_changes(no_leaks: None) -> None:
    fixed, flexible = {"max_delay_mode": "fixed"}, {"max_delay_mode": "flexible"}
    engine = await told_after(fixed, [fixed, flexible])  # the first changes nothing
    assert engine.entities == [False, True]


async def test_session_limit_warns_then_ends_with_1008(no_leaks: None) -> None:
    async with (
        LocalServer(engine=scripted_engine(), max_session_seconds=0.8) as server,
        connect(server) as socket,
    ):
        await started(socket)
        messages = await until_closed(socket)
    assert [(m["message"], m["type"]) for m in messages] == [
        ("Warning", "session_timeout"),
        ("Warning", "session_timeout"),
        ("Warning", "session_timeout"),
        ("Error", "session_timeout"),
    ]
    assert socket.close_code == 1008


async def test_idle_timeout_warns_then_ends_with_1008(no_leaks: None) -> None:
    async with (
        LocalServer(engine=scripted_engine(), idle_timeout_seconds=0.6) as server,
        connect(server) as socket,
    ):
        await started(socket)
        messages = await until_closed(socket)
    assert [m["type"] for m in messages] == ["idle_timeout"] * 4
    assert messages[-1]["message"] == "Error"
    assert socket.close_code == 1008


async def test_sessions_over_the_quota_are_refused_after_start(no_leaks: None) -> None:
    async with (
        LocalServer(engine=scripted_engine(), max_sessions=1) as server,
        connect(server) as first,
    ):
        await started(first)
        async with AsyncClient(api_key="any", url=server.rt_url) as client:
            with pytest.raises(TranscriptionError, match="Concurrent Quota Exceeded"):
                await client.start_session(transcription_config=TranscriptionConfig())
        async with connect(server) as second:
            await second.send_json(START)
            assert (await until_closed(second))[-1]["type"] == "quota_exceeded"
            assert second.close_code == 4005
        await first.close()
        async with connect(server) as third:
            await started(third)
        assert server.stats.sessions_refused == 2


async def test_drop_after_messages_is_abrupt_and_only_for_chosen_sessions(
    server: LocalServer,
) -> None:
    server.faults = Faults(socket=SocketFault(after_messages=3, sessions=1))
    async with connect(server) as socket:
        await started(socket)
        await send_audio(socket, pcm_bytes(0.5))
        messages = await until_closed(socket)
        assert len(messages) == 2
        assert socket.close_code == 1006
    async with connect(server) as socket:
        await started(socket)
        await send_audio(socket, pcm_bytes(0.5))
        assert (await socket.receive_json())["message"] == "AudioAdded"
    assert server.stats.sessions_faulted == 1


async def test_close_with_code_after_seconds(server: LocalServer) -> None:
    server.faults = Faults(
        socket=SocketFault(after_seconds=0.3, close_code=4013, close_reason="job_error")
    )
    async with connect(server) as socket:
        await started(socket)
        await until_closed(socket)
        assert socket.close_code == 4013


async def test_drop_after_audio_seconds_comes_at_the_same_point_of_the_audio(
    server: LocalServer,
) -> None:
    server.faults = Faults(socket=SocketFault(after_audio_seconds=0.5, close_code=1011))
    async with connect(server) as socket:
        await started(socket)
        await send_audio(socket, pcm_bytes(2.0))  # 20 frames of 0.1 s, sent at once
        messages = await until_closed(socket)
        assert socket.close_code == 1011
    assert [m["seq_no"] for m in of_kind(messages, "AudioAdded")] == [1, 2, 3, 4, 5]
    assert server.stats.sessions_faulted == 1


async def test_drop_at_end_of_stream_cuts_the_session_before_its_last_words(
    server: LocalServer,
) -> None:
    server.faults = Faults(socket=SocketFault(at_end_of_stream=True, close_code=1011))
    async with connect(server) as socket:
        await started(socket)
        await send_audio(socket, pcm_bytes(3.6))  # "you" (3.4-3.8 s) is begun, not final
        await socket.send_json({"message": "EndOfStream", "last_seq_no": 36})
        messages = await until_closed(socket)
        assert socket.close_code == 1011
    assert of_kind(messages, "AudioAdded")[-1]["seq_no"] == 36  # all the audio was taken
    assert final_text(messages) == "Hello world. How are"  # the flush never came
    assert not of_kind(messages, "EndOfTranscript")
    assert server.stats.sessions_faulted == 1


async def test_session_limit_on_the_audio_clock(no_leaks: None) -> None:
    async with (
        LocalServer(
            engine=scripted_engine(), max_session_seconds=1.0, session_clock="audio"
        ) as server,
        connect(server) as socket,
    ):
        await started(socket)
        await anyio.sleep(1.5)  # longer than the limit in wall time: no effect
        await send_audio(socket, pcm_bytes(1.5))
        messages = await until_closed(socket)
    limits = [(m["message"], m["type"]) for m in messages if "type" in m]
    assert limits == [("Warning", "session_timeout")] * 3 + [("Error", "session_timeout")]
    assert of_kind(messages, "AudioAdded")[-1]["seq_no"] == 10  # the limit: 1 s of audio
    assert socket.close_code == 1008


async def test_sdk_session_ends_quietly_when_the_server_drops_it(server: LocalServer) -> None:
    server.faults = Faults(socket=SocketFault(after_messages=4))
    async with AsyncClient(api_key="any", url=server.rt_url) as client:
        await client.transcribe(
            io.BytesIO(wav_bytes(5)), transcription_config=TranscriptionConfig()
        )
    assert server.stats.sessions_faulted == 1


async def test_message_latency_delays_every_message(server: LocalServer) -> None:
    server.faults = Faults(message_latency=0.3)
    async with connect(server) as socket:
        await socket.send_json(START)
        with anyio.move_on_after(0.15) as scope:
            await socket.receive_json()
        assert scope.cancelled_caught


async def test_closing_the_server_closes_open_sessions(no_leaks: None) -> None:
    async with anyio.create_task_group() as tasks:
        async with LocalServer(engine=scripted_engine()) as server:
            http = await tasks.start(_client_until_closed, server)
        assert server.stats.sessions_active == 0
    assert http.close_code == 1001


async def _client_until_closed(
    server: LocalServer, *, task_status: anyio.abc.TaskStatus[aiohttp.ClientWebSocketResponse[bool]]
) -> None:
    async with connect(server) as socket:
        await started(socket)
        task_status.started(socket)
        await until_closed(socket)


async def multichannel_finals(
    server: LocalServer, sources: dict[str, io.BufferedIOBase | io.BytesIO]
) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """Run the SDK's multichannel client: final text per channel, and RecognitionStarted.

    Its ``transcribe()`` returns once the audio is sent, without waiting for the transcript
    (the single-channel client waits): so wait for EndOfTranscript here, as a user must.
    """
    finals: dict[str, list[str]] = {label: [] for label in sources}
    started_messages: list[dict[str, Any]] = []
    ended = anyio.Event()

    def on_final(message: dict[str, Any]) -> None:
        assert {result["channel"] for result in message["results"]} <= {message["channel"]}
        finals[message["channel"]].append(message["metadata"]["transcript"])

    async with AsyncMultiChannelClient(api_key="any", url=server.rt_url) as client:
        client.on(ServerMessageType.ADD_TRANSCRIPT, on_final)
        client.on(ServerMessageType.RECOGNITION_STARTED, started_messages.append)
        client.on(ServerMessageType.END_OF_TRANSCRIPT, lambda _: ended.set())
        with anyio.fail_after(60):
            await client.transcribe(
                dict(sources),
                transcription_config=TranscriptionConfig(
                    language="en", diarization="channel", channel_diarization_labels=list(sources)
                ),
            )
            await ended.wait()
    return finals, started_messages


async def test_sdk_multichannel_client_gets_each_channel_transcribed(server: LocalServer) -> None:
    sources = {"agent": io.BytesIO(wav_bytes(5)), "caller": io.BytesIO(wav_bytes(5))}
    finals, started_messages = await multichannel_finals(server, sources)
    assert started_messages[0]["channel_ids"] == ["agent", "caller"]
    for label in sources:
        assert " ".join(finals[label]).replace(" .", ".") == "Hello world. How are you."
    assert server.stats.sessions_active == 0


@pytest.mark.slow
async def test_two_channels_of_real_speech_are_recognised_apart(
    speech_clips: list[Clip], no_leaks: None
) -> None:
    from tests.local.test_server_batch import plain_words, word_error_rate

    # The SDK stops every channel when one ends: the shorter clip is heard whole, the other
    # only as far, so each channel must match its own clip far better than the other one.
    first, second = sorted(speech_clips, key=lambda clip: abs(clip.duration - 6))[:2]
    async with LocalServer() as server:
        with first.path.open("rb") as left, second.path.open("rb") as right:
            finals, _ = await multichannel_finals(server, {"left": left, "right": right})
    shorter = min(first, second, key=lambda clip: clip.duration)
    texts = {
        clip: plain_words(" ".join(finals[label]))
        for label, clip in (("left", first), ("right", second))
    }
    assert word_error_rate(shorter.reference, texts[shorter]) < 0.5, texts
    for own, other in ((first, second), (second, first)):
        assert word_error_rate(own.reference, texts[own]) < word_error_rate(
            other.reference, texts[own]
        )
