from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from speechmatics.batch import Transcript as SdkTranscript

from speechmatics_modes import (
    ConfigurationError,
    EndOfUtterance,
    Final,
    Mode,
    Partial,
    Segment,
    ServerError,
    ServerWarning,
    SessionInfo,
    StreamEvent,
    Transcript,
    Word,
)
from speechmatics_modes._models import stream_event

Result = dict[str, Any]


# --- wire-shaped payloads (json-v2 results and AddTranscript messages) ------------------------


def word(content: str, start: float, end: float, speaker: str = "UU", **extra: Any) -> Result:
    alternative: dict[str, Any] = {
        "content": content,
        "confidence": extra.pop("confidence", 0.9),
        "language": "en",
        "speaker": speaker,
    }
    if "tags" in extra:
        alternative["tags"] = extra.pop("tags")
    return {
        "type": "word",
        "start_time": start,
        "end_time": end,
        "alternatives": [alternative],
        **extra,
    }


def mark(
    content: str, at: float, attaches_to: str = "previous", speaker: str = "UU", **extra: Any
) -> Result:
    result = word(content, at, at, speaker, confidence=1.0, **extra)
    return {**result, "type": "punctuation", "attaches_to": attaches_to}


def batch_doc(results: Sequence[Result], *, delimiter: str = " ", duration: int = 30) -> Result:
    return {
        "format": "2.9",
        "job": {
            "id": "job123",
            "created_at": "2025-06-30T11:43:54.135Z",
            "data_name": "a.wav",
            "duration": duration,
        },
        "metadata": {
            "created_at": "2025-06-30T11:44:08.133526Z",
            "type": "transcription",
            "transcription_config": {"language": "en", "diarization": "speaker"},
            "language_pack_info": {"word_delimiter": delimiter, "itn": True},
        },
        "results": list(results),
    }


def add_transcript(results: Sequence[Result], channel: str | None = None) -> Result:
    start = results[0]["start_time"] if results else 0.0
    end = results[-1]["end_time"] if results else 0.0
    message: Result = {
        "message": "AddTranscript",
        "format": "2.9",
        "metadata": {"start_time": start, "end_time": end, "transcript": "(not used)"},
        "results": list(results),
    }
    if channel is not None:
        message["channel"] = channel
    return message


def rt_session(
    results: Sequence[Result], cuts: Sequence[int], delimiter: str = " "
) -> list[Result]:
    """The same results as a real session would carry them: finals split at ``cuts``, with
    partials, acks and the other chatter a message log holds."""
    bounds = [0, *sorted(set(cuts)), len(results)]
    messages: list[Result] = [
        {"message": "Info", "type": "recognition_quality", "quality": "broadcast", "reason": "x"},
        {
            "message": "RecognitionStarted",
            "id": "sess-1",
            "language_pack_info": {"word_delimiter": delimiter},
        },
        {"message": "AudioAdded", "seq_no": 1},
    ]
    for low, high in itertools.pairwise(bounds):
        chunk = results[low:high]
        if chunk:
            messages.append({**add_transcript(chunk), "message": "AddPartialTranscript"})
            messages.append(add_transcript(chunk))
    messages.append({"message": "EndOfTranscript"})
    return messages


DIALOGUE = [
    word("Hello", 0.5, 0.9, "S1"),
    mark(",", 0.9, speaker="S1"),
    word("world", 1.0, 1.4, "S1"),
    mark(".", 1.4, speaker="S1", is_eos=True),
    word("Hi", 2.0, 2.2, "S2"),
    word("there", 2.3, 2.6, "S2"),
    mark("!", 2.6, speaker="S2", is_eos=True),
    word("Who", 3.0, 3.2, "UU"),
    word("knows", 3.3, 3.6, "UU"),
    mark("?", 3.6, speaker="UU", is_eos=True),
    word("Right", 4.0, 4.3, "S1"),
    mark(".", 4.3, speaker="S1", is_eos=True),
]


def batch(results: Sequence[Result], **kwargs: Any) -> Transcript:
    return Transcript.from_batch_json(batch_doc(results, **kwargs))


# --- text and punctuation ----------------------------------------------------------------------


def test_previous_attached_punctuation_joins_the_word_before() -> None:
    assert batch(DIALOGUE[:4]).text == "Hello, world."


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        pytest.param(
            [
                word("He", 0, 1),
                word("said", 1, 2),
                mark("(", 2, "next"),
                word("quietly", 2, 3),
                mark(")", 3),
                word("hi", 3, 4),
            ],
            "He said (quietly) hi",
            id="brackets",
        ),
        pytest.param(
            [mark("¿", 0, "next"), word("Qué", 0, 1), mark("?", 1, is_eos=True)],
            "¿Qué?",
            id="opening-mark-first",
        ),
        pytest.param(
            [word("well", 0, 1), mark("-", 1, "both"), word("known", 1, 2)],
            "well-known",
            id="hyphen-both",
        ),
        pytest.param(
            [word("yes", 0, 1), mark("-", 1, "none"), word("no", 1, 2)],
            "yes - no",
            id="free-standing",
        ),
        pytest.param(
            [word("ok", 0, 1), {**mark(".", 1), "attaches_to": None}],
            "ok.",
            id="missing-attaches-to-means-previous",
        ),
    ],
)
def test_punctuation_attaches_as_the_service_says(results: list[Result], expected: str) -> None:
    assert batch(results).text == expected


def test_word_delimiter_comes_from_language_pack_info() -> None:
    results = [word("今日", 0, 1), word("は", 1, 2), mark("。", 2, is_eos=True)]
    transcript = batch(results, delimiter="")
    assert transcript.word_delimiter == ""
    assert transcript.text == "今日は。"
    assert Transcript.from_batch_json(batch_doc(results), word_delimiter="").text == "今日は。"


def test_empty_transcript() -> None:
    transcript = batch([])
    assert transcript.words == ()
    assert transcript.text == ""
    assert transcript.to_text() == ""
    assert transcript.segments() == ()
    assert transcript.to_srt() == ""
    assert transcript.to_vtt() == "WEBVTT\n\n"


def test_punctuation_only_transcript_renders_the_marks() -> None:
    transcript = batch([mark(".", 1.0, is_eos=True), mark("?", 2.0, is_eos=True)])
    assert transcript.text == ".?"
    assert transcript.to_srt() == "1\n00:00:01,000 --> 00:00:02,000\n.?\n\n"


# --- words --------------------------------------------------------------------------------------


def test_words_keep_what_the_service_said() -> None:
    results = [
        word("um", 0.1, 0.3, "S1", tags=["disfluency"], channel="left", confidence=0.4),
        mark(".", 0.3, speaker="S1", is_eos=True, channel="left"),
    ]
    first, second = batch(results).words
    assert first == Word(
        content="um",
        start=0.1,
        end=0.3,
        confidence=0.4,
        speaker="S1",
        channel="left",
        language="en",
        tags=("disfluency",),
    )
    assert second.is_punctuation
    assert second.is_eos
    assert second.attaches_to == "previous"
    assert second.joins_previous
    assert not second.joins_next


def test_entities_become_their_written_form_words() -> None:
    entity = {
        "type": "entity",
        "start_time": 1.0,
        "end_time": 2.0,
        "entity_class": "money",
        "alternatives": [
            {"content": "$1 million", "confidence": 0.95, "language": "en", "speaker": "S1"}
        ],
        "spoken_form": [word("one", 1.0, 1.3), word("million", 1.3, 1.7), word("dollars", 1.7, 2)],
        "written_form": [
            {
                "type": "word",
                "start_time": 1.0,
                "end_time": 1.5,
                "alternatives": [{"content": "$1"}],
            },
            {
                "type": "word",
                "start_time": 1.5,
                "end_time": 2.0,
                "alternatives": [{"content": "million", "confidence": 0.8}],
            },
        ],
    }
    transcript = batch([word("pay", 0.5, 0.9, "S1"), entity, mark(".", 2.0, speaker="S1")])
    assert transcript.text == "pay $1 million."
    dollars, million = transcript.words[1:3]
    assert (dollars.content, dollars.entity_class, dollars.speaker) == ("$1", "money", "S1")
    assert (dollars.confidence, million.confidence) == (0.95, 0.8)
    assert (million.start, million.end) == (1.5, 2.0)


def test_entity_without_written_form_is_one_word() -> None:
    entity = {
        "type": "entity",
        "start_time": 0.0,
        "end_time": 1.0,
        "entity_class": "date",
        "alternatives": [{"content": "19 January", "confidence": 1.0, "language": "en"}],
    }
    (only,) = batch([entity]).words
    assert (only.content, only.entity_class) == ("19 January", "date")


def test_unknown_result_types_are_skipped() -> None:
    results = [word("a", 0, 1), {"type": "speaker_change", "start_time": 1, "end_time": 1}]
    assert batch(results).text == "a"


def test_word_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValidationError, match="ends"):
        Word(content="x", start=2.0, end=1.0, confidence=1.0)


def test_words_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Word(content="x", start=0, end=1, confidence=1, speakr="S1")  # type: ignore[call-arg]


# --- transcript fields ---------------------------------------------------------------------------


def test_batch_transcript_fields() -> None:
    transcript = batch(DIALOGUE)
    assert transcript.mode is Mode.BATCH
    assert transcript.job_id == "job123"
    assert transcript.duration == 30
    assert transcript.language == "en"
    assert transcript.session_ids == ()
    assert transcript.metadata["job"]["data_name"] == "a.wav"
    assert "results" not in transcript.metadata


def test_realtime_transcript_fields() -> None:
    transcript = Transcript.from_realtime_messages(rt_session(DIALOGUE, [4, 7]))
    assert transcript.mode is Mode.REALTIME
    assert transcript.session_ids == ("sess-1",)
    assert transcript.job_id is None
    assert transcript.duration == 4.3
    assert transcript.language == "en"
    assert transcript.metadata["recognition_started"][0]["id"] == "sess-1"


def test_realtime_overrides() -> None:
    transcript = Transcript.from_realtime_messages(
        [add_transcript(DIALOGUE[:2])],
        language="fr",
        session_ids=["a", "b"],
        duration=9.5,
        word_delimiter="_",
    )
    assert (transcript.language, transcript.session_ids, transcript.duration) == (
        "fr",
        ("a", "b"),
        9.5,
    )
    assert transcript.text == "Hello,"
    assert transcript.metadata == {}


def test_realtime_partials_are_not_part_of_the_transcript() -> None:
    messages = [
        {**add_transcript([word("guess", 0, 1)]), "message": "AddPartialTranscript"},
        add_transcript([word("final", 0, 1)]),
        {**add_transcript([word("trailing", 1, 2)]), "message": "AddPartialTranscript"},
    ]
    assert Transcript.from_realtime_messages(messages).text == "final"


def test_realtime_message_channel_labels_the_words() -> None:
    messages = [
        add_transcript([word("left", 0, 1)], channel="left"),
        add_transcript([word("right", 0.5, 1.5)], channel="right"),
    ]
    transcript = Transcript.from_realtime_messages(messages)
    assert [w.channel for w in transcript.words] == ["left", "right"]
    assert transcript.to_text() == "CHANNEL left: left\nCHANNEL right: right"


def test_transcript_mode_must_be_batch_or_realtime() -> None:
    with pytest.raises(ValidationError):
        Transcript(mode=Mode.AUTO)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "document",
    [
        {"format": "2.9"},
        {"results": [{"type": "word", "alternatives": [{"content": "x"}]}]},
        {"results": [{**word("x", 0, 1), "start_time": "soon"}]},
        {"results": "nope"},
    ],
)
def test_malformed_batch_json_is_a_server_error(document: Result) -> None:
    with pytest.raises(ServerError, match="not a valid batch json-v2"):
        Transcript.from_batch_json(document)


def test_malformed_realtime_message_is_a_server_error() -> None:
    with pytest.raises(ServerError, match="AddTranscript"):
        Transcript.from_realtime_messages([{"message": "AddTranscript", "results": []}])


# --- speakers, segments, labelled text ------------------------------------------------------------


def test_segments_group_consecutive_words_of_one_speaker() -> None:
    segments = batch(DIALOGUE).segments()
    assert [(s.speaker, s.text) for s in segments] == [
        ("S1", "Hello, world."),
        ("S2", "Hi there!"),
        ("UU", "Who knows?"),
        ("S1", "Right."),
    ]
    assert (segments[1].start, segments[1].end) == (2.0, 2.6)
    assert all(isinstance(s, Segment) for s in segments)


def test_punctuation_stays_with_its_word_across_a_speaker_change() -> None:
    results = [word("yes", 0, 1, "S1"), mark(".", 1, speaker="S2"), word("no", 2, 3, "S2")]
    segments = batch(results).segments()
    assert [s.text for s in segments] == ["yes.", "no"]


def test_labelled_text_matches_the_batch_sdk() -> None:
    document = batch_doc(DIALOGUE)
    expected = SdkTranscript.from_dict(document).transcript_text
    assert batch(DIALOGUE).to_text() == expected
    assert expected.splitlines()[2] == "Who knows?"


def test_unlabelled_text_is_one_line() -> None:
    assert batch(DIALOGUE).to_text(speakers=False) == "Hello, world. Hi there! Who knows? Right."


def test_channels_split_segments_even_for_one_speaker() -> None:
    results = [word("a", 0, 1, channel="agent"), word("b", 1, 2, channel="caller")]
    segments = batch(results).segments()
    assert [(s.channel, s.text, s.label) for s in segments] == [
        ("agent", "a", "CHANNEL agent"),
        ("caller", "b", "CHANNEL caller"),
    ]


# --- the same words from either mode --------------------------------------------------------------


@pytest.mark.parametrize("cuts", [[], [1], [4, 7], [2, 3, 5, 9, 11]], ids=str)
def test_batch_and_realtime_give_the_same_transcript(cuts: list[int]) -> None:
    from_batch = batch(DIALOGUE)
    from_realtime = Transcript.from_realtime_messages(rt_session(DIALOGUE, cuts))
    assert from_realtime.words == from_batch.words
    assert from_realtime.text == from_batch.text
    assert from_realtime.to_text() == from_batch.to_text()
    assert from_realtime.segments() == from_batch.segments()
    assert from_realtime.to_srt() == from_batch.to_srt()
    assert from_realtime.to_vtt() == from_batch.to_vtt()


_contents = st.sampled_from(["alpha", "be", "c", "delta", "épée", "x" * 40])
_marks = st.sampled_from([(",", "previous"), (".", "previous"), ("(", "next"), ("-", "both")])


@st.composite
def _spoken_results(draw: st.DrawFn) -> list[Result]:
    results: list[Result] = []
    clock = 0.0
    for _ in range(draw(st.integers(0, 60))):
        clock += draw(st.sampled_from([0.0, 0.1, 0.4, 2.0]))
        speaker = draw(st.sampled_from(["S1", "S2", "UU"]))
        if draw(st.booleans()):
            length = draw(st.sampled_from([0.1, 0.3, 0.9]))
            results.append(word(draw(_contents), clock, clock + length, speaker))
            clock += length
        else:
            content, attaches = draw(_marks)
            results.append(mark(content, clock, attaches, speaker, is_eos=content == "."))
    return results


@settings(deadline=None)  # a busy CI core must not fail a correctness test
@given(results=_spoken_results(), cuts=st.lists(st.integers(0, 60), max_size=8))
def test_any_split_across_finals_gives_the_batch_transcript(
    results: list[Result], cuts: list[int]
) -> None:
    from_batch = batch(results)
    from_realtime = Transcript.from_realtime_messages(rt_session(results, cuts))
    assert from_realtime.words == from_batch.words
    assert from_realtime.text == from_batch.text
    assert from_realtime.to_srt() == from_batch.to_srt()
    assert from_realtime.to_vtt() == from_batch.to_vtt()


# --- subtitles ----------------------------------------------------------------------------------

_SRT_CUE = re.compile(
    r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n((?:.+\n)+)\n"
)


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(srt: str) -> list[tuple[float, float, list[str]]]:
    cues = []
    position = 0
    for number, match in enumerate(_SRT_CUE.finditer(srt), start=1):
        assert match.start() == position, f"garbage before cue {number}"
        assert int(match[1]) == number
        start, end = _seconds(*match.groups()[1:5]), _seconds(*match.groups()[5:9])
        cues.append((start, end, match[10].splitlines()))
        position = match.end()
    assert position == len(srt)
    return cues


def monologue(sentences: int = 12) -> list[Result]:
    vocabulary = ["the", "quick", "brown", "fox", "jumps", "over", "a", "remarkably", "lazy", "dog"]
    results: list[Result] = []
    clock = 0.0
    for sentence in range(sentences):
        for index in range(8 + sentence % 5):
            content = vocabulary[(index + sentence) % len(vocabulary)]
            results.append(word(content, round(clock, 3), round(clock + 0.3, 3), "S1"))
            clock += 0.35
            if index == 3:
                results.append(mark(",", round(clock - 0.05, 3), speaker="S1"))
        results.append(mark(".", round(clock - 0.05, 3), speaker="S1", is_eos=True))
        clock += 0.2
    return results


def test_long_monologue_makes_cues_within_limits() -> None:
    transcript = batch(monologue())
    cues = parse_srt(transcript.to_srt())
    assert len(cues) > 10
    for start, end, lines in cues:
        assert 1 <= len(lines) <= 2
        assert all(len(line) <= 37 for line in lines)
        assert 0 < end - start <= 6.0
    for (_, end, _), (next_start, _, _) in itertools.pairwise(cues):
        assert end <= next_start
    assert " ".join(" ".join(lines) for _, _, lines in cues) == transcript.text


def test_custom_layout_is_respected() -> None:
    cues = parse_srt(batch(monologue(4)).to_srt(max_line_length=20, max_lines=1, max_duration=2))
    assert all(len(lines) == 1 and len(lines[0]) <= 20 for _, _, lines in cues)
    assert all(end - start <= 2 for start, end, _ in cues)


def test_cues_break_at_sentence_ends_and_speaker_changes() -> None:
    cues = parse_srt(batch(DIALOGUE).to_srt())
    assert [lines for _, _, lines in cues] == [
        ["Hello, world."],
        ["Hi there!"],
        ["Who knows?"],
        ["Right."],
    ]


def test_srt_and_vtt_formats() -> None:
    transcript = batch([word("a<b", 3661.234, 3662.5, "S1"), word("c", 3662.6, 3662.9, "UU")])
    assert transcript.to_srt() == (
        "1\n01:01:01,234 --> 01:01:02,500\na<b\n\n2\n01:01:02,600 --> 01:01:03,400\nc\n\n"
    )
    assert transcript.to_vtt() == (
        "WEBVTT\n\n"
        "01:01:01.234 --> 01:01:02.500\n<v S1>a&lt;b\n\n"
        "01:01:02.600 --> 01:01:03.400\nc\n\n"
    )


def test_impossible_layout_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        batch(DIALOGUE).to_vtt(max_lines=0)


# --- serialisation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transcript",
    [
        batch(DIALOGUE),
        batch([]),
        Transcript.from_realtime_messages(rt_session(DIALOGUE, [3])),
        batch([word("今日", 0, 1), word("は", 1, 2)], delimiter=""),
    ],
    ids=["batch", "empty", "realtime", "japanese"],
)
def test_json_round_trip(transcript: Transcript) -> None:
    assert Transcript.model_validate_json(transcript.to_json()) == transcript


def test_transcript_is_frozen() -> None:
    transcript = batch(DIALOGUE)
    with pytest.raises(ValidationError):
        transcript.language = "de"  # type: ignore[misc]


# --- stream events -------------------------------------------------------------------------------


def test_finals_and_partials_from_messages() -> None:
    message = {**add_transcript(DIALOGUE[:4], channel="left"), "forced": True}
    message["metadata"]["transcript"] = "Hello, world."
    final = stream_event(message)
    assert isinstance(final, Final)
    assert (final.text, final.start, final.end, final.channel, final.forced) == (
        "Hello, world.",
        0.5,
        1.4,
        "left",
        True,
    )
    assert {w.channel for w in final.words} == {"left"}
    assert [w.content for w in final.words] == ["Hello", ",", "world", "."]
    partial = stream_event({**message, "message": "AddPartialTranscript"})
    assert isinstance(partial, Partial)
    assert partial.words == final.words


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            {"message": "EndOfUtterance", "metadata": {"start_time": 3.0, "end_time": 3.0}},
            EndOfUtterance(time=3.0),
        ),
        (
            {"message": "Warning", "type": "idle_timeout", "reason": "soon", "code": 1},
            ServerWarning(type="idle_timeout", reason="soon"),
        ),
        (
            {
                "message": "RecognitionStarted",
                "id": "s1",
                "language_pack_info": {"word_delimiter": ""},
            },
            SessionInfo(session_id="s1", word_delimiter=""),
        ),
        ({"message": "RecognitionStarted"}, SessionInfo(session_id=None)),
        ({"message": "AudioAdded", "seq_no": 3}, None),
        ({"message": "Error", "type": "job_error", "reason": "x"}, None),
        ({"message": "EndOfTranscript"}, None),
        ({"no": "message"}, None),
    ],
)
def test_other_messages_become_events_or_nothing(message: Result, expected: Any) -> None:
    assert stream_event(message) == expected


@pytest.mark.parametrize(
    "message",
    [
        {"message": "AddTranscript", "results": []},
        {"message": "Warning", "reason": "no type"},
        {"message": "EndOfUtterance"},
    ],
)
def test_malformed_messages_are_server_errors(message: Result) -> None:
    with pytest.raises(ServerError, match=str(message["message"])):
        stream_event(message)


@pytest.mark.parametrize(
    "event",
    [
        Final(words=(), text="", start=0, end=1, forced=True),
        Partial(words=(), text="", start=0, end=1),
        EndOfUtterance(time=2.5, channel="left"),
        ServerWarning(type="idle_timeout", reason="soon"),
        SessionInfo(session_id="abc", word_delimiter=""),
    ],
    ids=lambda event: event.kind,
)
def test_stream_events_round_trip_through_the_union(event: Any) -> None:
    adapter: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)
    assert adapter.validate_json(adapter.dump_json(event)) == event
