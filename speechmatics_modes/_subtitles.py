"""Subtitle cues built from timed words, rendered as SubRip (SRT) or WebVTT.

Cue building works on :class:`Unit` values rather than on words: a unit is a word together with
the punctuation attached to it ("world." or "(see"), so a line break can never separate a word
from its comma. Units carry only what layout needs, which keeps this module free of the
transcript model (``_models.py`` builds the units and calls in here).

The rules, in the order they are applied to each next unit:

* a change of voice (speaker or channel) always starts a new cue;
* a cue never lasts longer than ``max_duration`` and never spans a silence longer than
  :data:`SILENCE_BREAK` seconds, so text is not shown over long pauses;
* a cue holds at most ``max_lines`` lines of at most ``max_line_length`` characters, filled
  greedily (a single unit longer than a line gets a line of its own rather than being cut);
* a sentence end (``is_eos`` punctuation) closes the cue it is in.

Then every cue is held for at least ``min_duration`` seconds where the next cue leaves room, and
cues never overlap. The defaults (37 characters, 2 lines) are the batch service's own
``srt_overrides`` defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from speechmatics_modes._exceptions import ConfigurationError

__all__ = [
    "DEFAULT_MAX_DURATION",
    "DEFAULT_MAX_LINES",
    "DEFAULT_MAX_LINE_LENGTH",
    "DEFAULT_MIN_DURATION",
    "SILENCE_BREAK",
    "Cue",
    "CueLayout",
    "Unit",
    "build_cues",
    "render_srt",
    "render_vtt",
]

DEFAULT_MAX_LINE_LENGTH = 37
"""Characters per line; the batch service's ``srt_overrides.max_line_length`` default."""
DEFAULT_MAX_LINES = 2
"""Lines per cue; the batch service's ``srt_overrides.max_lines`` default."""
DEFAULT_MAX_DURATION = 6.0
"""Seconds a cue may stay on screen: longer cues are hard to follow against the audio."""
DEFAULT_MIN_DURATION = 0.8
"""Seconds a cue is held at least (when the next cue allows), so short words can be read."""
SILENCE_BREAK = 1.5
"""A pause longer than this (seconds) between two units starts a new cue."""


@dataclass(frozen=True)
class Unit:
    """The smallest piece of text a subtitle line can hold: a word with its punctuation."""

    text: str
    start: float
    end: float
    voice: tuple[str | None, str | None]
    """(speaker, channel): a change of either starts a new cue."""
    label: str | None
    """The speaker name to show (a WebVTT voice), or ``None`` when the speaker is unknown."""
    ends_sentence: bool


@dataclass(frozen=True)
class CueLayout:
    """Limits a cue is built within; checked on creation so bad values fail before any work."""

    max_line_length: int = DEFAULT_MAX_LINE_LENGTH
    max_lines: int = DEFAULT_MAX_LINES
    max_duration: float = DEFAULT_MAX_DURATION
    min_duration: float = DEFAULT_MIN_DURATION

    def __post_init__(self) -> None:
        if self.max_line_length < 1 or self.max_lines < 1:
            raise ConfigurationError("max_line_length and max_lines must be at least 1")
        if not 0 <= self.min_duration <= self.max_duration or self.max_duration <= 0:
            raise ConfigurationError(
                "durations must satisfy 0 <= min_duration <= max_duration and max_duration > 0"
            )


@dataclass(frozen=True)
class Cue:
    """One subtitle: the lines shown from ``start`` to ``end`` (seconds)."""

    start: float
    end: float
    lines: tuple[str, ...]
    label: str | None


def build_cues(units: Sequence[Unit], word_delimiter: str, layout: CueLayout) -> list[Cue]:
    """Group units into cues following the rules in the module docstring.

    Args:
        units: The transcript's units in time order.
        word_delimiter: What separates two units on a line (``" "``, or ``""`` for Japanese).
        layout: The limits to respect.

    Returns:
        The cues in time order, none overlapping the next.
    """
    groups: list[list[Unit]] = []
    for unit in units:
        current = groups[-1] if groups else None
        if current is None or _must_break(current, unit, word_delimiter, layout):
            groups.append([unit])
        else:
            current.append(unit)
        if unit.ends_sentence:
            groups.append([])
    cues = [_cue_of(group, word_delimiter, layout) for group in groups if group]
    return _hold_and_separate(cues, layout.min_duration)


def _must_break(current: list[Unit], unit: Unit, word_delimiter: str, layout: CueLayout) -> bool:
    if not current:
        return False
    last = current[-1]
    if unit.voice != last.voice:
        return True
    if unit.start - last.end > SILENCE_BREAK:
        return True
    if unit.end - current[0].start > layout.max_duration:
        return True
    lines = _wrap([*current, unit], word_delimiter, layout.max_line_length)
    return len(lines) > layout.max_lines


def _wrap(units: Sequence[Unit], word_delimiter: str, width: int) -> list[str]:
    """Fill lines greedily; a unit wider than a line gets a line of its own."""
    lines: list[str] = []
    for unit in units:
        candidate = f"{lines[-1]}{word_delimiter}{unit.text}" if lines else unit.text
        if lines and len(candidate) <= width:
            lines[-1] = candidate
        else:
            lines.append(unit.text)
    return lines


def _cue_of(group: list[Unit], word_delimiter: str, layout: CueLayout) -> Cue:
    lines = _wrap(group, word_delimiter, layout.max_line_length)
    return Cue(group[0].start, group[-1].end, tuple(lines), group[0].label)


def _hold_and_separate(cues: list[Cue], min_duration: float) -> list[Cue]:
    """Stretch short cues to ``min_duration`` and clip any cue that would overlap the next."""
    adjusted: list[Cue] = []
    for index, cue in enumerate(cues):
        end = max(cue.end, cue.start + min_duration)
        if index + 1 < len(cues):
            end = min(end, cues[index + 1].start)
        adjusted.append(Cue(cue.start, max(end, cue.start), cue.lines, cue.label))
    return adjusted


def render_srt(cues: Sequence[Cue]) -> str:
    """Render cues as SubRip: numbered blocks, ``00:00:01,234 --> 00:00:02,000`` timings."""
    blocks = [
        f"{number}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n"
        + "\n".join(cue.lines)
        for number, cue in enumerate(cues, start=1)
    ]
    return "".join(f"{block}\n\n" for block in blocks)


def render_vtt(cues: Sequence[Cue]) -> str:
    """Render cues as WebVTT, with a ``<v S1>`` voice span where the speaker is known.

    Cue text is escaped (``&``, ``<``, ``>``) because WebVTT reads it as markup.
    """
    blocks = [
        f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n" + _vtt_text(cue)
        for cue in cues
    ]
    return "WEBVTT\n\n" + "".join(f"{block}\n\n" for block in blocks)


def _vtt_text(cue: Cue) -> str:
    text = "\n".join(_vtt_escape(line) for line in cue.lines)
    if cue.label is None:
        return text
    return f"<v {_vtt_escape(cue.label)}>{text}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _timestamp(seconds: float, millisecond_separator: str) -> str:
    """Format as ``HH:MM:SS<sep>mmm``, rounding to the millisecond (SRT ``,``, WebVTT ``.``)."""
    total_ms = max(0, round(seconds * 1000))
    total_seconds, millis = divmod(total_ms, 1000)
    minutes, secs = divmod(total_seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{millisecond_separator}{millis:03d}"
