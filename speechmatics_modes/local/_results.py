"""Engine words shaped into the service's result JSON (batch json-v2 and real-time transcripts).

Offline engines give bare lowercase words. The service gives sentences: a capital at each
sentence start and a full stop (``attaches_to: previous``, ``is_eos: true``) at each utterance
end. Clients, our own :class:`~speechmatics_modes.Transcript` included, are written against
that shape, so the local server produces it too, with one rule: an utterance (a pause the
engine noticed) is a sentence.

An engine that punctuates (Whisper) sets :attr:`EngineWord.punctuation`; that punctuation is
sent as its own result attached to the word, as the service does, and a sentence-ending mark
(``.``, ``?``, ``!``) ends the sentence, so the pause rule only adds a full stop where the
engine left a sentence open.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from speechmatics_modes._models import UNKNOWN_SPEAKER
from speechmatics_modes.local._engine import EngineWord

__all__ = [
    "JSON_FORMAT_VERSION",
    "LANGUAGE_NAMES",
    "SENTENCE_PAUSE",
    "Labels",
    "Sentencer",
    "batch_results",
    "in_time_order",
    "labels_for",
    "language_pack_info",
    "transcript_message",
    "transcript_text",
    "transcript_txt",
]

JSON_FORMAT_VERSION = "2.9"
"""The ``format`` of the service's json-v2 documents and real-time transcripts today."""

SENTENCE_PAUSE = 0.6
"""Seconds of silence between two words of a file that end a sentence (batch has no endpointer)."""

LANGUAGE_NAMES = {"en": "English"}
"""Languages the local engines understand, with the description the service gives them."""

_SENTENCE_ENDS = frozenset({".", "?", "!"})


def language_pack_info(language: str) -> dict[str, Any]:
    """The ``language_pack_info`` object of ``RecognitionStarted`` and json-v2 metadata."""
    return {
        "adapted": False,
        "itn": False,
        "language_description": LANGUAGE_NAMES.get(language, language),
        "word_delimiter": " ",
        "writing_direction": "left-to-right",
    }


@dataclass(frozen=True, slots=True)
class Labels:
    """What every result carries besides its content."""

    language: str
    speaker: str | None
    """The alternatives' ``speaker``; ``None`` leaves the field out."""
    channel: str | None = None
    """The result's ``channel`` (multichannel sessions, channel diarization)."""


@dataclass
class Sentencer:
    """Turns a stream of engine words into results, remembering where sentences start.

    One per real-time session (or per batch file): the state is whether the next word opens
    a sentence and so takes a capital, and whether the last word carried a mark of its own.
    """

    labels: Labels
    at_sentence_start: bool = True
    after_mark: bool = False
    """The last final word carried the engine's own punctuation mark."""

    def words(self, words: Iterable[EngineWord]) -> list[dict[str, Any]]:
        """Results for final words (and their punctuation), continuing the current sentence."""
        words = list(words)
        results, self.at_sentence_start = self._shape(words, self.at_sentence_start)
        if words:
            self.after_mark = bool(words[-1].punctuation)
        return results

    def end_sentence(self, at: float) -> list[dict[str, Any]]:
        """The full stop that ends the current sentence at a pause (``at`` seconds), if any.

        None where no sentence is open, or where the engine ended the last word with a mark of
        its own: that mark stands (a comma, not ",.").
        """
        if self.at_sentence_start or self.after_mark:
            return []
        self.at_sentence_start = True
        return [self._punctuation(".", at, is_eos=True)]

    def preview(self, words: Iterable[EngineWord]) -> list[dict[str, Any]]:
        """Results for partial words: shaped the same, but the sentence state is untouched."""
        results, _ = self._shape(words, self.at_sentence_start)
        return results

    def _shape(
        self, words: Iterable[EngineWord], sentence_start: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """Results for ``words`` from a given sentence state, and the state after them."""
        results = []
        for word in words:
            content = _capitalised(word.text) if sentence_start else _cased(word.text)
            results.append(
                _result("word", word.start, word.end, content, word.confidence, self.labels)
            )
            sentence_start = False
            if word.punctuation:
                sentence_start = word.punctuation in _SENTENCE_ENDS
                results.append(self._punctuation(word.punctuation, word.end, sentence_start))
        return results, sentence_start

    def _punctuation(self, mark: str, at: float, is_eos: bool) -> dict[str, Any]:
        return _result("punctuation", at, at, mark, 1.0, self.labels) | {
            "attaches_to": "previous",
            "is_eos": is_eos,
        }


def labels_for(
    transcription_config: Mapping[str, Any], *, realtime: bool = False, channel: str | None = None
) -> Labels:
    """The language, speaker and channel labels every result of a session or job carries.

    There is no diarizer: with speaker diarization on, everything is said by ``S1``. Without
    it the service labels batch words ``UU`` and gives real-time words no speaker at all.
    """
    diarized = transcription_config.get("diarization") in {"speaker", "channel_and_speaker"}
    undiarized = None if realtime else UNKNOWN_SPEAKER
    return Labels(str(transcription_config["language"]), "S1" if diarized else undiarized, channel)


def batch_results(words: Sequence[EngineWord], labels: Labels) -> list[dict[str, Any]]:
    """All results of a file: a sentence ends wherever the speaker paused for long enough.

    Where the engine punctuated the word before the pause, its mark stands instead.
    """
    sentencer = Sentencer(labels)
    results: list[dict[str, Any]] = []
    for index, word in enumerate(words):
        results.extend(sentencer.words([word]))
        following = words[index + 1] if index + 1 < len(words) else None
        if following is None or following.start - word.end >= SENTENCE_PAUSE:
            results.extend(sentencer.end_sentence(word.end))
    return results


def in_time_order(channels: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The results of several channels as one list ordered by time, as the service sends them.

    A punctuation mark stays right after the word it follows in its own channel.
    """
    if len(channels) == 1:
        return list(channels[0])
    units: list[list[dict[str, Any]]] = []
    for results in channels:
        own: list[list[dict[str, Any]]] = []
        for result in results:
            if result["type"] == "punctuation" and own:
                own[-1].append(result)
            else:
                own.append([result])
        units.extend(own)
    units.sort(key=lambda unit: unit[0]["start_time"])
    return [result for unit in units for result in unit]


def transcript_message(
    kind: str, results: list[dict[str, Any]], *, start: float, end: float, forced: bool = False
) -> dict[str, Any]:
    """An ``AddTranscript`` or ``AddPartialTranscript`` message around ``results``."""
    message: dict[str, Any] = {
        "message": kind,
        "format": JSON_FORMAT_VERSION,
        "metadata": {
            "start_time": _seconds(start),
            "end_time": _seconds(end),
            "transcript": transcript_text(results),
        },
        "results": results,
    }
    if forced:
        message["forced"] = True
    return message


def transcript_text(results: Iterable[Mapping[str, Any]]) -> str:
    """The text of some results, punctuation attached to the word before it."""
    text = ""
    for result in results:
        content = result["alternatives"][0]["content"]
        joined = result.get("attaches_to") in {"previous", "both"} or not text
        text += content if joined else f" {content}"
    return text


def transcript_txt(results: Sequence[Mapping[str, Any]]) -> str:
    """The batch ``txt`` format: turns of a known speaker or channel under a label line.

    This is the service's form (a line ``SPEAKER: S1``, then the turn's text; turns apart by a
    blank line);
    words of an unknown speaker (``UU``) on no channel are plain text.
    """
    turns: list[tuple[tuple[str, ...], list[Mapping[str, Any]]]] = []
    for result in results:
        label = _turn_label(result)
        if turns and (result["type"] == "punctuation" or turns[-1][0] == label):
            turns[-1][1].append(result)
        else:
            turns.append((label, [result]))
    return "\n\n".join(
        "".join(f"{line}\n" for line in label) + transcript_text(words) for label, words in turns
    )


def _turn_label(result: Mapping[str, Any]) -> tuple[str, ...]:
    label = []
    if "channel" in result:
        label.append(f"CHANNEL: {result['channel']}")
    speaker = result["alternatives"][0].get("speaker")
    if speaker not in {None, UNKNOWN_SPEAKER}:
        label.append(f"SPEAKER: {speaker}")
    return tuple(label)


def _result(
    kind: str, start: float, end: float, content: str, confidence: float, labels: Labels
) -> dict[str, Any]:
    alternative: dict[str, Any] = {
        "content": content,
        "confidence": round(confidence, 3),
        "language": labels.language,
    }
    if labels.speaker is not None:
        alternative["speaker"] = labels.speaker
    result: dict[str, Any] = {
        "type": kind,
        "start_time": _seconds(start),
        "end_time": _seconds(end),
        "alternatives": [alternative],
    }
    if labels.channel is not None:
        result["channel"] = labels.channel
    return result


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _cased(text: str) -> str:
    return "I" if text == "i" else text


def _seconds(value: float) -> float:
    return round(value, 3)
