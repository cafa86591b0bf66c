"""The real-time session state machine, without sockets."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from speechmatics_modes.local import EngineWord, SessionLimits, StreamUpdate
from speechmatics_modes.local._engine import StreamSettings
from speechmatics_modes.local._rt_protocol import (
    Action,
    Close,
    Feed,
    Flush,
    OpenStream,
    RealtimeProtocol,
    Retune,
    Send,
    warning_offsets,
)

START: dict[str, Any] = {
    "message": "StartRecognition",
    "audio_format": {"type": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
    "transcription_config": {"language": "en", "model": "enhanced"},
}
HELLO = EngineWord("hello", 0.5, 0.9, 0.9)
WORLD = EngineWord("world", 1.0, 1.4, 0.8)


def started(limits: SessionLimits | None = None, **config: Any) -> RealtimeProtocol:
    session = RealtimeProtocol("sid", limits or SessionLimits(), now=0.0)
    start = {**START, "transcription_config": {"language": "en", **config}}
    actions = session.receive_text(json.dumps(start), 0.0)
    partials = config.get("enable_partials", False)
    trigger = config.get("conversation_config", {}).get("end_of_utterance_silence_trigger", 0.0)
    flexible = config.get("max_delay_mode", "flexible") == "flexible"
    settings = StreamSettings(config.get("max_delay", 4.0), partials, trigger, flexible)
    assert actions == [OpenStream(settings)]
    assert sent(session.started())[0]["message"] == "RecognitionStarted"
    return session


def sent(actions: list[Action]) -> list[dict[str, Any]]:
    return [action.message for action in actions if isinstance(action, Send)]


def error_of(actions: list[Action]) -> tuple[str, int]:
    messages = sent(actions)
    closes = [action for action in actions if isinstance(action, Close)]
    assert messages[-1]["message"] == "Error", messages
    assert len(closes) == 1
    return messages[-1]["type"], closes[0].code


def test_recognition_started_names_session_and_language() -> None:
    session = RealtimeProtocol("abc", SessionLimits(), now=0.0)
    session.receive_text(json.dumps(START), 0.0)
    (message,) = sent(session.started())
    assert message["id"] == "abc"
    assert message["language_pack_info"]["word_delimiter"] == " "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", ("invalid_message", 1003)),
        ('["StartRecognition"]', ("invalid_message", 1003)),
        ('{"message": "Bogus"}', ("protocol_error", 1003)),
        ('{"message": "EndOfStream", "last_seq_no": 0}', ("protocol_error", 1003)),
        ("[" * 100_000 + "]" * 100_000, ("invalid_message", 1003)),
        ('{"message": "StartRecognition", "n": ' + "9" * 5000 + "}", ("invalid_message", 1003)),
    ],
    ids=["not-json", "not-object", "unknown", "eos-first", "deep", "long-number"],
)
def test_bad_first_messages_end_the_session(text: str, expected: tuple[str, int]) -> None:
    session = RealtimeProtocol("sid", SessionLimits(), now=0.0)
    assert error_of(session.receive_text(text, 0.0)) == expected
    assert session.closed
    assert session.receive_text(json.dumps(START), 0.0) == []


def test_audio_before_start_is_a_protocol_error() -> None:
    session = RealtimeProtocol("sid", SessionLimits(), now=0.0)
    assert error_of(session.receive_bytes(b"\x00\x00", 0.0)) == ("protocol_error", 1003)


def test_second_start_is_a_protocol_error() -> None:
    session = started()
    assert error_of(session.receive_text(json.dumps(START), 0.0)) == ("protocol_error", 1003)


@pytest.mark.parametrize(
    ("change", "expected_type"),
    [
        ({"transcription_config": {"language": "en", "max_delay": 9}}, "invalid_config"),
        ({"transcription_config": {"language": "en", "no_such_key": 1}}, "invalid_config"),
        ({"transcription_config": {}}, "invalid_config"),
        ({"transcription_config": {"language": "xx"}}, "invalid_language"),
        ({"transcription_config": {"language": "en", "model": "oak-1"}}, "invalid_config"),
        (
            {"audio_format": {"type": "raw", "encoding": "pcm_s24le", "sample_rate": 1}},
            "invalid_audio_type",
        ),
    ],
)
def test_invalid_start_is_rejected(change: dict[str, Any], expected_type: str) -> None:
    session = RealtimeProtocol("sid", SessionLimits(), now=0.0)
    assert error_of(session.receive_text(json.dumps({**START, **change}), 0.0))[0] == expected_type


def test_unknown_message_after_start_is_invalid_message() -> None:
    assert error_of(started().receive_text('{"message": "Dance"}', 0.0)) == (
        "invalid_message",
        1003,
    )


def test_oversize_messages_are_protocol_errors() -> None:
    session = started()
    assert error_of(session.receive_bytes(b"\x00" * (1024 * 1024 + 2), 0.0))[0] == "protocol_error"
    text_session = started()
    huge = json.dumps({"message": "GetSpeakers", "pad": "x" * (1024 * 1024)})
    assert error_of(text_session.receive_text(huge, 0.0))[0] == "protocol_error"


def test_audio_is_acknowledged_and_fed_in_order() -> None:
    session = started()
    first = session.receive_bytes(b"\x01\x00" * 160, 1.0)
    second = session.receive_bytes(b"\x02\x00" * 160, 1.0)
    assert sent(first) == [{"message": "AudioAdded", "seq_no": 1}]
    assert sent(second) == [{"message": "AudioAdded", "seq_no": 2}]
    assert first[1] == Feed(b"\x01\x00" * 160)


def test_finals_are_capitalised_and_end_with_a_full_stop() -> None:
    session = started()
    (message,) = sent(session.recognized(StreamUpdate((HELLO, WORLD), (), True)))
    assert message["message"] == "AddTranscript"
    assert message["format"] == "2.9"
    assert message["metadata"] == {"start_time": 0.5, "end_time": 1.4, "transcript": "Hello world."}
    word, _, stop = message["results"]
    assert word["alternatives"] == [{"content": "Hello", "confidence": 0.9, "language": "en"}]
    assert stop["type"] == "punctuation"
    assert stop["attaches_to"] == "previous"
    assert stop["is_eos"] is True


def test_an_utterance_the_engine_ended_with_a_comma_gets_no_full_stop_after_it() -> None:
    session = started()
    comma = EngineWord("world", 1.0, 1.4, 0.8, ",")
    (message,) = sent(session.recognized(StreamUpdate((HELLO, comma), (), False)))
    assert message["metadata"]["transcript"] == "Hello world,"
    assert sent(session.recognized(StreamUpdate((), (), True))) == []
    (message,) = sent(session.recognized(StreamUpdate((HELLO,), (), True)))
    assert message["metadata"]["transcript"] == "hello."


def test_speaker_only_with_speaker_diarization() -> None:
    session = started(diarization="speaker", enable_partials=True)
    final, partial = sent(session.recognized(StreamUpdate((HELLO,), (WORLD,), True)))
    for message in (final, partial):
        assert {result["alternatives"][0]["speaker"] for result in message["results"]} == {"S1"}


def multichannel(**config: Any) -> RealtimeProtocol:
    session = RealtimeProtocol("sid", SessionLimits(), now=0.0)
    start = {
        **START,
        "transcription_config": {
            "language": "en",
            "diarization": "channel",
            "channel_diarization_labels": ["left", "right"],
            **config,
        },
    }
    actions = session.receive_text(json.dumps(start), 0.0)
    partials = config.get("enable_partials", False)
    assert actions == [OpenStream(StreamSettings(4.0, partials), channels=("left", "right"))]
    (message,) = sent(session.started())
    assert message["channel_ids"] == ["left", "right"]
    return session


def channel_audio(channel: str, pcm: bytes) -> str:
    data = base64.b64encode(pcm).decode()
    return json.dumps({"message": "AddChannelAudio", "channel": channel, "data": data})


def test_multichannel_audio_is_acknowledged_and_fed_per_channel() -> None:
    session = multichannel()
    left = session.receive_text(channel_audio("left", b"\x01\x00"), 1.0)
    right = session.receive_text(channel_audio("right", b"\x02\x00"), 1.0)
    again = session.receive_text(channel_audio("left", b"\x03\x00"), 1.0)
    assert sent(left) == [{"message": "ChannelAudioAdded", "channel": "left", "seq_no": 1}]
    assert sent(right) == [{"message": "ChannelAudioAdded", "channel": "right", "seq_no": 1}]
    assert sent(again) == [{"message": "ChannelAudioAdded", "channel": "left", "seq_no": 2}]
    assert (left[1], right[1]) == (Feed(b"\x01\x00", "left"), Feed(b"\x02\x00", "right"))


def test_multichannel_results_name_their_channel_and_speaker_with_channel_and_speaker() -> None:
    session = multichannel(diarization="channel_and_speaker", enable_partials=True)
    final, partial = sent(
        session.recognized(StreamUpdate((HELLO,), (WORLD,), True), channel="right")
    )
    for message in (final, partial):
        assert message["channel"] == "right"
        assert {result["channel"] for result in message["results"]} == {"right"}
        assert {result["alternatives"][0]["speaker"] for result in message["results"]} == {"S1"}


def test_each_end_of_channel_flushes_its_channel_and_the_last_one_ends_the_session() -> None:
    session = multichannel()
    end_left = '{"message": "EndOfChannel", "channel": "left", "last_seq_no": 0}'
    assert session.receive_text(end_left, 1.0) == [Flush(end_of_stream=True, channel="left")]
    late = session.receive_text(channel_audio("left", b"\x00\x00"), 1.0)
    assert sent(late)[1]["type"] == "add_audio_after_eos"
    assert (
        sent(session.finished(StreamUpdate((HELLO,), (), False), "left"))[-1]["channel"] == "left"
    )
    end_right = '{"message": "EndOfChannel", "channel": "right", "last_seq_no": 0}'
    assert session.receive_text(end_right, 1.0) == [Flush(end_of_stream=True, channel="right")]
    end = session.finished(StreamUpdate((), (), False), "right")
    assert sent(end)[-1] == {"message": "EndOfTranscript"}
    assert end[-1] == Close(1000, "")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (channel_audio("middle", b"\x00\x00"), "unknown channel 'middle'"),
        ('{"message": "AddChannelAudio", "channel": "left", "data": "%%"}', "base64"),
        ('{"message": "AddChannelAudio", "channel": "left"}', "base64"),
    ],
)
def test_bad_channel_audio_is_invalid_message(text: str, reason: str) -> None:
    messages = sent(multichannel().receive_text(text, 1.0))
    assert (messages[-1]["type"], reason in messages[-1]["reason"]) == ("invalid_message", True)


def test_channel_audio_needs_a_multichannel_session_and_binary_audio_an_ordinary_one() -> None:
    assert error_of(started().receive_text(channel_audio("left", b"\x00\x00"), 1.0)) == (
        "invalid_message",
        1003,
    )
    assert error_of(multichannel().receive_bytes(b"\x00\x00", 1.0)) == ("protocol_error", 1003)


def test_more_than_two_channels_is_invalid_config() -> None:
    session = RealtimeProtocol("sid", SessionLimits(), now=0.0)
    config = {"language": "en", "diarization": "channel", "channel_diarization_labels": list("abc")}
    start = {**START, "transcription_config": config}
    assert error_of(session.receive_text(json.dumps(start), 0.0)) == ("invalid_config", 1003)


def test_partials_only_when_enabled() -> None:
    quiet = started()
    assert sent(quiet.recognized(StreamUpdate((), (HELLO,), False))) == []
    chatty = started(enable_partials=True)
    (partial,) = sent(chatty.recognized(StreamUpdate((), (HELLO,), False)))
    assert partial["message"] == "AddPartialTranscript"
    assert partial["metadata"]["transcript"] == "Hello"


def heard(session: RealtimeProtocol, seconds: float) -> None:
    """Give the session ``seconds`` of silent audio (what the engine does with it is scripted)."""
    actions = session.receive_bytes(b"\x00\x00" * round(seconds * 16_000), 0.0)
    assert any(isinstance(action, Feed) for action in actions)


def test_end_of_utterance_once_per_silence_and_only_after_speech() -> None:
    session = started(conversation_config={"end_of_utterance_silence_trigger": 0.5})
    heard(session, 1.5)
    assert sent(session.recognized(StreamUpdate((), (), True))) == []
    first = sent(session.recognized(StreamUpdate((HELLO,), (), True)))
    assert [message["message"] for message in first] == ["AddTranscript", "EndOfUtterance"]
    assert first[1]["metadata"] == {"start_time": 0.9, "end_time": 0.9}
    assert sent(session.recognized(StreamUpdate((), (), True))) == []


def test_end_of_utterance_waits_for_the_trigger_in_audio_time() -> None:
    """The engine may close an utterance at a shorter pause than the trigger: EndOfUtterance
    comes once the trigger's worth of audio followed the last word, not before, not later."""
    session = started(conversation_config={"end_of_utterance_silence_trigger": 1.0})
    heard(session, 1.3)
    first = sent(session.recognized(StreamUpdate((HELLO,), (), True)))
    assert [message["message"] for message in first] == ["AddTranscript"]
    heard(session, 0.5)  # 1.8 s: 0.9 s after "hello" ended
    assert sent(session.recognized(StreamUpdate())) == []
    heard(session, 0.1)  # 1.9 s: the trigger
    assert [m["message"] for m in sent(session.recognized(StreamUpdate()))] == ["EndOfUtterance"]


def test_speech_resuming_before_the_trigger_cancels_the_end_of_utterance() -> None:
    session = started(conversation_config={"end_of_utterance_silence_trigger": 1.0})
    heard(session, 1.3)
    session.recognized(StreamUpdate((HELLO,), (), True))
    heard(session, 1.0)
    assert sent(session.recognized(StreamUpdate((), (WORLD,), False))) == []


def test_finals_never_start_before_the_previous_final_ended() -> None:
    session = started()
    session.recognized(StreamUpdate((HELLO,), (), False))
    early = EngineWord("there", 0.7, 1.2, 0.9)
    (message,) = sent(session.recognized(StreamUpdate((early,), (), False)))
    assert [(r["start_time"], r["end_time"]) for r in message["results"]] == [(0.9, 1.2)]


def test_no_end_of_utterance_without_trigger() -> None:
    session = started()
    messages = sent(session.recognized(StreamUpdate((HELLO,), (), True)))
    assert [message["message"] for message in messages] == ["AddTranscript"]


def test_force_end_of_utterance_answers_forced_transcript_and_eou() -> None:
    session = started()
    assert session.receive_text('{"message": "ForceEndOfUtterance"}', 0.0) == [
        Flush(end_of_stream=False)
    ]
    messages = sent(session.recognized(StreamUpdate((HELLO,), (), False), forced=True))
    assert [(m["message"], m.get("forced")) for m in messages] == [
        ("AddTranscript", True),
        ("EndOfUtterance", True),
    ]


def test_end_of_stream_flushes_then_ends_and_later_audio_is_warned() -> None:
    session = started()
    actions = session.receive_text('{"message": "EndOfStream", "last_seq_no": 0}', 2.0)
    assert actions == [Flush(end_of_stream=True)]
    assert session.next_deadline() is None
    after = session.receive_bytes(b"\x00\x00", 3.0)
    assert all(isinstance(action, Send) for action in after)
    assert sent(after)[1] == {
        "message": "Warning",
        "type": "add_audio_after_eos",
        "reason": "audio after EndOfStream ignored",
    }
    end = session.finished(StreamUpdate((HELLO,), (), False))
    assert [m["message"] for m in sent(end)] == ["AddTranscript", "EndOfTranscript"]
    assert end[-1] == Close(1000, "")
    assert session.closed


def test_set_recognition_config_allows_only_the_subset() -> None:
    session = started()
    allowed = {"message": "SetRecognitionConfig", "transcription_config": {"enable_partials": True}}
    assert session.receive_text(json.dumps(allowed), 0.0) == [Retune(StreamSettings(4.0, True))]
    assert sent(session.recognized(StreamUpdate((), (HELLO,), False)))[0]["message"] == (
        "AddPartialTranscript"
    )
    forbidden = {
        "message": "SetRecognitionConfig",
        "transcription_config": {"diarization": "speaker"},
    }
    assert error_of(session.receive_text(json.dumps(forbidden), 0.0)) == ("invalid_config", 1003)


def test_the_end_of_utterance_trigger_reaches_the_engine_streams_when_it_changes() -> None:
    """An engine may end utterances at pauses as short as the trigger, so it is told the
    trigger at the start (``started`` checks that) and whenever it changes, and only then."""
    session = started(conversation_config={"end_of_utterance_silence_trigger": 0.25})
    quicker = {"conversation_config": {"end_of_utterance_silence_trigger": 0.3}}
    change = {"message": "SetRecognitionConfig", "transcription_config": quicker}
    assert session.receive_text(json.dumps(change), 0.0) == [
        Retune(StreamSettings(4.0, False, end_of_utterance_trigger=0.3))
    ]
    assert session.receive_text(json.dumps(change), 0.0) == []


def test_max_delay_mode_reaches_the_engine_streams_at_the_start_and_when_it_changes() -> None:
    """Flexible, the default, lets an engine hold a number past max_delay until it is whole;
    fixed keeps max_delay (``started`` checks the start)."""
    session = started(max_delay_mode="fixed")
    config = {"max_delay_mode": "flexible"}
    change = {"message": "SetRecognitionConfig", "transcription_config": config}
    assert session.receive_text(json.dumps(change), 0.0) == [
        Retune(StreamSettings(4.0, False, flexible_delay=True))
    ]
    started(max_delay=2.0)  # no mode: flexible


def test_get_speakers_answers_now_or_at_the_end() -> None:
    session = started(diarization="speaker")
    session.recognized(StreamUpdate((HELLO,), (), False))
    (now,) = sent(session.receive_text('{"message": "GetSpeakers"}', 0.0))
    assert now["message"] == "SpeakersResult"
    assert [speaker["label"] for speaker in now["speakers"]] == ["S1"]
    assert session.receive_text('{"message": "GetSpeakers", "final": true}', 0.0) == []
    session.receive_text('{"message": "EndOfStream", "last_seq_no": 0}', 0.0)
    end = sent(session.finished(StreamUpdate((), (), False)))
    assert [m["message"] for m in end][-2:] == ["SpeakersResult", "EndOfTranscript"]


def test_warning_offsets_keep_service_values_and_scale_short_limits() -> None:
    assert warning_offsets(48 * 3600, (2700, 1800, 900)) == (2700, 1800, 900)
    assert warning_offsets(6.0, (2700, 1800, 900)) == pytest.approx((4.5, 3.0, 1.5))


def test_session_limit_warns_three_times_then_ends_with_1008() -> None:
    session = started(SessionLimits(max_session_seconds=6.0))
    warnings: list[dict[str, Any]] = []
    while (deadline := session.next_deadline()) is not None and not session.closed:
        actions = session.tick(deadline)
        session.receive_bytes(b"\x00\x00", deadline)  # audio keeps the idle timer quiet
        warnings.extend(m for m in sent(actions) if m["message"] == "Warning")
        if any(isinstance(action, Close) for action in actions):
            assert error_of(actions) == ("session_timeout", 1008)
    assert [w["type"] for w in warnings] == ["session_timeout"] * 3
    assert "timeout in 4.5s" in warnings[0]["reason"]


def test_session_limit_on_the_audio_clock_counts_audio_not_time() -> None:
    session = started(SessionLimits(max_session_seconds=4.0, session_clock="audio"))
    second = b"\x00\x00" * 16_000
    assert sent(session.tick(100.0)) == []  # far past 4 s of wall time: nothing
    assert session.next_deadline() == 2700.0  # the idle timer's first warning, nothing else
    first = sent(session.receive_bytes(second, 100.0))
    assert [(m["message"], m.get("type")) for m in first] == [
        ("AudioAdded", None),
        ("Warning", "session_timeout"),
    ]
    assert "active for 1s" in first[1]["reason"]
    for _ in range(2):
        assert sent(session.receive_bytes(second, 100.0))[-1]["message"] == "Warning"
    actions = session.receive_bytes(second, 100.0)
    assert error_of(actions) == ("session_timeout", 1008)
    assert "maximum duration of 4s" in sent(actions)[-1]["reason"]
    assert not any(isinstance(action, Feed) for action in actions)  # past the limit: not fed


def test_idle_timer_restarts_on_audio() -> None:
    session = started(SessionLimits(idle_timeout_seconds=60.0))
    assert sent(session.tick(44.0)) == []
    assert sent(session.tick(45.5))[0]["type"] == "idle_timeout"
    session.receive_bytes(b"\x00\x00", 50.0)
    assert sent(session.tick(94.0)) == []
    assert error_of(session.tick(110.0)) == ("idle_timeout", 1008)


def test_refusal_is_an_error_and_a_close() -> None:
    session = RealtimeProtocol("sid", SessionLimits(), now=0.0)
    session.receive_text(json.dumps(START), 0.0)
    assert error_of(session.refuse("quota_exceeded", "Concurrent Quota Exceeded")) == (
        "quota_exceeded",
        4005,
    )
