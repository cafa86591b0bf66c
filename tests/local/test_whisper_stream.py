"""Real-time Whisper's policy, without the model: utterances, commits, finals, the queue.

A fake speech detector calls loud frames speech and a fake decoder "hears" scripted words in
whatever window it is given (a word cut by the window's end comes out truncated and misheard,
as Whisper's does), so the guarantees are checked exactly and fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt
import pytest

from speechmatics_modes.local import EngineWord
from speechmatics_modes.local._speech_detector import FRAME_SAMPLES, SpeechDetector
from speechmatics_modes.local._whisper_stream import (
    EDGE_SECONDS,
    ENTITY_SECONDS,
    FLUSH_CONTEXT_SECONDS,
    FLUSH_SECONDS,
    JOIN_GAP_SECONDS,
    LOOKAHEAD_SECONDS,
    MIN_INTERIM_STEP,
    PARTIAL_INTERVAL,
    PAUSE_SECONDS,
    REACH_SECONDS,
    SHORTEST_PAUSE_SECONDS,
    Decoder,
    Look,
    WhisperStream,
    after_committed,
    due_finals,
    numbers_heard_whole,
)

RATE = 16_000
CHUNK = 1_600  # 100 ms


def word(text: str, start: float, end: float) -> EngineWord:
    return EngineWord(text, start, end, 0.9)


def loud_frames(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    frames = audio.reshape(-1, FRAME_SAMPLES)
    return (np.abs(frames).max(axis=1) > 0.1).astype(np.float32)


def speech_audio(
    spans: list[tuple[float, float]], seconds: float, *, quiet: Sequence[tuple[float, float]] = ()
) -> bytes:
    """Loud "speech" in ``spans``; ``quiet`` spans (under them) hold a breath, 38 dB below."""
    samples = np.zeros(int(seconds * RATE), dtype="<i2")
    for level, where in ((100, quiet), (8000, spans)):
        for start, end in where:
            samples[int(start * RATE) : int(end * RATE)] = level
    return samples.tobytes()


def sound_frames(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A detector that, like Silero now and then, calls a breath speech."""
    frames = audio.reshape(-1, FRAME_SAMPLES)
    return (np.abs(frames).max(axis=1) > 0.001).astype(np.float32)


@dataclass
class ScriptedDecoder:
    """Hears the scripted words inside the window; a word the window cuts is misheard."""

    words: list[EngineWord]
    calls: list[tuple[float, float, bool]] = field(default_factory=list)
    quick: list[bool] = field(default_factory=list)
    """Per call: was it a forced end's quick decode?"""
    clock: list[float] | None = None
    """The run's fake clock, moved on by ``seconds`` per decode (as a busy machine's would)."""
    seconds: float = 0.0

    async def __call__(
        self,
        audio: npt.NDArray[np.float32],
        offset: float,
        *,
        final: bool,
        deadline: float,
        optional: bool,
        idle: bool = False,
        quick: bool = False,
        late: Callable[[list[EngineWord]], None] | None = None,
    ) -> list[EngineWord] | None:
        """Never dropped (the queue's part: see the tests that drop decodes), so no ``late``."""
        end = offset + len(audio) / RATE
        self.calls.append((offset, end, final))
        self.quick.append(quick)
        if self.clock is not None:
            self.clock[0] += self.seconds
        heard = []
        for scripted in self.words:
            if scripted.start >= offset - 0.05 and scripted.end <= end:
                heard.append(scripted)
            elif scripted.start < end < scripted.end:
                heard.append(word(scripted.text[:2] + "?", scripted.start, end))
        return heard


@dataclass
class PacedRun:
    """Feeds audio in 100 ms chunks at real time on a fake clock; records when finals came."""

    stream: WhisperStream
    clock: list[float]
    finals: list[tuple[EngineWord, float]] = field(default_factory=list)

    async def feed(self, pcm: bytes) -> None:
        for offset in range(0, len(pcm), CHUNK * 2):
            arrived = (offset + CHUNK * 2) / (2 * RATE) + self._base
            self.clock[0] = max(self.clock[0], arrived)  # read late while a decode ran
            update = await self.stream.feed(pcm[offset : offset + CHUNK * 2])
            self.finals.extend((w, self.clock[0]) for w in update.finals)
        self._base += len(pcm) / (2 * RATE)

    async def flush(self, *, forced: bool = False) -> None:
        end = self.stream.force_end_of_utterance if forced else self.stream.flush
        self.finals.extend((w, self.clock[0]) for w in (await end()).finals)

    _base: float = 0.0


def paced(
    decoder: ScriptedDecoder,
    *,
    max_delay: float,
    partials: bool,
    through: Decoder | None = None,
    hears: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]] = loud_frames,
    lookahead: float = LOOKAHEAD_SECONDS,
) -> PacedRun:
    """A paced run of ``decoder`` (or of ``through``, a decoder wrapping it), its detector
    calling speech what ``hears`` does; ``lookahead`` 0: closes are never held for what
    follows (for the tests of when an utterance closes)."""
    clock = [0.0]
    decoder.clock = clock
    stream = WhisperStream(
        through or decoder,
        max_delay=max_delay,
        partials=partials,
        detector=SpeechDetector(hears, pause=PAUSE_SECONDS),
        clock=lambda: clock[0],
        lookahead=lookahead,
    )
    return PacedRun(stream, clock)


def assert_final_once_and_in_order(finals: list[EngineWord]) -> None:
    for earlier, later in pairwise(finals):
        assert later.start >= earlier.end, f"{later} starts before {earlier} ended"


@pytest.mark.anyio
async def test_an_utterance_is_decoded_once_whole_when_the_speaker_pauses() -> None:
    script = [word("the", 0.5, 0.9), word("cat", 1.0, 1.5), word("sat", 1.6, 2.0)]
    decoder = ScriptedDecoder(script)
    run = paced(decoder, max_delay=4.0, partials=False, lookahead=0)
    await run.feed(speech_audio([(0.5, 2.0)], 3.0))
    assert [w for w, _ in run.finals] == script
    assert [final for _, _, final in decoder.calls] == [True]
    for _, at in run.finals:  # at the pause, not max_delay later
        assert at <= 2.0 + PAUSE_SECONDS + 0.2


@pytest.mark.anyio
async def test_a_pause_whisper_hears_before_the_detector_does_closes_the_utterance_early() -> None:
    """The last word ends at 2.0 s but the detector hears speech (a breath) until 2.4 s:
    the utterance closes once Whisper's own pause is long enough, not 0.4 s after the breath."""
    script = [word("the", 0.5, 0.9), word("cat", 1.0, 2.0)]
    decoder = ScriptedDecoder(script)
    run = paced(decoder, max_delay=4.0, partials=False, lookahead=0)
    await run.feed(speech_audio([(0.5, 2.4)], 4.0))
    assert [w for w, _ in run.finals] == script
    assert [final for _, _, final in decoder.calls].count(True) == 1
    for _, at in run.finals:
        assert at <= 2.4 + PAUSE_SECONDS / 2 + 0.15  # a frame and a chunk after the early decode
    assert 2.4 + PAUSE_SECONDS / 2 + 0.15 < 2.4 + PAUSE_SECONDS


@pytest.mark.anyio
async def test_a_pause_decoded_early_closes_once_whisper_s_pause_is_long_enough() -> None:
    """The detector hears a short breath after the last word (2.03 s to 2.12 s), so the pause
    is decoded at about 2.4 s, when Whisper's pause is still short. The utterance closes when
    Whisper's pause reaches PAUSE_SECONDS (2.43 s), not when the detector's does (2.52 s)."""
    script = [word("the", 0.5, 0.9), word("cat", 1.0, 2.03)]
    decoder = ScriptedDecoder(script)
    run = paced(decoder, max_delay=4.0, partials=False, lookahead=0)
    await run.feed(speech_audio([(0.5, 2.12)], 4.0))
    assert [w for w, _ in run.finals] == script
    assert [final for _, _, final in decoder.calls].count(True) == 1
    for _, at in run.finals:
        assert at <= 2.03 + PAUSE_SECONDS + 0.1  # the next chunk


@pytest.mark.anyio
async def test_a_short_pause_does_not_split_the_utterance() -> None:
    script = [word("the", 0.5, 1.0), word("cat", 1.1, 2.0), word("sat", 2.3, 3.0)]
    decoder = ScriptedDecoder(script)
    run = paced(decoder, max_delay=4.0, partials=False, lookahead=0)
    await run.feed(speech_audio([(0.5, 2.0), (2.3, 3.0)], 4.0))
    assert [w for w, _ in run.finals] == script
    assert {at for _, at in run.finals} == {run.finals[-1][1]}, "one utterance, one commit"
    final_windows = [(start, end) for start, end, final in decoder.calls if final]
    assert final_windows[-1][0] < 0.5 < 3.0 < final_windows[-1][1]


def commits(run: PacedRun) -> list[list[str]]:
    """The run's finals, grouped by the moment they became final."""
    groups: dict[float, list[str]] = {}
    for final, at in run.finals:
        groups.setdefault(at, []).append(final.text)
    return list(groups.values())


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        (0.0, [["the", "cat", "sat"]]),
        (1.0, [["the", "cat", "sat"]]),
        (0.25, [["the", "cat"], ["sat"]]),
        (0.05, [["the", "cat"], ["sat"]]),  # a 0.1 s gap is no pause: SHORTEST_PAUSE_SECONDS
    ],
)
async def test_a_short_end_of_utterance_trigger_ends_utterances_at_pauses_that_short(
    trigger: float, expected: list[list[str]]
) -> None:
    """EndOfUtterance follows the close of an utterance: a session asking for it 0.25 s
    after speech has its utterance end at a 0.3 s pause, which otherwise does not split it;
    the 0.1 s gap between "the" and "cat" never does."""
    script = [word("the", 0.5, 1.0), word("cat", 1.1, 2.0), word("sat", 2.3, 3.0)]
    run = paced(ScriptedDecoder(script), max_delay=4.0, partials=False, lookahead=0)
    run.stream.end_utterances_after(trigger)
    await run.feed(speech_audio([(0.5, 1.0), (1.1, 2.0), (2.3, 3.0)], 4.0))
    assert commits(run) == expected
    assert 0.1 < SHORTEST_PAUSE_SECONDS < 0.3 < PAUSE_SECONDS


@pytest.mark.anyio
@pytest.mark.parametrize("trigger", [0.0, 0.25, 0.5])
async def test_only_a_session_waiting_for_the_turn_decodes_its_pause_quickly(
    trigger: float,
) -> None:
    """The decode at a pause makes the utterance's words final and, in a session that asks for
    EndOfUtterance, the client waits for it: there it is greedy with an interim's padding
    (quick), elsewhere it has batch's options."""
    decoder = ScriptedDecoder([word("the", 0.5, 1.0), word("cat", 1.1, 2.0)])
    run = paced(decoder, max_delay=4.0, partials=False, lookahead=0)
    run.stream.end_utterances_after(trigger)
    await run.feed(speech_audio([(0.5, 1.0), (1.1, 2.0)], 3.0))
    assert commits(run) == [["the", "cat"]]
    closing = [
        quick for (*_, final), quick in zip(decoder.calls, decoder.quick, strict=True) if final
    ]
    assert closing == [trigger > 0]


@pytest.mark.anyio
async def test_two_utterances_fed_at_once_end_one_at_a_time() -> None:
    """The server feeds what came while a decode ran in one go: two turns in it get a final
    decode and an end each (so each its EndOfUtterance), the second at the next feed."""
    script = [word("yes", 0.3, 0.6), word("no", 0.9, 1.2)]
    run = paced(ScriptedDecoder(script), max_delay=4.0, partials=False)
    run.stream.end_utterances_after(0.25)
    audio = speech_audio([(0.3, 0.6), (0.9, 1.2)], 2.0)
    first = await run.stream.feed(audio)
    second = await run.stream.feed(speech_audio([], 0.1))
    assert [(w.text, first.utterance_ended) for w in first.finals] == [("yes", True)]
    assert [(w.text, second.utterance_ended) for w in second.finals] == [("no", True)]
    assert not (await run.stream.flush()).finals


@pytest.mark.anyio
async def test_a_flush_hears_all_the_audio_fed_even_past_an_utterance_s_end() -> None:
    """Audio fed after a pause ended an utterance waits for the next feed; a flush that comes
    first hears it, and makes its words final."""
    script = [word("yes", 0.3, 0.6), word("no", 0.9, 1.2)]
    run = paced(ScriptedDecoder(script), max_delay=4.0, partials=False)
    run.stream.end_utterances_after(0.25)
    first = await run.stream.feed(speech_audio([(0.3, 0.6), (0.9, 1.2)], 1.3))
    assert [w.text for w in first.finals] == ["yes"]
    assert [w.text for w in (await run.stream.flush()).finals] == ["no"]


@pytest.mark.anyio
async def test_a_breath_in_audio_fed_at_once_still_ends_a_quick_turn() -> None:
    """A quiet stretch the detector calls speech ends a quick turn only if it is checked while
    it lasts: audio fed in one go is heard a piece at a time, so it still does."""
    script = [word("the", 0.5, 1.0), word("cat", 1.1, 2.0), word("sat", 2.9, 3.4)]
    run = paced(ScriptedDecoder(script), max_delay=4.0, partials=False, hears=sound_frames)
    run.stream.end_utterances_after(0.25)
    audio = speech_audio([(0.5, 2.0), (2.9, 3.4)], 4.5, quiet=[(2.0, 2.9)])
    first = await run.stream.feed(audio)
    second = await run.stream.feed(speech_audio([], 0.1))
    assert [w.text for w in first.finals] == ["the", "cat"]
    assert first.utterance_ended
    assert [w.text for w in second.finals] == ["sat"]
    assert second.utterance_ended


@pytest.mark.anyio
@pytest.mark.parametrize("trigger", [0.0, 0.25, 0.5])
async def test_a_turn_ends_in_a_breath_the_detector_calls_speech(trigger: float) -> None:
    """The detector hears speech until 2.8 s, but from 2.0 s it is a breath, 38 dB below the
    words. A session asking for EndOfUtterance has the utterance end soon after a trigger
    past Whisper's last word (at most the engine's own pause: EndOfUtterance itself waits for
    the trigger), and the rest of the breath is never decoded; for others it ends after it."""
    script = [word("the", 0.5, 1.0), word("cat", 1.1, 2.0)]
    decoder = ScriptedDecoder(script)
    run = paced(decoder, max_delay=4.0, partials=False, lookahead=0, hears=sound_frames)
    run.stream.end_utterances_after(trigger)
    await run.feed(speech_audio([(0.5, 2.0)], 4.0, quiet=[(2.0, 2.8)]))
    assert [w for w, _ in run.finals] == script
    assert [final for _, _, final in decoder.calls].count(True) == 1
    closed = run.finals[-1][1]
    if trigger:
        assert closed <= 2.0 + min(trigger, PAUSE_SECONDS) + 0.1  # the next chunk
        assert all(end < closed for _, end, _ in decoder.calls)
    else:
        assert closed >= 2.8


@pytest.mark.anyio
@pytest.mark.parametrize("speech_end", [1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6])
async def test_a_session_waiting_for_the_turn_starts_no_partial_in_a_pause(
    speech_end: float,
) -> None:
    """Decodes take 0.3 s here. A partial's decode started as the speaker pauses would hold
    up the pause's decode, which EndOfUtterance waits for: wherever the pause falls in the
    rhythm of the partials, none is started in it."""
    decoder = ScriptedDecoder([word("the", 0.5, 1.0), word("cat", 1.1, speech_end)])
    decoder.seconds = 0.3
    run = paced(decoder, max_delay=4.0, partials=True, lookahead=0)
    run.stream.end_utterances_after(0.25)
    await run.feed(speech_audio([(0.5, speech_end)], speech_end + 1.0))
    assert commits(run) == [["the", "cat"]]
    interims = [end for _, end, final in decoder.calls if not final]
    assert interims
    assert all(end <= speech_end + 1e-6 for end in interims)


@pytest.mark.anyio
async def test_a_click_in_soft_speech_does_not_make_the_speech_quiet() -> None:
    """Soft speech with a 20 ms click 38 dB above it, in a session asking for quick turns: the
    click is no measure of the speaker's level, so no word is taken for a breath and lost."""
    script = [word("the", 0.5, 1.0), word("cat", 1.1, 2.0), word("sat", 2.1, 3.0)]
    decoder = ScriptedDecoder(script)
    run = paced(decoder, max_delay=4.0, partials=False, hears=sound_frames)
    run.stream.end_utterances_after(0.25)
    await run.feed(speech_audio([(1.0, 1.02)], 4.0, quiet=[(0.5, 3.0)]))
    assert commits(run) == [["the", "cat", "sat"]]


@pytest.mark.anyio
async def test_switching_the_trigger_off_mid_stream_restores_the_engine_s_own_pause() -> None:
    script = [word("the", 0.5, 1.0), word("cat", 1.3, 2.0), word("sat", 2.3, 3.0)]
    run = paced(ScriptedDecoder(script), max_delay=4.0, partials=False, lookahead=0)
    run.stream.end_utterances_after(0.25)
    await run.feed(speech_audio([(0.5, 1.0), (1.3, 2.0)], 2.2))
    run.stream.end_utterances_after(0.0)
    await run.feed(speech_audio([(0.1, 0.8)], 1.8))
    assert commits(run) == [["the"], ["cat", "sat"]]


SENTENCES = [
    word("the", 0.5, 0.9),
    word("cat", 1.0, 2.0),
    word("sat", 2.8, 3.3),
    word("down", 3.4, 4.5),
]
"""Two utterances: a 0.8 s pause between "cat" and "sat"."""


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("max_delay", "trigger", "held"), [(6.0, 0.0, True), (6.0, 1.0, False), (0.8, 0.0, False)]
)
async def test_a_closed_utterance_is_decoded_on_into_what_follows_while_max_delay_allows(
    max_delay: float, trigger: float, held: bool
) -> None:
    """Decoded alone, the end of a sentence is heard without what comes next. If the caller's
    ``max_delay`` leaves time and no EndOfUtterance waits for the words, the final decode of an
    utterance hears LOOKAHEAD_SECONDS after it, and only its own words become final then."""
    decoder = ScriptedDecoder(SENTENCES)
    run = paced(decoder, max_delay=max_delay, partials=False)
    run.stream.end_utterances_after(trigger)
    await run.feed(speech_audio([(0.5, 2.0), (2.8, 4.5)], 6.0))
    await run.flush()
    finals = [w for w, _ in run.finals]
    assert finals == SENTENCES
    assert_final_once_and_in_order(finals)
    closed = next(at for final, at in run.finals if final.text == "cat")
    heard_on = 2.0 + PAUSE_SECONDS + LOOKAHEAD_SECONDS
    if held:
        assert closed >= heard_on
        windows = [(start, end) for start, end, final in decoder.calls if final]
        assert any(start < 0.5 and end > heard_on - 0.01 for start, end in windows)
        assert commits(run)[0] == ["the", "cat"]
    else:
        assert closed <= 2.0 + PAUSE_SECONDS + 0.1
    for final, at in run.finals:
        assert at - final.end <= max_delay + 0.1  # the chunk a decode waits for


@pytest.mark.anyio
async def test_a_held_utterance_s_sentence_ends_where_whisper_punctuates_not_at_the_pause() -> None:
    """Heard on into what follows, "cat," goes on: the update that makes it final does not
    say the utterance ended (the server would close the sentence after the comma)."""
    script = [
        word("the", 0.5, 0.9),
        replace(word("cat", 1.0, 2.0), punctuation=","),
        *SENTENCES[2:],
    ]
    stream = paced(ScriptedDecoder(script), max_delay=6.0, partials=False).stream
    pcm = speech_audio([(0.5, 2.0), (2.8, 4.5)], 6.0)
    updates = [await stream.feed(pcm[at : at + CHUNK * 2]) for at in range(0, len(pcm), CHUNK * 2)]
    released = next(update for update in updates if update.finals)
    assert [w.text for w in released.finals] == ["the", "cat"]
    assert not released.utterance_ended
    assert [w.text for w in released.partial] == ["sat", "do?"]


@pytest.mark.anyio
async def test_a_held_utterance_does_not_hold_up_partials() -> None:
    """With partials on, the held decode is made when a partial is due: it is also the first
    look at the next utterance."""
    decoder = ScriptedDecoder(SENTENCES)
    run = paced(decoder, max_delay=6.0, partials=True)
    await run.feed(speech_audio([(0.5, 2.0), (2.8, 4.5)], 6.0))
    closed = next(at for final, at in run.finals if final.text == "cat")
    assert closed <= 2.0 + PAUSE_SECONDS + PARTIAL_INTERVAL + 0.1
    assert [w for w, _ in run.finals] == SENTENCES


@pytest.mark.anyio
async def test_short_sentences_in_a_row_are_held_no_longer_than_the_lookahead() -> None:
    """Half-second sentences a second apart: each hold ends when the next sentence does."""
    script = [word(f"s{index}", 0.5 + index, 1.0 + index) for index in range(8)]
    run = paced(ScriptedDecoder(script), max_delay=6.0, partials=False)
    await run.feed(speech_audio([(w.start, w.end) for w in script], 9.0))
    assert [w for w, _ in run.finals] == script
    for final, at in run.finals:
        assert at - final.end <= PAUSE_SECONDS + LOOKAHEAD_SECONDS + 0.1


@pytest.mark.anyio
@pytest.mark.parametrize("forced", [False, True])
async def test_an_end_while_an_utterance_is_held_makes_it_and_the_next_final_once(
    forced: bool,
) -> None:
    decoder = ScriptedDecoder(SENTENCES[:3])
    run = paced(decoder, max_delay=6.0, partials=False)
    await run.feed(speech_audio([(0.5, 2.0), (2.8, 3.3)], 3.5))
    assert run.finals == [], "the first utterance waits for what follows"
    calls = len(decoder.calls)
    await run.flush(forced=forced)
    assert [w for w, _ in run.finals] == SENTENCES[:3]
    assert_final_once_and_in_order([w for w, _ in run.finals])
    assert len(decoder.calls) == calls + 1, "one decode for both"


@pytest.mark.anyio
async def test_flush_in_a_pause_needs_no_decode_of_its_own() -> None:
    script = [word("hello", 0.5, 1.0)]
    decoder = ScriptedDecoder(script)
    run = paced(decoder, max_delay=4.0, partials=False)
    await run.feed(speech_audio([(0.5, 1.0)], 1.3))  # 0.3 s into the pause
    assert run.finals == []
    calls = len(decoder.calls)
    await run.flush()
    assert [w for w, _ in run.finals] == script
    assert len(decoder.calls) == calls == 1


async def spoken_words(
    count: int, *, max_delay: float, seconds: float, trigger: float = 0.0
) -> tuple[ScriptedDecoder, PacedRun]:
    """``count`` words, one every 0.5 s from 0.5 s with no pause, in ``seconds`` of audio fed at
    real time with partials (EndOfUtterance at ``trigger``, 0 for none); each must come out
    final once, in order, none misheard."""
    script = [word(f"w{index}", 0.5 + 0.5 * index, 0.9 + 0.5 * index) for index in range(count)]
    decoder = ScriptedDecoder(script)
    run = paced(decoder, max_delay=max_delay, partials=True)
    run.stream.end_utterances_after(trigger)
    await run.feed(speech_audio([(0.5, script[-1].end)], seconds))
    finals = [w for w, _ in run.finals]
    assert [w.text for w in finals] == [w.text for w in script], "none misheard, none twice"
    assert_final_once_and_in_order(finals)
    return decoder, run


@pytest.mark.anyio
async def test_max_delay_commits_agreed_words_early_and_each_word_once() -> None:
    _, run = await spoken_words(14, max_delay=1.5, seconds=8.5)
    early = [w for w, at in run.finals if at < 7.4]
    assert len(early) >= 8, "long speech is committed before its pause"
    for final, at in run.finals:
        assert at - final.end <= 1.5 + 0.2


@pytest.mark.anyio
async def test_audio_sent_in_a_burst_has_its_finals_within_max_delay_of_audio() -> None:
    """A 10 s utterance read with the clock standing still: its words are due by the audio
    after them, so a session that lives for less audio than the utterance still gets finals
    (else a client resuming after the last final replays the same audio again and again)."""
    script = [word(f"w{index}", 0.5 + 0.5 * index, 0.9 + 0.5 * index) for index in range(20)]
    stream = WhisperStream(
        ScriptedDecoder(script),
        max_delay=4.0,
        partials=False,
        detector=SpeechDetector(loud_frames, pause=PAUSE_SECONDS),
        clock=lambda: 0.0,
    )
    pcm = speech_audio([(0.5, script[-1].end)], 10.4)
    lags = []
    for at in range(0, len(pcm), CHUNK * 2):
        update = await stream.feed(pcm[at : at + CHUNK * 2])
        lags += [(at + CHUNK * 2) / (2 * RATE) - final.end for final in update.finals]
    assert len(lags) >= 10
    assert max(lags) <= 4.0 + 0.1


@pytest.mark.anyio
async def test_the_held_decode_votes_on_the_first_words_of_the_next_utterance() -> None:
    """Decoded with the sentence before it, the next one's quick first word is heard; a window
    starting at that sentence misses it, and is less sure of the rest. The held decode is the
    next utterance's first look, so the word is made final as it heard it."""
    script = [
        *SENTENCES[:2],
        word("and", 2.8, 3.0),
        *(word(f"w{index}", 3.1 + 0.5 * index, 3.5 + 0.5 * index) for index in range(12)),
    ]
    decoder = ScriptedDecoder(script)

    async def from_the_sentence(
        audio: npt.NDArray[np.float32], offset: float, **options: Any
    ) -> list[EngineWord] | None:
        words = await decoder(audio, offset, **options)
        if words is None or offset < SENTENCES[1].end:
            return words
        return [replace(w, confidence=0.6) for w in words if w.text != "and"]

    stream = WhisperStream(
        from_the_sentence,
        max_delay=3.5,
        partials=False,
        detector=SpeechDetector(loud_frames, pause=PAUSE_SECONDS),
        clock=lambda: 0.0,  # sent in a burst: the hold waits for audio, not the clock
    )
    pcm = speech_audio([(0.5, 2.0), (2.8, script[-1].end)], script[-1].end + 1.0)
    finals = []
    for at in range(0, len(pcm), CHUNK * 2):
        finals += (await stream.feed(pcm[at : at + CHUNK * 2])).finals
    finals += (await stream.flush()).finals
    assert [w.text for w in finals] == [w.text for w in script]
    assert_final_once_and_in_order(finals)


@pytest.mark.anyio
@pytest.mark.parametrize("partials", [False, True])
@pytest.mark.parametrize("forced", [True, False])
async def test_a_forced_end_in_a_long_utterance_decodes_only_its_tail(
    partials: bool, forced: bool
) -> None:
    """ForceEndOfUtterance 9 s into speech: the words before the last FLUSH_SECONDS are final
    as the looks heard them (partials', or an idle engine's), and only the tail is decoded.
    The end of the stream, where nobody waits, decodes the whole utterance."""
    script = [word(f"w{index}", 0.5 + 0.5 * index, 0.9 + 0.5 * index) for index in range(18)]
    decoder = ScriptedDecoder(script)
    run = paced(decoder, max_delay=10.0, partials=partials)
    await run.feed(speech_audio([(0.5, 9.5)], 9.5))
    assert run.finals == [], "no pause, and max_delay is far"
    looks = len(decoder.calls)
    await run.flush(forced=forced)
    finals = [w for w, _ in run.finals]
    assert [w.text for w in finals] == [w.text for w in script], "none misheard, none twice"
    assert_final_once_and_in_order(finals)
    (flushed,) = decoder.calls[looks:]
    start, end, final = flushed
    assert final
    assert decoder.quick == [False] * looks + [forced], "only a forced end is in a hurry"
    assert end == pytest.approx(9.5)
    if forced:
        assert end - start <= FLUSH_SECONDS + FLUSH_CONTEXT_SECONDS + 0.5  # last final whole
    else:
        assert start < 0.5


@pytest.mark.anyio
async def test_a_forced_end_without_looks_decodes_the_whole_utterance() -> None:
    """On a busy engine no look is made for a forced end to come; it then hears it all."""
    script = [word(f"w{index}", 0.5 + 0.5 * index, 0.9 + 0.5 * index) for index in range(12)]
    decoder = ScriptedDecoder(script)

    async def busy_decoder(
        audio: npt.NDArray[np.float32], offset: float, **options: Any
    ) -> list[EngineWord] | None:
        if options["idle"]:  # another session's decode holds one of the two workers
            return None
        return await decoder(audio, offset, **options)

    run = paced(decoder, max_delay=10.0, partials=False, through=busy_decoder)
    await run.feed(speech_audio([(0.5, 6.5)], 6.5))
    assert decoder.calls == []
    await run.flush(forced=True)
    assert [w.text for w, _ in run.finals] == [w.text for w in script]
    ((start, end, final),) = decoder.calls
    assert final
    assert start < 0.5
    assert end == pytest.approx(6.5)


@pytest.mark.anyio
@pytest.mark.parametrize("retuned", [False, True])
async def test_partials_switched_on_mid_stream_are_decoded(retuned: bool) -> None:
    decoder = ScriptedDecoder([word("hello", 0.5, 1.0), word("there", 1.1, 1.8)])
    run = paced(decoder, max_delay=4.0, partials=False)
    audio = speech_audio([(0.5, 1.9)], 1.9)
    half_second = RATE  # bytes
    await run.feed(audio[:half_second])
    if retuned:
        run.stream.retune(max_delay=4.0, partials=True)
    partials = []
    for offset in range(half_second, len(audio), CHUNK * 2):
        partials.extend((await run.stream.feed(audio[offset : offset + CHUNK * 2])).partial)
    assert bool(partials) is retuned
    assert run.finals == []


@pytest.mark.anyio
async def test_silence_and_clicks_are_never_decoded() -> None:
    decoder = ScriptedDecoder([word("phantom", 1.0, 1.1)])
    run = paced(decoder, max_delay=2.0, partials=True)
    await run.feed(speech_audio([(1.0, 1.1), (3.0, 3.05)], 5.0))
    await run.flush()
    assert run.finals == []
    assert decoder.calls == []


@pytest.mark.anyio
async def test_flush_makes_the_open_utterance_final_and_later_audio_starts_afresh() -> None:
    script = [word("hello", 0.5, 1.0), word("again", 3.0, 3.5)]
    decoder = ScriptedDecoder(script)
    run = paced(decoder, max_delay=4.0, partials=False)
    await run.feed(speech_audio([(0.5, 1.0)], 1.1))
    await run.flush()
    assert [w.text for w, _ in run.finals] == ["hello"]
    await run.feed(speech_audio([(1.9, 2.4)], 3.5))  # session time 3.0-3.5
    await run.flush()
    assert [w.text for w, _ in run.finals] == ["hello", "again"]


@pytest.mark.anyio
async def test_the_audio_kept_is_bounded_however_long_the_session() -> None:
    decoder = ScriptedDecoder([])
    run = paced(decoder, max_delay=4.0, partials=False)
    spans = [(start + 0.2, start + 2.2) for start in range(0, 120, 3)]
    await run.feed(speech_audio(spans, 120.0))
    assert run.stream.buffered_seconds < 12
    assert max(end - start for start, end, _ in decoder.calls) < 12


def test_rehearing_a_final_word_with_new_times_does_not_finalise_it_again() -> None:
    committed = [word("Captain", 0.05, 0.05)]
    hypothesis = [word("Captain", 0.05, 0.83), word("Smith", 0.9, 1.3)]
    assert after_committed(hypothesis, committed) == [word("Smith", 0.9, 1.3)]


def test_a_new_word_never_starts_before_the_last_final_ended() -> None:
    committed = [word("Ask", 2.92, 3.5), word("not", 3.6, 4.24)]
    hypothesis = [word("Ask", 2.9, 3.4), word("not", 3.5, 4.2), word("watch", 4.14, 5.7)]
    (fresh,) = after_committed(hypothesis, committed)
    assert (fresh.text, fresh.start, fresh.end) == ("watch", 4.24, 5.7)


def test_when_the_last_final_is_not_reheard_time_decides() -> None:
    committed = [word("by", 1.0, 1.7)]
    hypothesis = [word("buy", 1.0, 1.6), word("the", 1.5, 2.0), word("sea", 2.0, 2.4)]
    assert [w.text for w in after_committed(hypothesis, committed)] == ["the", "sea"]
    assert after_committed(hypothesis, committed)[0].start == 1.7


def test_a_final_heard_again_as_the_start_of_a_longer_word_is_not_new() -> None:
    committed = [word("in", 5.9, 6.1), word("18", 6.1, 6.5)]
    hypothesis = [word("in", 5.9, 6.1), word("1813", 6.15, 7.0), word("he", 7.2, 7.4)]
    assert [w.text for w in after_committed(hypothesis, committed)] == ["he"]
    later = [word("in", 5.9, 6.1), word("1813", 6.5, 7.0)]  # heard after the final: new
    assert [w.text for w in after_committed(later, committed)] == ["1813"]


def test_a_new_word_squeezed_under_the_last_final_is_kept_not_lost() -> None:
    committed = [word("of", 4.72, 4.86), word("the", 4.86, 5.5)]
    hypothesis = [
        word("of", 4.72, 4.86),
        word("the", 4.86, 5.32),
        word("circumstances", 5.32, 5.5),
        word("which", 5.5, 5.92),
    ]
    fresh = [(w.text, w.start, w.end) for w in after_committed(hypothesis, committed)]
    assert fresh == [("circumstances", 5.5, 5.5), ("which", 5.5, 5.92)]


def test_due_words_are_those_max_delay_makes_due_never_the_edge() -> None:
    words = (word("a", 0.0, 0.4), word("cat", 0.5, 0.9), word("sat", 1.0, 1.4))
    end = 1.4 + EDGE_SECONDS + 0.1
    assert due_finals(Look(words, end), [], [], due_before=1.0) == list(words[:2])
    assert due_finals(Look(words, 1.5), [], [], due_before=5.0) == list(words[:2]), "edge"
    assert due_finals(Look(words, end), [], list(words[:1]), due_before=1.0) == [words[1]]


def test_the_version_most_decodes_heard_is_made_final() -> None:
    had = (word("had", 0.0, 0.4), word("he", 0.4, 0.6), word("married", 0.6, 1.0))
    how = (word("how", 0.0, 0.4), word("do", 0.4, 0.5), word("you", 0.5, 0.6))
    latest = Look((*how, word("married", 0.6, 1.0)), 2.0)
    earlier = [Look(had, 1.2), Look(had[:2], 1.4)]
    assert [w.text for w in due_finals(latest, earlier, [], due_before=0.7)] == ["had", "he"]
    tie = [Look(had, 1.2), Look(how, 1.4)]
    assert [w.text for w in due_finals(latest, tie, [], due_before=0.7)] == ["how", "do", "you"]
    cut = [Look(had[:1], 0.5), Look(had[:1], 0.6)]  # the due words lay in their edge
    assert [w.text for w in due_finals(latest, cut, [], due_before=0.7)] == ["how", "do", "you"]


def test_an_earlier_version_made_final_ends_where_the_latest_decode_s_due_words_end() -> None:
    latest = Look((word("antecedence", 3.4, 4.22), word("the", 4.88, 5.26)), 7.3)
    stretched = Look((word("antecedents", 3.4, 4.24), word("the", 4.86, 5.5)), 5.9)
    chosen = due_finals(latest, [stretched, stretched], [], due_before=5.3)
    assert [(w.text, w.end) for w in chosen] == [("antecedents", 4.24), ("the", 5.26)]


def test_a_number_is_final_once_a_word_after_it_is_heard_whole_or_it_is_overdue() -> None:
    due = [word("in", 5.9, 6.1), word("18", 6.1, 6.5)]
    alone = Look(tuple(due), 7.0)
    assert numbers_heard_whole(due, alone, overdue=0.0) == due[:1], "the speaker may go on"
    followed = Look((*due, word("he", 6.6, 6.9)), 7.5)
    assert numbers_heard_whole(due, followed, overdue=0.0) == due
    cut = Look((*due, word("he", 6.6, 7.3)), 7.5)  # within the edge: maybe half a word
    assert numbers_heard_whole(due, cut, overdue=0.0) == due[:1]
    digits = Look((*due, word("13", 6.6, 6.9)), 7.5)  # "18 13": still one number, maybe
    assert numbers_heard_whole(due, digits, overdue=0.0) == due[:1]
    assert numbers_heard_whole(due, alone, overdue=6.6) == due, "waited long enough"
    for last in ("May", "MP3"):
        words = [word("in", 5.9, 6.1), word(last, 6.1, 6.5)]
        assert numbers_heard_whole(words, Look(tuple(words), 7.0), overdue=0.0) == words
    price = [word("costs", 5.9, 6.1), word("$5", 6.1, 6.5)]
    assert numbers_heard_whole(price, Look(tuple(price), 7.0), overdue=0.0) == price[:1]


@dataclass
class CutNumbers:
    """As Whisper does: a number cut by the window's end is written as its first digits,
    ending long before the window does ("17" for "seventeen forty-", not "17?" at the edge)."""

    inner: ScriptedDecoder

    async def __call__(
        self, audio: npt.NDArray[np.float32], offset: float, **options: Any
    ) -> list[EngineWord] | None:
        heard = await self.inner(audio, offset, **options)
        return [
            replace(w, text=w.text[:-1], end=w.start + 0.3)
            if w.text.endswith("?") and w.text[:-1].isdigit()
            else w
            for w in heard or []
        ]


@pytest.mark.anyio
@pytest.mark.parametrize("flexible", [True, False])
async def test_a_number_waits_to_be_heard_whole_when_max_delay_mode_is_flexible(
    flexible: bool,
) -> None:
    script = [
        word("Flight", 0.5, 0.9),
        word("1742", 1.0, 2.6),
        word("to", 2.7, 2.9),
        word("Boston", 3.0, 3.5),
    ]
    decoder = ScriptedDecoder(script)
    run = paced(decoder, max_delay=1.0, partials=True, through=CutNumbers(decoder), lookahead=0)
    run.stream.finish_entities(flexible)
    await run.feed(speech_audio([(0.5, 3.5)], 5.0))
    texts = [w.text for w, _ in run.finals]
    if not flexible:  # max_delay kept: the start of the number was made final alone
        assert texts[:2] == ["Flight", "17"]
        return
    assert texts == ["Flight", "1742", "to", "Boston"]
    number, at = run.finals[1]
    assert at <= number.end + 1.0 + ENTITY_SECONDS


def test_decodes_that_disagree_are_weighed_by_whisper_s_confidence() -> None:
    def sure(text: str, start: float, end: float, confidence: float) -> EngineWord:
        return EngineWord(text, start, end, confidence)

    unsure = (sure("why", 0.0, 0.4, 0.3), sure("are", 0.4, 0.6, 0.9))
    confident = (sure("when", 0.0, 0.4, 0.8), sure("are", 0.4, 0.6, 0.9))
    latest = Look(unsure, 2.0)
    chosen = due_finals(latest, [Look(confident, 1.5)], [], due_before=0.7)
    assert [w.text for w in chosen] == ["when", "are"]
    nothing = [Look((), 1.5), Look((), 1.6)]  # heard nothing there: no vote against
    assert due_finals(latest, nothing, [], due_before=0.7) == list(unsure)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("decode_seconds", "max_delay", "latest"),
    [
        (0.3, 1.0, 1.1),
        (0.5, 2.0, 2.1),
        # A word is final only once EDGE_SECONDS of audio follow it, and then a decode of
        # 0.5 s at max_delay 1 s leaves 0.2 s to start it in: decodes half a second apart
        # cannot meet that for every word.
        (0.5, 1.0, 1.0 + EDGE_SECONDS + 0.1),
    ],
)
async def test_finals_meet_max_delay_counting_the_decode_s_own_time(
    decode_seconds: float, max_delay: float, latest: float
) -> None:
    """Audio read late, in a burst after a decode, still counts from when it was sent; and a
    word is final when its decode *ends* within ``max_delay``, not when it starts."""
    script = [word(f"w{index}", 0.5 + 0.4 * index, 0.8 + 0.4 * index) for index in range(20)]
    decoder = ScriptedDecoder(script, seconds=decode_seconds)
    run = paced(decoder, max_delay=max_delay, partials=True)
    await run.feed(speech_audio([(0.5, 8.4)], 9.0))
    assert [w.text for w, _ in run.finals] == [w.text for w in script]
    assert_final_once_and_in_order([w for w, _ in run.finals])
    lags = [at - final.end for final, at in run.finals if final.end < 8.0]  # before the pause
    assert max(lags) <= latest + 1e-9  # 0.1 s: the chunk the decode waited for
    # As late as allowed, heard with what follows: no earlier than a step and a decode before.
    assert min(lags) >= max_delay - MIN_INTERIM_STEP - decode_seconds - 0.1


def test_a_pause_ends_an_utterance_and_a_click_is_not_one() -> None:
    detector = SpeechDetector(loud_frames, pause=0.4)
    audio = np.frombuffer(speech_audio([(0.5, 1.5), (2.5, 2.55)], 4.0), dtype="<i2")
    ended = detector.push(audio.astype(np.float32) / 32768)
    assert len(ended) == 1
    assert ended[0].start == pytest.approx(0.5, abs=0.04)
    assert ended[0].end == pytest.approx(1.5, abs=0.04)
    assert detector.had_speech(1.0, 1.2)
    assert not detector.had_speech(1.7, 2.3)


def test_a_breath_the_detector_calls_speech_is_quiet_and_not_speech_after_a_close() -> None:
    detector = SpeechDetector(sound_frames, pause=0.4)
    audio = np.frombuffer(speech_audio([(0.5, 1.5)], 2.3, quiet=[(1.5, 2.3)]), dtype="<i2")
    samples = audio.astype(np.float32) / 32768
    assert detector.push(samples[: int(1.8 * RATE)]) == []
    assert detector.silence_seconds == 0.0
    assert detector.quiet_seconds == pytest.approx(0.3, abs=0.04)
    closed = detector.close()
    assert closed is not None
    assert (closed.start, closed.end) == pytest.approx((0.5, 1.8), abs=0.04)
    detector.push(samples[int(1.8 * RATE) :])  # the breath goes on: too quiet to be words
    assert detector.speech_seconds == 0.0
    detector.push(samples[int(0.5 * RATE) : int(0.6 * RATE)])  # a loud frame is
    assert detector.speech_seconds > 0.0


def test_speech_the_detector_is_unsure_of_is_still_one_utterance() -> None:
    """Silero scores telephone-band speech 0.2-0.6 (it is sure of full-band speech): a second
    of such scores is one utterance, ended by the pause after it, not cut at every dip."""
    unsure = [0.6, 0.45, 0.2, 0.4, 0.32, 0.25, 0.38, 0.18, 0.35, 0.28]
    scores = np.array(unsure * 3 + [0.02] * 20, dtype=np.float32)
    detector = SpeechDetector(lambda frames: scores[: len(frames) // FRAME_SAMPLES], pause=0.4)
    ended = detector.push(np.zeros(len(scores) * FRAME_SAMPLES, dtype=np.float32))
    assert len(ended) == 1
    assert ended[0].start == 0.0
    assert ended[0].end == pytest.approx(30 * FRAME_SAMPLES / RATE)
    assert detector.had_speech(0.0, ended[0].end)


@pytest.mark.anyio
async def test_a_coming_end_drops_the_interim_decode_under_way() -> None:
    """hurry() (ForceEndOfUtterance read behind audio still being fed): the partial decode
    under way is dropped, none is started before the end, and the end decodes once."""
    script = [word(f"w{index}", 0.5 + 0.5 * index, 0.9 + 0.5 * index) for index in range(6)]
    decoder = ScriptedDecoder(script)
    stalled = anyio.Event()

    async def slow_decoder(
        audio: npt.NDArray[np.float32], offset: float, **options: Any
    ) -> list[EngineWord] | None:
        if not options["final"]:  # a partial decode that would take a long while
            stalled.set()
            await anyio.sleep_forever()
        return await decoder(audio, offset, **options)

    run = paced(decoder, max_delay=10.0, partials=True, through=slow_decoder)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(run.feed, speech_audio([(0.5, 3.5)], 3.5))
            await stalled.wait()
            run.stream.hurry()
    await run.flush(forced=True)
    assert [w.text for w, _ in run.finals] == [w.text for w in script]
    ((_, end, final),) = decoder.calls
    assert final
    assert end == pytest.approx(3.5)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arriving", "trigger", "drops"),
    [
        ("a pause", 0.25, True),
        ("a pause", 0.5, True),
        ("more speech", 0.25, False),
        ("a pause", 0.0, False),
    ],
)
async def test_a_pause_arriving_during_an_interim_decode_drops_it(
    arriving: str, trigger: float, drops: bool
) -> None:
    """A session waiting for EndOfUtterance hears ahead the audio read while an interim decode
    runs (it is fed only after the decode): a pause beginning in it drops the decode, so the
    pause's own decode and EndOfUtterance need not wait for it; more speech leaves it be, and
    so does a session that wants no EndOfUtterance. Either way every word is final once, at
    the end of the turn."""
    script = [word("the", 0.5, 0.8)]
    decoder = ScriptedDecoder(script)
    stalled, release = anyio.Event(), anyio.Event()
    dropped: list[bool] = []

    async def slow_decoder(
        audio: npt.NDArray[np.float32], offset: float, **options: Any
    ) -> list[EngineWord] | None:
        if not options["final"] and not stalled.is_set():  # the first interim decode is slow
            stalled.set()
            try:
                await release.wait()
            except anyio.get_cancelled_exc_class():
                dropped.append(True)
                raise
        return await decoder(audio, offset, **options)

    run = paced(decoder, max_delay=10.0, partials=True, through=slow_decoder)
    run.stream.end_utterances_after(trigger)
    following = speech_audio([(0.0, 0.3)] if arriving == "more speech" else [], 0.3)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(run.feed, speech_audio([(0.5, 0.8)], 0.8))
            await stalled.wait()
            assert decoder.calls == [], "stalled in the decode of the speech's last chunk"
            run.stream.arriving(following)
            await anyio.wait_all_tasks_blocked()
            assert dropped == ([True] if drops else [])
            release.set()
        await run.feed(following + speech_audio([], 0.6))
        await run.flush()
    assert [w for w, _ in run.finals] == script
    assert run.stream.buffered_seconds < 1.0


@pytest.mark.anyio
@pytest.mark.parametrize("comes", ["before the close", "after the close", "before more speech"])
async def test_a_dropped_decodes_due_words_are_final_as_it_heard_them(comes: str) -> None:
    """A decode dropped for a pause heard ahead runs on to its end. If its words come before
    the pause's decode closes the utterance, the words max_delay had made due when it started
    are final as it heard them (here "x1", surer than the others' "w1"), as if it had been
    waited for; the pause's decode gives the rest. If the speaker goes on instead, the next
    interim decode decides what is due, and words that come after the close are not taken
    for the next utterance's. Either way each word is final once."""
    script = [word("w0", 0.5, 0.9), word("w1", 1.0, 1.35), word("w2", 1.4, 1.75)]
    decoder = ScriptedDecoder(script)
    stalled, release = anyio.Event(), anyio.Event()

    async with anyio.create_task_group() as queue:  # where a dropped decode runs on

        async def slow_decoder(
            audio: npt.NDArray[np.float32],
            offset: float,
            *,
            late: Callable[[list[EngineWord]], None] | None = None,
            **options: Any,
        ) -> list[EngineWord] | None:
            words = await decoder(audio, offset, **options)
            if options["final"] or stalled.is_set() or offset + len(audio) / RATE < 1.8:
                return words
            stalled.set()  # the decode of the speech's last chunk is slow
            try:
                await anyio.sleep_forever()
            finally:
                assert late is not None
                heard = [
                    replace(w, text=w.text.replace("w", "x"), confidence=1.0) for w in words or ()
                ]
                queue.start_soon(deliver, late, heard)
            return None

        async def deliver(
            late: Callable[[list[EngineWord]], None], heard: list[EngineWord]
        ) -> None:
            await release.wait()
            late(heard)

        run = paced(decoder, max_delay=1.0, partials=True, through=slow_decoder)
        run.stream.end_utterances_after(0.25)
        pause = speech_audio([], 0.2)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(run.feed, speech_audio([(0.5, 1.8)], 1.8))
                await stalled.wait()
                run.stream.arriving(pause)
            if comes != "after the close":
                release.set()
                await anyio.wait_all_tasks_blocked()
            if comes == "before more speech":
                await run.feed(speech_audio([(0.15, 1.0)], 1.0))
            await run.feed(pause + speech_audio([], 0.4))
            release.set()
        await run.flush()
    finals = [w.text for w, _ in run.finals]
    assert finals[:3] == ["w0", "x1" if comes == "before the close" else "w1", "w2"]
    assert_final_once_and_in_order([w for w, _ in run.finals])
    assert run.stream.buffered_seconds < 1.0


@pytest.mark.anyio
@pytest.mark.parametrize("trigger", [0.0, 0.5])
async def test_decodes_reach_back_only_a_little_before_the_last_final(trigger: float) -> None:
    """12 s without a pause at max_delay 1 s: each interim decode starts at a final word's end at
    most REACH_SECONDS before the last final, so its cost does not grow with the utterance.
    The utterance's own decode at the pause hears it whole, unless the session waits for
    EndOfUtterance (which waits for that decode): then it reaches back as the interims do."""
    decoder, _ = await spoken_words(24, max_delay=1.0, seconds=13.5, trigger=trigger)
    interims = [(start, end) for start, end, final in decoder.calls if not final]
    reached = [(start, end) for start, end in interims if start > 0.5]
    assert len(reached) >= len(interims) // 2, "most of the utterance is decoded after 3 s"
    word_ends = {w.end for w in decoder.words}

    def reaches_back(start: float, end: float) -> bool:
        """From a word's end, over at most the reach and the words max_delay leaves open."""
        from_a_word = any(start == pytest.approx(end_of_word) for end_of_word in word_ends)
        return from_a_word and end - start <= REACH_SECONDS + 2.0

    assert all(reaches_back(start, end) for start, end in reached)
    *_, (start, end, final) = decoder.calls
    assert final
    assert reaches_back(start, end) if trigger else start < 0.5


@dataclass
class DoubtsShortWindows(ScriptedDecoder):
    """As tiny.en with a phrase heard alone: a window under 1.25 s gives no words at all."""

    async def __call__(
        self, audio: npt.NDArray[np.float32], offset: float, **options: Any
    ) -> list[EngineWord] | None:
        heard = await super().__call__(audio, offset, **options)
        return [] if len(audio) / RATE < 1.25 else heard


@pytest.mark.anyio
@pytest.mark.parametrize("gap", [1.2, JOIN_GAP_SECONDS + 0.5])
async def test_speech_that_gave_no_words_is_heard_again_with_the_speech_soon_after(
    gap: float,
) -> None:
    first = [word("ask", 0.5, 0.7), word("not", 0.75, 0.9)]
    later = 0.9 + gap
    second = [word("what", later, later + 0.3), word("now", later + 0.4, later + 1.0)]
    decoder = DoubtsShortWindows([*first, *second])
    run = paced(decoder, max_delay=4.0, partials=False, lookahead=0)
    await run.feed(speech_audio([(0.5, 0.9), (later, later + 1.0)], later + 2.0))
    heard = [w.text for w, _ in run.finals]
    if gap <= JOIN_GAP_SECONDS:
        assert heard == ["ask", "not", "what", "now"]
    else:  # too far apart: each alone, as before
        assert heard == ["what", "now"]
        assert decoder.calls[-1][0] > 0.9
