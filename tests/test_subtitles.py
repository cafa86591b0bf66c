from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechmatics_modes import ConfigurationError
from speechmatics_modes._subtitles import (
    SILENCE_BREAK,
    Cue,
    CueLayout,
    Unit,
    build_cues,
    render_srt,
    render_vtt,
)

S1 = ("S1", None)
S2 = ("S2", None)


def unit(
    text: str,
    start: float,
    end: float,
    voice: tuple[str | None, str | None] = S1,
    *,
    ends_sentence: bool = False,
) -> Unit:
    return Unit(text, start, end, voice, voice[0], ends_sentence)


def texts(cues: list[Cue]) -> list[tuple[str, ...]]:
    return [cue.lines for cue in cues]


def test_lines_fill_greedily_up_to_the_limit() -> None:
    units = [unit(text, i, i + 0.5) for i, text in enumerate(["aaaa", "bbb", "cc", "dddd"])]
    cues = build_cues(units, " ", CueLayout(max_line_length=8, max_lines=2))
    assert texts(cues) == [("aaaa bbb", "cc dddd")]


def test_a_full_cue_starts_the_next() -> None:
    units = [unit(text, i * 0.5, i * 0.5 + 0.4) for i, text in enumerate("abcde")]
    cues = build_cues(units, " ", CueLayout(max_line_length=3, max_lines=1))
    assert texts(cues) == [("a b",), ("c d",), ("e",)]


def test_a_unit_longer_than_a_line_keeps_a_line_of_its_own() -> None:
    units = [unit("hi", 0, 0.5), unit("incomprehensibilities", 0.5, 1.5), unit("ok", 1.5, 2)]
    cues = build_cues(units, " ", CueLayout(max_line_length=10, max_lines=2))
    assert texts(cues) == [("hi", "incomprehensibilities"), ("ok",)]


def test_empty_delimiter_packs_units_without_spaces() -> None:
    units = [unit(text, i, i + 0.5) for i, text in enumerate(["今日", "は", "晴れ"])]
    cues = build_cues(units, "", CueLayout(max_line_length=3))
    assert texts(cues) == [("今日は", "晴れ")]


def test_sentence_end_speaker_change_and_silence_start_new_cues() -> None:
    units = [
        unit("One.", 0, 0.5, ends_sentence=True),
        unit("Two", 0.6, 1.0),
        unit("three", 1.1, 1.5, S2),
        unit("four", 1.6 + SILENCE_BREAK, 2.0 + SILENCE_BREAK, S2),
    ]
    cues = build_cues(units, " ", CueLayout())
    assert texts(cues) == [("One.",), ("Two",), ("three",), ("four",)]


def test_max_duration_starts_a_new_cue() -> None:
    units = [unit(str(i), i, i + 0.9) for i in range(10)]
    cues = build_cues(units, " ", CueLayout(max_duration=3))
    assert texts(cues) == [("0 1 2",), ("3 4 5",), ("6 7 8",), ("9",)]


def test_short_cues_are_held_but_never_overlap_the_next() -> None:
    units = [
        unit("a.", 0.0, 0.2, ends_sentence=True),
        unit("b.", 0.5, 0.6, ends_sentence=True),
        unit("c.", 5.0, 5.1, ends_sentence=True),
    ]
    cues = build_cues(units, " ", CueLayout(min_duration=0.8))
    assert [(cue.start, cue.end) for cue in cues] == [(0.0, 0.5), (0.5, 1.3), (5.0, 5.8)]


@pytest.mark.parametrize(
    "limits",
    [
        {"max_line_length": 0},
        {"max_lines": 0},
        {"max_duration": 0, "min_duration": 0},
        {"min_duration": -1},
        {"min_duration": 7, "max_duration": 6},
    ],
)
def test_impossible_layouts_are_rejected(limits: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        CueLayout(**limits)  # type: ignore[arg-type]


def test_srt_rendering() -> None:
    cues = [Cue(0.0, 1.5, ("Hello,", "world."), "S1"), Cue(59.9999, 3600.001, ("Bye.",), None)]
    assert render_srt(cues) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello,\nworld.\n\n"
        "2\n00:01:00,000 --> 01:00:00,001\nBye.\n\n"
    )


def test_vtt_rendering_escapes_markup_and_names_voices() -> None:
    cues = [Cue(1.0, 2.0, ("Tom & <Jerry>",), "S<1>"), Cue(2.0, 3.25, ("plain",), None)]
    assert render_vtt(cues) == (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.000\n<v S&lt;1&gt;>Tom &amp; &lt;Jerry&gt;\n\n"
        "00:00:02.000 --> 00:00:03.250\nplain\n\n"
    )


@st.composite
def _timelines(draw: st.DrawFn) -> list[Unit]:
    units: list[Unit] = []
    clock = 0.0
    for _ in range(draw(st.integers(0, 80))):
        clock += draw(st.sampled_from([0.0, 0.05, 0.3, 2.0]))
        length = draw(st.sampled_from([0.0, 0.2, 0.6, 7.0]))
        text = draw(st.sampled_from(["a", "word", "longer,", "punctuated.", "x" * 45]))
        voice = draw(st.sampled_from([S1, S2, ("UU", "left")]))
        units.append(unit(text, clock, clock + length, voice, ends_sentence=text.endswith(".")))
        clock += length
    return units


@settings(deadline=None)  # a busy CI core must not fail a correctness test
@given(
    units=_timelines(),
    max_line_length=st.integers(5, 42),
    max_lines=st.integers(1, 3),
    max_duration=st.sampled_from([2.0, 6.0]),
)
def test_cues_keep_every_unit_in_order_within_the_limits(
    units: list[Unit], max_line_length: int, max_lines: int, max_duration: float
) -> None:
    layout = CueLayout(max_line_length, max_lines, max_duration, min_duration=0.8)
    cues = build_cues(units, " ", layout)

    assert " ".join(" ".join(cue.lines) for cue in cues) == " ".join(u.text for u in units)
    remaining = iter(units)
    for cue in cues:
        held = [next(remaining) for line in cue.lines for _ in line.split(" ")]
        assert len({u.voice for u in held}) == 1
        assert len(cue.lines) <= max_lines
        assert all(len(line) <= max_line_length or " " not in line for line in cue.lines)
        longest_unit = max(u.end - u.start for u in held)
        assert cue.start <= cue.end <= cue.start + max(max_duration, longest_unit)
    for cue, following in itertools.pairwise(cues):
        assert cue.end <= following.start
