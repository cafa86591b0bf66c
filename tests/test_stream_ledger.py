"""The sans-I/O bookkeeping of a stream spanning sessions: ring, legs, rebasing, dedup."""

from __future__ import annotations

import math
import struct

import pytest

from speechmatics_modes import (
    AudioEventStarted,
    AudioFormat,
    EndOfUtterance,
    Final,
    IdentifiedSpeaker,
    Partial,
    SessionInfo,
    SpeakersResult,
    Word,
)
from speechmatics_modes._stream._ledger import AudioRing, Leg, SpeakerLedger, WordLedger, level_dbfs

PCM = AudioFormat(encoding="pcm_s16le", sample_rate=16000, chunk_size=320)
BPS = PCM.bytes_per_second


def tone(samples: int, amplitude: int = 8000) -> bytes:
    return struct.pack(f"<{samples}h", *([amplitude, -amplitude] * (samples // 2)))


def silence(samples: int) -> bytes:
    return bytes(2 * samples)


def word(content: str, start: float, end: float, *, punctuation: bool = False) -> Word:
    return Word(
        content=content,
        start=start,
        end=end,
        confidence=0.9,
        is_punctuation=punctuation,
        attaches_to="previous" if punctuation else None,
    )


def final(*words: Word) -> Final:
    return Final(
        words=words,
        text=" ".join(w.content for w in words),
        start=words[0].start,
        end=words[-1].end,
    )


class TestLevel:
    def test_full_scale_square_wave_is_zero_dbfs(self) -> None:
        assert level_dbfs(tone(160, 32767), PCM) == pytest.approx(0.0, abs=0.01)

    def test_digital_silence_is_minus_infinity(self) -> None:
        assert level_dbfs(silence(160), PCM) == -math.inf

    def test_float_and_mulaw_agree_with_pcm(self) -> None:
        floats = struct.pack("<4f", 0.25, -0.25, 0.25, -0.25)
        as_float = AudioFormat(encoding="pcm_f32le", sample_rate=16000, chunk_size=256)
        assert level_dbfs(floats, as_float) == pytest.approx(20 * math.log10(0.25))
        as_mulaw = AudioFormat(encoding="mulaw", sample_rate=8000, chunk_size=256)
        # 0x80 and 0x00 are the mu-law codes for full positive and negative scale.
        assert level_dbfs(bytes([0x80, 0x00] * 2), as_mulaw) == pytest.approx(0.0, abs=0.2)


class TestAudioRing:
    def ring(self, capacity: int = 10_000) -> AudioRing:
        return AudioRing(capacity, PCM, silence_dbfs=-45.0)

    def test_offsets_count_every_byte_and_read_returns_the_rest_of_a_block(self) -> None:
        ring = self.ring()
        ring.append(tone(100))
        ring.append(tone(50))
        assert (ring.start, ring.end) == (0, 300)
        assert ring.read(50) == tone(100)[50:]
        assert ring.read(200) == tone(50)
        assert ring.read(300) == b""

    def test_release_drops_whole_and_partial_blocks(self) -> None:
        ring = self.ring()
        ring.append(tone(100))
        ring.append(tone(100))
        ring.release(250)
        assert ring.start == 250
        assert ring.read(250) == tone(100)[50:]
        with pytest.raises(ValueError, match="released"):
            ring.read(100)

    def test_beyond_capacity_the_oldest_audio_is_discarded(self) -> None:
        ring = self.ring(capacity=640)
        for _ in range(5):
            ring.append(tone(160))
        assert ring.end == 1600
        assert ring.start == 1600 - 640
        assert ring.held == 640
        assert ring.full

    def test_discarding_loud_audio_is_remembered_but_quiet_audio_is_not(self) -> None:
        ring = self.ring(capacity=640)
        ring.append(silence(320))
        ring.append(silence(320))
        assert ring.start == 640
        assert not ring.lost_since(0)
        ring.append(tone(320))
        ring.append(silence(320))
        assert ring.lost_since(1280)
        assert not ring.lost_since(1920)

    def test_quiet_runs_span_blocks_and_end_at_loud_audio(self) -> None:
        ring = self.ring()
        ring.append(tone(160))
        ring.append(silence(160))
        ring.append(silence(160))
        assert ring.quiet_run(960) == 640
        assert ring.quiet_run(640) == 320
        assert ring.quiet_run(320) == 0
        ring.append(tone(160))
        assert ring.quiet_run(1280) == 0

    def test_first_loud_skips_quiet_blocks(self) -> None:
        ring = self.ring()
        ring.append(silence(160))
        ring.append(silence(160))
        assert ring.first_loud(0) is None
        ring.append(tone(160))
        assert ring.first_loud(0) == 640
        assert ring.first_loud(700) == 700


class TestLeg:
    def test_session_times_map_onto_the_stream_clock(self) -> None:
        leg = Leg(BPS, 2)
        leg.commit(3 * BPS)
        leg.sent = 5 * BPS
        assert leg.offset == 3.0
        assert leg.to_offset(1.5) == int(4.5 * BPS)
        assert leg.to_offset(9.0) == leg.sent  # never past what the session was sent
        assert leg.to_offset(1 / 32000) % 2 == 0  # whole samples only

    def test_finals_and_end_of_utterance_advance_the_final_point(self) -> None:
        leg = Leg(BPS, 2)
        leg.commit(BPS)
        leg.sent = 4 * BPS
        leg.observe(final(word("a", 0.1, 0.5)))
        assert leg.final_end == int(1.5 * BPS)
        leg.observe(EndOfUtterance(time=1.0))
        assert leg.final_end == 2 * BPS

    def test_pending_partial_words_unsettle_the_leg(self) -> None:
        leg = Leg(BPS, 2)
        states = []
        for event in (
            Partial(words=(word("b", 0, 1),), text="b", start=0, end=1),
            final(word("b", 0, 1)),
            Partial(words=(), text="", start=1, end=1),
        ):
            leg.observe(event)
            states.append(leg.settled)
        assert states == [False, True, True]


def session_at(seconds: float) -> Leg:
    """A session whose audio starts ``seconds`` into the stream."""
    leg = Leg(BPS, 2)
    leg.commit(int(seconds * BPS))
    return leg


class TestWordLedger:
    def test_times_are_shifted_by_the_session_offset(self) -> None:
        ledger = WordLedger()
        first = final(word("hello", 0.5, 0.9), word("there", 1.0, 1.4))
        event = ledger.rebase(first, session_at(10.0))
        assert isinstance(event, Final)
        assert [(w.start, w.end) for w in event.words] == [(10.5, 10.9), (11.0, 11.4)]
        assert (event.start, event.end) == (10.5, 11.4)
        assert ledger.emitted_until == pytest.approx(11.4)
        assert [w.content for w in ledger.words] == ["hello", "there"]

    def test_replayed_words_already_emitted_are_dropped_and_counted(self) -> None:
        ledger = WordLedger()
        ledger.rebase(final(word("one", 0.0, 0.5), word("two", 0.6, 1.0)), session_at(0.0))
        replay = final(
            word("two", 0.1, 0.5),
            word(".", 0.5, 0.5, punctuation=True),
            word("three", 0.6, 1.0),
        )
        event = ledger.rebase(replay, session_at(0.5))  # the new session starts at 0.5 s
        assert isinstance(event, Final)
        assert [w.content for w in event.words] == ["three"]
        assert ledger.deduplicated == 1
        assert [w.content for w in ledger.words] == ["one", "two", "three"]

    def test_a_final_with_only_stale_words_disappears(self) -> None:
        ledger = WordLedger()
        ledger.rebase(final(word("one", 0.0, 0.5)), session_at(0.0))
        assert ledger.rebase(final(word("one", 0.0, 0.4)), session_at(0.0)) is None

    def test_a_word_starting_where_the_last_ended_is_new(self) -> None:
        ledger = WordLedger()
        ledger.rebase(final(word("one", 0.0, 0.5)), session_at(0.0))
        event = ledger.rebase(final(word("two", 0.0, 0.3)), session_at(0.5))
        assert isinstance(event, Final)
        assert [w.content for w in event.words] == ["two"]

    def test_a_sliver_of_the_last_word_heard_again_is_dropped(self) -> None:
        """The replay starts half a millisecond early (times are rounded to milliseconds)."""
        ledger = WordLedger()
        ledger.rebase(final(word("one", 0.0, 0.5)), session_at(0.0))
        assert ledger.rebase(final(word("one", 0.0, 0.0)), session_at(0.4995)) is None
        assert ledger.deduplicated == 1

    def test_a_cut_word_whose_second_half_is_heard_again_is_kept(self) -> None:
        ledger = WordLedger()
        ledger.rebase(final(word("wor", 0.0, 1.0)), session_at(0.0))
        event = ledger.rebase(final(word("ward", 0.9, 1.5)), session_at(0.0))
        assert isinstance(event, Final)
        assert [w.content for w in event.words] == ["ward"]

    def test_one_session_never_deduplicates_its_own_overlapping_words(self) -> None:
        ledger = WordLedger()
        session = session_at(0.0)
        ledger.rebase(final(word("let's", 10.12, 11.08)), session)
        event = ledger.rebase(final(word("begin", 11.0, 11.32)), session)  # starts 80 ms early
        assert isinstance(event, Final)
        assert [w.content for w in ledger.words] == ["let's", "begin"]
        assert ledger.deduplicated == 0

    def test_a_session_still_drops_what_an_earlier_one_emitted_after_its_own_first_final(
        self,
    ) -> None:
        ledger = WordLedger()
        ledger.rebase(final(word("one", 0.0, 0.5), word("two", 0.6, 1.0)), session_at(0.0))
        replay = session_at(0.0)
        ledger.rebase(final(word("one", 0.0, 0.5)), replay)
        event = ledger.rebase(final(word("two", 0.6, 1.0), word("three", 1.1, 1.5)), replay)
        assert isinstance(event, Final)
        assert [w.content for w in event.words] == ["three"]
        assert ledger.deduplicated == 2

    def test_partials_are_rebased_but_not_recorded(self) -> None:
        ledger = WordLedger()
        partial = Partial(words=(word("x", 0, 1),), text="x", start=0, end=1)
        event = ledger.rebase(partial, session_at(2.0))
        assert isinstance(event, Partial)
        assert (event.words[0].start, event.end) == (2.0, 3.0)
        assert ledger.words == []
        assert ledger.emitted_until == 0.0

    def test_end_of_utterance_is_rebased_and_other_events_pass(self) -> None:
        ledger = WordLedger()
        session = session_at(2.0)
        assert ledger.rebase(EndOfUtterance(time=1.0), session) == EndOfUtterance(time=3.0)
        info = SessionInfo(session_id="s")
        assert ledger.rebase(info, session) is info

    def test_what_a_session_heard_in_its_lead_in_is_dropped(self) -> None:
        """A handover's session is sent the 2 s before its switch (at 10 s) again: what it
        says about that audio, the session before it said."""
        ledger = WordLedger()
        ledger.rebase(final(word("the", 8.6, 8.8), word("end", 8.9, 9.4)), session_at(0.0))
        successor = Leg(BPS, 2)
        successor.commit(int(8.0 * BPS), owned_from=int(10.0 * BPS))
        heard = final(word("the", 0.6, 0.8), word("end", 0.9, 1.4), word("and", 2.2, 2.5))
        event = ledger.rebase(heard, successor)
        assert isinstance(event, Final)
        assert [(w.content, w.start) for w in event.words] == [("and", 10.2)]
        assert ledger.rebase(EndOfUtterance(time=1.6), successor) is None
        assert ledger.rebase(AudioEventStarted(type="music", start=0.1), successor) is None
        assert ledger.rebase(EndOfUtterance(time=2.9), successor) == EndOfUtterance(time=10.9)

    def test_without_keep_words_nothing_accumulates(self) -> None:
        ledger = WordLedger(keep_words=False)
        ledger.rebase(final(word("one", 0.0, 0.5)), session_at(0.0))
        assert ledger.words == []
        assert ledger.emitted_until == 0.5


def _heard(*labels: str) -> SpeakersResult:
    return SpeakersResult(
        speakers=tuple(
            IdentifiedSpeaker(label=label, speaker_identifiers=(label,)) for label in labels
        )
    )


def test_speakers_of_every_session_in_session_order_none_merged() -> None:
    ledger = SpeakerLedger()
    ledger.record(1, "second", _heard("S1"))  # a later session may answer first
    ledger.record(0, "first", _heard("S1"))
    ledger.record(0, "first", _heard("S1", "S2"))  # a session's later answer replaces its own
    assert [(s.session_id, s.label) for s in ledger.result().speakers] == [
        ("first", "S1"),
        ("first", "S2"),
        ("second", "S1"),
    ]
    assert SpeakerLedger().result() == SpeakersResult(speakers=())
