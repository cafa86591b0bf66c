"""Real-time Whisper: decode whole utterances, commit early only when ``max_delay`` demands it.

Whisper has no incremental decoder: every decode hears its window from the start, and its
encoder pass costs most of it (a live decode's encoder sees the window and some padding, not
Whisper's 30 s: :mod:`~speechmatics_modes.local._whisper`). Decisions, and why:

* **Utterances, not fragments.** :class:`~speechmatics_modes.local._speech_detector.SpeechDetector`
  (Silero VAD) finds where speech stops. When a pause of :data:`PAUSE_SECONDS` ends an
  utterance, it is decoded once, with batch's options, and all its words become final: the
  decoder sees each phrase whole, as batch does (in a session waiting for EndOfUtterance,
  from a little before its last final word: :data:`REACH_SECONDS`). Audio the detector
  never calls speech is never decoded, so room tone, music and applause give no words.
* **A sentence hears what follows it, when there is time.** Decoded alone, the end of a
  sentence is heard without the words after it (tiny.en heard J. F. Kennedy's "And so my
  fellow Americans", closed by a 0.8 s pause, as "And so am I fellow Americans"). When
  ``max_delay`` leaves time and the session wants no EndOfUtterance, a closed utterance is
  held (:class:`_Held`): its final decode hears up to :data:`LOOKAHEAD_SECONDS` of what
  follows, and only its own words become final, the rest the partial. At real-time pace with
  ``max_delay`` up to 2 s there is seldom time; audio sent faster than real time has it.
* **Quick turns cost accuracy, so only sessions that ask pay it.** EndOfUtterance follows the
  close of an utterance. A session whose ``end_of_utterance_silence_trigger`` is shorter than
  :data:`PAUSE_SECONDS` gets utterances closed at pauses that short
  (:meth:`~WhisperStream.end_utterances_after`), down to :data:`SHORTEST_PAUSE_SECONDS`;
  any session asking for EndOfUtterance also at quiet stretches (a breath) the detector
  still calls speech, once Whisper heard no word there for a whole pause.
* **A phrase heard alone may give no words.** tiny.en, hearing under a second between two
  pauses, may doubt it all ("ask not", between "my fellow Americans" and "what your
  country"). Speech that gave no words is decoded again with the utterance after it, if that
  begins within :data:`JOIN_GAP_SECONDS`, as batch hears it (:meth:`~WhisperStream._joined`).
* **No left context from earlier utterances.** Adding the previous sentence to the window
  made tiny.en now and then stop after that sentence and
  drop the new one, or hear its last word again with new times; the window starts
  :data:`PRE_ROLL_SECONDS` before the utterance.
* **A pause is decoded before it is sure** (half way through it), when a worker is
  idle. If Whisper heard the last word end a whole pause before the audio does (the
  detector often calls a breath or an echo after it speech), the utterance closes then;
  otherwise, once the pause is long enough, those words are its finals without a second decode.
  Either way EndOfUtterance and ForceEndOfUtterance do not wait for a decode after the pause.
  In a session waiting for EndOfUtterance, the audio that arrives while an interim decode
  runs is heard ahead (:meth:`~WhisperStream.arriving`): a pause beginning there drops that
  decode, so the pause's decode does not wait for it; the dropped decode's words still count
  when they come in time (:meth:`~WhisperStream._salvage`).
* **ForceEndOfUtterance decodes only the tail** (:data:`FLUSH_SECONDS`) of a long open
  utterance: a decode's cost grows with its window, and it should be answered within about
  0.3 s. The words before the tail become final as the latest interim decodes heard them;
  so that there are some even without partials, an open utterance is looked at every
  :data:`LOOK_SECONDS` when the whole engine is idle (never taking a worker a busy engine
  needs). The tail is decoded greedily, in one pass
  (:data:`~speechmatics_modes.local._whisper.QUICK_BEAM_SIZE`). Decoded without the start of
  its sentence, it is heard less well, so EndOfStream, where nobody waits for the answer,
  decodes the whole utterance (or, in a session waiting for EndOfUtterance, from a little
  before its last final: :meth:`~WhisperStream._final_start`). Either end,
  once the server has read it behind audio still being fed, makes the stream :meth:`hurry
  <WhisperStream.hurry>`: the interim decode under way is no longer waited for (with partials
  on, a session decodes every half second of audio, and a forced end waited up to 0.25 s
  for that decode), and none is started until the end.
* **Interim decodes** while an utterance is open: about once a second of wall time when
  partials are wanted (and a worker is idle: partials are optional work), and whenever a word
  would otherwise miss ``max_delay``. A word is made final as late as ``max_delay`` allows
  (by the last decode that, taking as long as decodes lately have, ends within ``max_delay``
  of the word's end), so it is heard with as
  much of what follows as the caller's latency permits; never while it lies within
  :data:`EDGE_SECONDS` of the decoded audio's end. What it is final *as* is put to a vote of
  the last :data:`VOTERS` decodes that heard it whole (:func:`due_finals`): on the first words
  of an utterance tiny.en flickers between versions from one decode to the next. A number
  waits until a word after it shows it was heard whole (:func:`numbers_heard_whole`), unless
  the session's ``max_delay_mode`` is "fixed". Deadlines
  count from when the audio *arrived* (wall time; audio read in a burst after a decode is
  taken to have come at real-time pace), so audio sent faster than real time is decoded in
  large steps.
* **An interim decode reaches back only a little before the last final**
  (:data:`REACH_SECONDS`): the words before it are settled, and the decode needs only enough
  of them to hear the next ones in context, so its cost stays flat however long the speaker
  goes on. So does the decode that closes an utterance in a session that waits for
  EndOfUtterance, which waits for that decode; other sessions' closing decodes hear the
  whole utterance, which measured a little more accurate.
* **Finals are final.** Each decode re-hears words already committed; they are found again by
  aligning the texts (and, failing that, by time) and skipped. No final word starts before the
  previous final ended: starts are clamped to it.
* **Evidence, not phrase lists.** A word overlapping no speech frame is dropped, and
  :func:`~speechmatics_modes.local._whisper.credible` rejects segments Whisper itself doubts.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from itertools import takewhile
from typing import Protocol

import anyio
import numpy as np
import numpy.typing as npt

from speechmatics_modes._exceptions import ServerError
from speechmatics_modes.local._engine import ENGINE_SAMPLE_RATE, EngineWord, StreamUpdate
from speechmatics_modes.local._speech_detector import (
    MIN_SPEECH_SECONDS,
    SileroFrames,
    SpeechDetector,
)

__all__ = [
    "ENTITY_SECONDS",
    "FLUSH_CONTEXT_SECONDS",
    "FLUSH_SECONDS",
    "JOIN_GAP_SECONDS",
    "LOOKAHEAD_SECONDS",
    "MAX_WINDOW_SECONDS",
    "PARTIAL_INTERVAL",
    "PAUSE_SECONDS",
    "REACH_SECONDS",
    "SHORTEST_PAUSE_SECONDS",
    "Decoder",
    "Look",
    "WhisperFailure",
    "WhisperStream",
    "after_committed",
    "due_finals",
    "numbers_heard_whole",
]

Audio = npt.NDArray[np.float32]

PAUSE_SECONDS = 0.4
"""Non-speech this long ends an utterance, whose words then become final, unless the session
asks for quicker turns. Half of it within an utterance starts its decode, before the pause is
sure: sooner (0.1 s) split sentences at short pauses (unpaced WER 0.022 to 0.031)."""
SHORTEST_PAUSE_SECONDS = 0.2
"""The shortest pause that ends an utterance, whatever the session's trigger: the silences
inside words (the closure before a "t" or a "p") last up to about 0.1 s."""
PRE_ROLL_SECONDS = 0.3
"""Audio kept before the first speech frame: Silero fires a little after a word begins."""
MAX_UTTERANCE_SECONDS = 20.0
"""An utterance with no pause is closed after this much speech (Whisper's window is 30 s)."""
MAX_WINDOW_SECONDS = MAX_UTTERANCE_SECONDS + 4.0
"""No decode covers more than this; the audio kept is bounded by it too."""
PARTIAL_INTERVAL = 1.0
"""Wall seconds between two interim decodes made for partials."""
MIN_INTERIM_STEP = 0.5
"""Seconds of new audio an interim decode needs, at least; more when decodes take longer, so
a stream never spends more time decoding than its audio lasts (a server that fell behind,
decoding on every 100 ms chunk, stopped reading its socket and the client's pings timed out)."""
REACH_SECONDS = 3.0
"""An interim decode hears at most this much of its utterance before the last final word (so
does a closing decode that EndOfUtterance waits for: :meth:`WhisperStream._final_start`).

Every interim decode used to hear the open utterance from its start, so in a long one (10 s
without a pause) each decode cost more than the last, and with four live sessions on two
cores the streams fell up to 2 s behind. The words before the last final are settled; the
decode needs only enough of them to hear the next words in context. In a fake-clock run of
the paced dev set with real decodes (``max_delay`` 1 s), the audio decoded fell by 12 % and
the finals' lag p95 1.47 -> 1.36 s, with WER unchanged (0.048; noisy tails 0.070 -> 0.066,
telephone unchanged). Reaching back 2 s saved 21 % but lost two words more. Four paced
sessions through the server (README settings): the last final came within 1.16 s in each of
four rounds, where before three rounds of seven had one past 1.5 s (up to 1.98 s)."""
EDGE_SECONDS = 0.3
"""A word ending this close to the end of the decoded audio may be cut off: never committed
by an interim decode."""
FLUSH_SECONDS = 2.5
"""Most audio a forced flush decodes (ForceEndOfUtterance): a decode's cost grows with
its window (0.16 s for 1 s of audio on one core, 0.44 s for 7 s), and a forced end should be
answered within about 0.3 s. What lies before is made final as earlier decodes heard it."""
FLUSH_CONTEXT_SECONDS = 1.0
"""Audio before the last final that a forced end's decode hears again: the final word whole, so
the decode's words are aligned after it (decoding from its end, Whisper squeezed the next
word into the window's first instant, before that end, and it was lost)."""
LOOK_SECONDS = 2.0
"""An open utterance is looked at (decoded for partials, or on an idle engine for a flush to
come) at least every this many seconds of audio, so a flush finds all but its tail heard."""
VOTERS = 4
"""Interim decodes of an utterance (the latest and those before it) that vote on due words."""
SPEECH_MARGIN = 0.2
"""Slack around a word's times when checking it overlaps speech (Whisper's times are rough)."""
LOOKAHEAD_SECONDS = 2.0
"""Audio after an utterance that its final decode hears, when ``max_delay`` leaves time to wait
for it and nobody waits for EndOfUtterance (:class:`_Held`)."""
ENTITY_SECONDS = 2.0
"""How much longer than ``max_delay`` a number may wait to be heard whole, when the session's
``max_delay_mode`` is "flexible" (:func:`numbers_heard_whole`)."""
JOIN_GAP_SECONDS = 2.0
"""Speech in which a decode heard no words is heard again with speech that begins within this
long after it (:meth:`WhisperStream._joined`), as batch's voice activity filter joins speech
across gaps of up to 2 s."""
UNHEARD_SECONDS = 3.0
"""The longest utterance without words that is heard again with the next
(:data:`JOIN_GAP_SECONDS`): longer speech in which Whisper heard nothing is more likely noise,
and would make the next utterance's decodes cost more."""
HEARING_PIECE_SECONDS = 0.1
"""Fed audio is heard this much at a time (:meth:`WhisperStream.feed`). The server feeds what
came while a decode ran in one go, and a second of it may hold two pauses, each closing an
utterance that needs its own final decode and EndOfUtterance, or a quiet stretch that closes
one only if it is checked while the stretch lasts."""


class WhisperFailure(ServerError):
    """The Whisper engine was used outside ``async with``, or a stream after ``aclose()``."""


class Decoder(Protocol):
    """Decodes audio into words (times from ``offset``); the engine's shared model and queue."""

    async def __call__(
        self,
        audio: Audio,
        offset: float,
        *,
        final: bool,
        deadline: float,
        optional: bool,
        idle: bool = False,
        quick: bool = False,
        late: Callable[[list[EngineWord]], None] | None = None,
    ) -> list[EngineWord] | None:
        """Words heard; ``None`` if ``optional`` and no worker (``idle``: not all) was free.

        ``quick``: a forced end waits for these words, so speed matters more than the last
        bit of accuracy. ``late`` gets the words if the caller stopped waiting for them.
        """
        ...


def _norm(word: EngineWord) -> str:
    return word.text.lower().strip("'")


def after_committed(
    hypothesis: Sequence[EngineWord], committed: Sequence[EngineWord]
) -> list[EngineWord]:
    """The words of ``hypothesis`` that come after ``committed`` (final words it re-heard).

    The texts are aligned first: a re-heard final word can move in time (a word at the end of
    one window is often squeezed to nothing, then given its real length by the next decode),
    so comparing times alone finalised "Captain" twice. Where the last committed word is not
    found near its time, a word counts as new if its midpoint lies after the last final,
    unless it is that final heard again, longer (:func:`_extends`).
    Every new word starts no earlier than the previous one ended. A word the texts say is new
    is kept even if Whisper squeezed it before the last final's end (at that end, lasting no
    time): an earlier decode may have stretched the final word over it ("the" 4.86-5.5 s,
    then "the" 4.86-5.32 and "circumstances" 5.32-5.5), and dropping it lost the word.
    """
    end = committed[-1].end if committed else 0.0
    rest: Sequence[EngineWord] = hypothesis
    if committed:
        matcher = SequenceMatcher(
            None, [_norm(w) for w in committed], [_norm(w) for w in hypothesis], autojunk=False
        )
        blocks = [block for block in matcher.get_matching_blocks() if block.size]
        last = blocks[-1] if blocks else None
        if (
            last is not None
            and last.a + last.size == len(committed)
            and abs(hypothesis[last.b + last.size - 1].end - end) < 1.0
        ):
            rest = hypothesis[last.b + last.size :]
        else:
            rest = [w for w in hypothesis if (w.start + w.end) / 2 > end]
            if rest and _extends(rest[0], committed[-1]):
                rest = rest[1:]
    words: list[EngineWord] = []
    for word in rest:
        if word.start < end:
            word = replace(word, start=end, end=max(word.end, end))
        words.append(word)
        end = word.end
    return words


def _extends(word: EngineWord, final: EngineWord) -> bool:
    """Whether ``word`` is the ``final`` word heard again, longer, over the same time.

    Whisper writes some spoken words as one token: an interim decode that heard "eighteen"
    made "18" final, and the closing decode, hearing "eighteen thirteen", wrote "1813" from
    the same instant. Taken as new, the number was heard twice ("in 18 1813").
    """
    longer = _norm(word) != _norm(final) and _norm(word).startswith(_norm(final))
    return longer and word.start < final.end


@dataclass(frozen=True)
class Look:
    """One interim decode of the open utterance: the words heard, and where its audio ended."""

    words: tuple[EngineWord, ...]
    audio_end: float


def due_finals(
    latest: Look,
    earlier: Sequence[Look],
    committed: Sequence[EngineWord],
    *,
    due_before: float,
) -> list[EngineWord]:
    """The words an interim decode must make final now, as most decodes heard them.

    Args:
        latest: This decode.
        earlier: Earlier interim decodes of the same utterance, oldest first.
        committed: The finals so far.
        due_before: Words ending before this must be final by the next decode.

    The due words are this decode's words (after the finals) that end before ``due_before``
    and not within :data:`EDGE_SECONDS` of its audio's end, where Whisper often hears half a
    word. Each earlier decode that heard that stretch whole votes for what it heard there,
    with Whisper's own confidence (its words' mean probability); the version with the most
    support wins, the latest on a tie. tiny.en flickers on the first words of an utterance
    ("Had he" and "How do you" in turn, the wrong one usually less sure): one decode is a
    guess, several weighed by their confidence are evidence. The words chosen end by the
    latest decode's due words' end: an earlier decode, hearing less, may have stretched its
    last word over the next one, which then began before the final that covered it.
    """
    fresh = after_committed(latest.words, committed)
    limit = min(due_before, latest.audio_end - EDGE_SECONDS)
    due = list(takewhile(lambda word: word.end <= limit, fresh))
    if not due:
        return []
    boundary = due[-1].end
    versions = [due] + [
        [w for w in after_committed(look.words, committed) if (w.start + w.end) / 2 <= boundary]
        for look in reversed(earlier)
        if look.audio_end - EDGE_SECONDS >= boundary
    ]
    support: defaultdict[tuple[str, ...], float] = defaultdict(float)
    for version in versions:
        if version:  # a decode that heard nothing there abstains
            support[_text(version)] += sum(w.confidence for w in version) / len(version)
    chosen = max(versions, key=lambda version: support[_text(version)])
    return [replace(word, end=min(word.end, boundary)) for word in chosen]


def numbers_heard_whole(
    finals: Sequence[EngineWord], latest: Look, *, overdue: float
) -> list[EngineWord]:
    """``finals`` less a number at their end that the speaker may not have finished.

    Whisper writes a spoken number in digits, and a decode that hears the start of one writes
    what it heard so far: "in eighteen thirteen", cut after "eighteen", is "in 18". Made final,
    the number stayed short, for good ("Flight 17" for "Flight 1742"), and the final's end,
    before the rest of the number, made EndOfUtterance look late. A number is made final once
    ``latest`` heard a word that is not a number after it, whole (ending :data:`EDGE_SECONDS`
    before the decode's audio does), or once it ended before ``overdue``: the service's
    ``max_delay_mode`` "flexible", which may wait past ``max_delay`` to finish an entity.
    """
    whole = len(finals)
    while whole and _is_number(finals[whole - 1]) and finals[whole - 1].end > overdue:
        whole -= 1
    if whole == len(finals):
        return list(finals)
    end = finals[-1].end
    after = next((w for w in latest.words if (w.start + w.end) / 2 > end), None)
    if after is not None and not _is_number(after) and after.end <= latest.audio_end - EDGE_SECONDS:
        return list(finals)
    return list(finals[:whole])


_NUMBER_PREFIXES = "$£€¥#'+-"


def _is_number(word: EngineWord) -> bool:
    """Whether Whisper wrote ``word`` as a number ("1813", "$5", "3:30", "4th", "'90s")."""
    return word.text.lstrip(_NUMBER_PREFIXES)[:1].isdigit()


def _samples(data: bytes) -> tuple[Audio, bytes]:
    """The float samples of ``data`` (s16le), and the odd byte left over, if any."""
    whole = len(data) - len(data) % 2
    audio = np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / np.float32(32768)
    return audio, data[whole:]


def _text(words: Sequence[EngineWord]) -> tuple[str, ...]:
    return tuple(_norm(word) for word in words)


@dataclass(frozen=True)
class _PauseDecode:
    """The open utterance decoded (as finals would be) during a pause, up to ``until``."""

    until: float
    words: list[EngineWord]


@dataclass(frozen=True)
class _Span:
    """Where an utterance began and where its speech ended."""

    start: float
    end: float


@dataclass(frozen=True)
class _Dropped:
    """An interim decode dropped for a pause heard ahead (:meth:`WhisperStream.arriving`).

    It ran on to its end on its worker; the words ``max_delay`` made due when it started are
    still due when the pause closes the utterance (:meth:`WhisperStream._salvage`).
    """

    look: Look
    due_before: float


@dataclass(frozen=True)
class _Held:
    """A closed utterance whose final decode waits for the speech that follows it.

    Why: the module's docstring (the Kennedy example).

    A hold lasts at most :data:`LOOKAHEAD_SECONDS` of audio: if the next utterance ends
    first, both are decoded together and made final. Held again, short sentences chained
    into one hold until ``max_delay``, and a server dropping every session after 10 s of
    audio (the rollover benchmark) never saw a final, so the client replayed the same audio
    to one session after another until it gave up.
    """

    start: float
    """Where the utterance's speech began."""
    until: float
    """Where the pause that closed it ended: its words lie before, the next ones after."""
    speech_end: float
    """Where its speech ended: Whisper, hearing on, may stretch the last word into the pause."""
    first_end: float
    """The end of its first word not yet final, as last heard: ``max_delay`` counts from it."""


@dataclass
class _Arrivals:
    """When each stretch of audio arrived (wall time), so deadlines follow the speaker.

    Audio is read only between decodes: what a client sent while the stream decoded is read
    in a burst afterwards, and stamping it when read made it look younger than it was (by up
    to a decode's time), so its words missed ``max_delay``. Audio is taken to have arrived at
    real-time pace after the audio before it, but never before it could have been sent: at
    most ``waited`` (a decode's time) before it was read.
    """

    ends: deque[float]
    walls: deque[float]

    def add(self, audio_end: float, wall: float, *, waited: float) -> None:
        """Audio up to ``audio_end`` was read at ``wall``, having waited at most ``waited``."""
        if self.ends:
            paced = self.walls[-1] + (audio_end - self.ends[-1])
            wall = min(wall, max(paced, wall - waited))
        self.ends.append(audio_end)
        self.walls.append(wall)

    def audio_by(self, wall: float) -> float:
        """How much audio (session seconds) had arrived by ``wall``."""
        index = bisect_right(self.walls, wall)
        return self.ends[index - 1] if index else 0.0

    def forget_before(self, audio: float) -> None:
        while len(self.ends) > 1 and self.ends[1] <= audio:
            self.ends.popleft()
            self.walls.popleft()


class WhisperStream:
    """One real-time session's :class:`StreamingRecognizer` over the engine's shared decoder."""

    joins_backlog = True
    """Audio that came during a decode is taken in one feed: the next decode hears all of it,
    and a pause in it is seen at once (:func:`~speechmatics_modes.local._engine.joins_backlog`)."""

    def __init__(
        self,
        decode: Decoder,
        *,
        max_delay: float,
        partials: bool = True,
        detector: SpeechDetector | None = None,
        clock: Callable[[], float] = time.monotonic,
        lookahead: float = LOOKAHEAD_SECONDS,
    ) -> None:
        self._decode = decode
        self._lookahead = lookahead
        self._max_delay = max_delay
        self._partials = partials
        self._detector = detector or SpeechDetector(SileroFrames(), pause=PAUSE_SECONDS)
        self._clock = clock
        self._audio: Audio = np.zeros(0, dtype=np.float32)
        self._audio_start = 0.0
        self._unheard: Audio = np.zeros(0, dtype=np.float32)
        """Audio fed but not heard yet (:meth:`feed`): it is not in :attr:`_audio`."""
        self._odd_byte = b""
        self._arrivals = _Arrivals(deque(), deque())
        self._committed: list[EngineWord] = []
        self._looks: deque[Look] = deque(maxlen=VOTERS - 1)
        self._partial: tuple[EngineWord, ...] = ()
        self._pause_decode: _PauseDecode | None = None
        self._last_interim = -np.inf
        self._interim_audio_end = 0.0
        self._decode_seconds = 0.6
        self._closed = False
        self._hurried = False
        self._interim_decode: anyio.CancelScope | None = None
        self._turns_wanted = False
        self._flexible = True
        self._held: _Held | None = None
        self._ahead: SpeechDetector | None = None
        """While an interim decode runs in a session waiting for EndOfUtterance: a fork of the
        detector, hearing the audio that arrives meanwhile (:meth:`arriving`)."""
        self._dropped: _Dropped | None = None
        self._utterances = 0
        """Counts utterances closed (or never opened), so a dropped decode's words that come
        after its utterance closed are not taken for the next one's."""
        self._unheard_speech: _Span | None = None
        """The last utterance, if it gave no words (:meth:`_joined`)."""

    @property
    def buffered_seconds(self) -> float:
        """Seconds of audio held for decoding: bounded, however long the session."""
        return (len(self._audio) + len(self._unheard)) / ENGINE_SAMPLE_RATE

    @property
    def _audio_end(self) -> float:
        """Where the audio heard so far ends."""
        return self._audio_start + len(self._audio) / ENGINE_SAMPLE_RATE

    @property
    def _committed_end(self) -> float:
        return self._committed[-1].end if self._committed else 0.0

    async def feed(self, pcm: bytes) -> StreamUpdate:
        """Take audio; decode when an utterance ends, or when partials or ``max_delay`` ask.

        The audio is heard :data:`HEARING_PIECE_SECONDS` at a time, as if fed so, but only
        the last piece may start an interim decode (the others' would hear stale audio), and
        hearing stops at the first piece that made words final or ended an utterance: the
        rest waits for the next feed, or a flush.
        """
        self._check_open()
        audio, self._odd_byte = _samples(self._odd_byte + pcm)
        self._unheard = np.concatenate((self._unheard, audio))
        now = self._clock()
        piece = round(HEARING_PIECE_SECONDS * ENGINE_SAMPLE_RATE)
        update = StreamUpdate(partial=self._partial)
        while len(self._unheard):
            audio, self._unheard = self._unheard[:piece], self._unheard[piece:]
            update = await self._hear(audio, now, newest=not len(self._unheard))
            if update.finals or update.utterance_ended:
                break
        return update

    async def _hear(self, audio: Audio, now: float, *, newest: bool) -> StreamUpdate:
        """Hear one piece of audio read at ``now``; an interim decode only for the ``newest``."""
        self._audio = np.concatenate((self._audio, audio))
        self._arrivals.add(self._audio_end, now, waited=self._decode_seconds)
        ended = self._detector.push(audio)
        if ended:
            last = ended[-1]
            until = last.end + self._detector.pause
            if self._held is not None:  # both in one window, not held again: see _Held
                held, self._held = self._held, None
                return await self._finish(held.start, until, last.end)
            return await self._end_of_speech(self._joined(ended[0].start), until, last.end)
        if self._held is not None:
            if self._hurried or not self._due(self._held, now):
                return StreamUpdate(partial=self._partial)
            return await self._release()
        start = self._detector.utterance_start
        if start is None:  # silence, or speech too short to be words: nothing pending
            self._forget_open()
            self._trim()
            return StreamUpdate()
        start = self._joined(start)
        if self._audio_end - max(start, self._committed_end) >= MAX_UTTERANCE_SECONDS:
            self._detector.close()
            return await self._finish(start, self._audio_end, self._audio_end)
        if self._detector.speech_seconds < MIN_SPEECH_SECONDS:
            return StreamUpdate()  # maybe a click: not worth a decode yet
        if self._pause_decode_due():
            return await self._pause(start)
        self._pause_decode = None  # the speaker went on
        if not newest:
            return StreamUpdate(partial=self._partial)
        return await self._interim(start, now)

    async def flush(self) -> StreamUpdate:
        """Make every word heard so far final, each decoded with all its utterance (EndOfStream)."""
        return await self._end_utterance(hurry=False)

    async def force_end_of_utterance(self) -> StreamUpdate:
        """Make every word heard so far final within about 0.3 s (ForceEndOfUtterance).

        Only the tail of a long open utterance is decoded; its earlier words are final as the
        latest interim decodes heard them (:data:`FLUSH_SECONDS`).
        """
        return await self._end_utterance(hurry=True)

    def arriving(self, pcm: bytes) -> None:
        """Audio read while a feed runs, to be fed after it: a pause in it drops the decode.

        In a session waiting for EndOfUtterance, a turn that ended while an interim decode ran
        waited for that decode before its pause was even heard (the server feeds the audio
        that came meanwhile only after it), then for the pause's own decode: with the machine
        busy, both were slow. A fork of the detector hears that audio as it arrives; once it
        shows the pause that starts the pause's decode, the interim decode is dropped as by
        :meth:`hurry` (it runs on to its end on its worker, unheard), the feed returns, and
        the pause's decode starts on the next worker free.
        """
        ahead = self._ahead
        if ahead is None:
            return
        audio, _ = _samples(pcm)  # the server feeds whole samples
        if ahead.push(audio) or self._pause_decode_due(ahead):
            self._ahead = None
            self._drop_interim_decode()

    def hurry(self) -> None:
        """A flush or forced end is on its way, behind audio still to be fed: skip interim work.

        The interim decode under way, if any, is dropped (it runs on to its end on its worker,
        unheard), and none is made until the flush: its words would be final a moment later
        anyway, and the client is waiting for that answer.
        """
        self._hurried = True
        self._drop_interim_decode()

    def _drop_interim_decode(self) -> None:
        """Stop waiting for the interim decode under way, if any (it runs on, unheard)."""
        if self._interim_decode is not None:
            self._interim_decode.cancel()

    async def _end_utterance(self, *, hurry: bool) -> StreamUpdate:
        self._check_open()
        self._hurried = False
        unheard, self._unheard = self._unheard, self._unheard[:0]
        self._audio = np.concatenate((self._audio, unheard))  # all of it: it ends anyway
        ended = self._detector.push(unheard)
        start = ended[0].start if ended else self._detector.utterance_start
        start = None if start is None else self._joined(start)
        utterance = self._detector.close() or (ended[-1] if ended else None)
        held, self._held = self._held, None
        if held is not None:
            speech_end = held.until if utterance is None else utterance.end
            return await self._finish(held.start, self._audio_end, speech_end, hurry=hurry)
        if start is None or utterance is None:
            self._forget_open()
            return StreamUpdate()
        return await self._finish(start, self._audio_end, utterance.end, hurry=hurry)

    def retune(self, *, max_delay: float, partials: bool) -> None:
        """Take a ``max_delay`` and partials set mid-session (``SetRecognitionConfig``)."""
        self._max_delay = max_delay
        self._partials = partials

    def finish_entities(self, allowed: bool) -> None:
        """Whether a number may wait past ``max_delay`` to be heard whole (``max_delay_mode``).

        Allowed ("flexible", the service's default), :func:`numbers_heard_whole` decides.
        """
        self._flexible = allowed

    def end_utterances_after(self, seconds: float) -> None:
        """Close utterances at pauses as short as the session's EndOfUtterance trigger.

        With :data:`PAUSE_SECONDS` a 0.25 s trigger's EndOfUtterance came up to 0.76 s after
        the last word, 0.49 s on average (0.25 s pauses: 0.70 s and 0.38 s; with quiet
        stretches too, :meth:`_pausing_seconds`: 0.40 s and 0.32 s). Shorter pauses split
        sentences that tiny.en hears better whole (unpaced WER on the dev set 0.031 to 0.040
        at 0.25 s), so only a session that asks for quick turns pays for them.

        Any trigger also has quiet stretches count as pausing (:meth:`_pausing_seconds`).

        Args:
            seconds: The session's ``end_of_utterance_silence_trigger``; 0 (off), or anything
                from :data:`PAUSE_SECONDS` up, keeps the default pause.
        """
        quick = 0 < seconds < PAUSE_SECONDS
        self._turns_wanted = seconds > 0
        self._detector.pause = max(SHORTEST_PAUSE_SECONDS, seconds) if quick else PAUSE_SECONDS

    def _pause_decode_due(self, detector: SpeechDetector | None = None) -> bool:
        """Whether the open utterance has paused half a pause, when its pause is decoded.

        As heard by ``detector``; by default the stream's own (no utterance open: no pause).
        """
        heard = self._detector if detector is None else detector
        return self._pausing_seconds(heard) >= heard.pause / 2

    def _pausing_seconds(self, detector: SpeechDetector | None = None) -> float:
        """How long the speaker seems to have paused: quiet counts too if a turn is awaited.

        As heard by ``detector``; by default the stream's own.

        Silero calls a breath after a phrase speech; in a session asking for EndOfUtterance
        a quiet stretch (:data:`~speechmatics_modes.local._speech_detector.QUIET_DB`) starts
        the early decode of a pause, which ends the utterance only if Whisper heard no word
        in a whole pause. At a 0.25 s trigger EndOfUtterance came at worst 0.40 s after the
        last word instead of 0.70 s. At 0.5 s, through the server at real-time pace, Silero
        alone brought it 0.61-0.74 s after the last word on average, 3-7 of 19 turns past
        0.8 s (six runs); with quiet stretches 0.47-0.66 s, 0-5 past (five runs, four with at
        most one), for those sessions' WER 0.056-0.064 against 0.044-0.056.
        Sessions that want no EndOfUtterance keep Silero's pauses: there quiet stretches split
        sentences at breaths, which tiny.en hears better whole (unpaced WER 0.031 to 0.040).
        """
        heard = self._detector if detector is None else detector
        return heard.quiet_seconds if self._turns_wanted else heard.silence_seconds

    async def aclose(self) -> None:
        """Drop the audio; the model stays with the engine."""
        self._closed = True
        self._audio = self._unheard = np.zeros(0, dtype=np.float32)

    async def _end_of_speech(self, start: float, until: float, speech_end: float) -> StreamUpdate:
        """A pause ended the utterance begun at ``start``: make its words final, or hold them.

        They are held (:class:`_Held`) if ``max_delay`` leaves time to hear all of the
        lookahead, unless the session wants EndOfUtterance (which follows the words) or an end
        is coming. A shorter wait would give the decode little more to hear, and would still
        hold up the next utterance's first decodes.
        """
        held = _Held(start, until, speech_end, self._first_open_end(start, speech_end))
        waits = self._lookahead > 0 and not (self._turns_wanted or self._hurried)
        in_time = self._due_before(self._clock() + self._lookahead) < held.first_end
        if not (waits and in_time):
            return await self._finish(start, until, speech_end)
        self._held = held
        self._pause_decode = None
        return StreamUpdate(partial=self._partial)

    def _first_open_end(self, start: float, speech_end: float) -> float:
        """Where the open utterance's first word not yet final ends, as the latest look heard."""
        if not self._looks:
            return start
        latest = self._looks[-1]
        fresh = after_committed(latest.words, self._committed)
        return fresh[0].end if fresh else min(latest.audio_end, speech_end)

    def _due(self, held: _Held, now: float) -> bool:
        """Whether a held utterance must be decoded now.

        When it heard enough, when ``max_delay`` demands it, or when a partial is wanted: the
        decode is also the next utterance's first look, and partials must not wait for it.
        """
        heard_enough = self._audio_end - held.until >= self._lookahead
        partial_due = self._partials and now - self._last_interim >= PARTIAL_INTERVAL
        return heard_enough or partial_due or self._due_before(now) >= held.first_end

    async def _release(self) -> StreamUpdate:
        """Decode the held utterance with what followed it: its words final, the rest partial.

        Whisper heard on past the pause, so its punctuation, not the pause, says whether the
        sentence ended there ("And so my fellow Americans, ask not"): the update does not
        claim the utterance ended, which would put a full stop after the comma. The decode is
        also the first look at the next utterance, and votes on its words: heard with the
        sentence before them, they are heard better than by a window that starts at them
        (which lost a quick "and that" at the start of one).
        """
        assert self._held is not None
        held, self._held = self._held, None
        self._last_interim = self._clock()
        words = await self._decode_window(
            held.start, self._audio_end, final=True, deadline=self._clock()
        )
        assert words is not None
        latest = held.speech_end + SPEECH_MARGIN
        update = self._close(
            [
                replace(word, end=max(word.start, min(word.end, latest)))
                for word in words
                if (word.start + word.end) / 2 <= held.until
            ]
        )
        self._partial = tuple(after_committed(words, self._committed))
        self._looks.append(Look(tuple(words), self._audio_end))
        return replace(update, partial=self._partial, utterance_ended=False)

    async def _finish(
        self, start: float, until: float, speech_end: float, *, hurry: bool = False
    ) -> StreamUpdate:
        """Make every word up to ``until`` final.

        No decode is needed when a pause decode covered the speech (which ended at
        ``speech_end``). In a ``hurry`` (ForceEndOfUtterance) at most :data:`FLUSH_SECONDS`
        are decoded: the words before them become final as the latest looks heard them.
        Where it decodes from: :meth:`_final_start`.
        """
        done = self._pause_decode
        settled: list[EngineWord] = []
        if done is not None and done.until >= speech_end:
            words: list[EngineWord] | None = done.words
        else:
            begin, context = self._final_start(start)
            if hurry and begin - context < until - FLUSH_SECONDS:
                settled = self._settle(until - FLUSH_SECONDS)
                if self._committed_end > begin:
                    begin, context = self._committed_end, FLUSH_CONTEXT_SECONDS
            words = await self._decode_window(
                begin, until, final=True, deadline=self._clock(), context=context, quick=hurry
            )
        assert words is not None
        return self._close(words, settled, span=_Span(start, speech_end))

    def _joined(self, start: float) -> float:
        """Where the utterance begun at ``start`` is decoded from: with unheard speech before it.

        Speech that gave no words (a short phrase tiny.en doubted, heard alone: see the
        module's docstring) is decoded again with this utterance if it ended at most
        :data:`JOIN_GAP_SECONDS` before it; batch would hear both in one window.
        """
        unheard = self._unheard_speech
        if unheard is None:
            return start
        if start - unheard.end > JOIN_GAP_SECONDS:
            self._unheard_speech = None
            return start
        return min(start, unheard.start)

    def _open_start(self) -> float | None:
        """Where the audio of the open utterance begins (:meth:`_joined`).

        With none open: where speech that gave no words begins, while the next may join it.
        """
        start = self._detector.utterance_start
        if start is not None:
            return self._joined(start)
        unheard = self._unheard_speech
        joinable = JOIN_GAP_SECONDS + PAUSE_SECONDS  # the next speech may begin that late
        if unheard is not None and self._audio_end - unheard.end <= joinable:
            return unheard.start
        return None

    def _gave_no_words(self, utterance: _Span) -> bool:
        """Whether ``utterance`` is a short phrase that gave no final word."""
        return (
            self._committed_end <= utterance.start
            and utterance.end - utterance.start <= UNHEARD_SECONDS
        )

    def _settle(self, cut: float) -> list[EngineWord]:
        """Make final, as the latest looks heard them, the open words that end before ``cut``."""
        if not self._looks:
            return []
        *earlier, latest = self._looks
        settled = due_finals(latest, earlier, self._committed, due_before=cut)
        self._commit(settled)
        return settled

    async def _pause(self, start: float) -> StreamUpdate:
        """A pause not yet long enough to end the utterance: decode it early.

        Only on an idle worker: decoding at once when ``max_delay`` made words due (with
        batch's options, as the close does) took both cores with four live sessions at the
        pauses inside sentences, and the streams fell up to 3 s behind. The utterance closes
        as soon as Whisper's last word ended a whole pause before the audio does (the
        detector may still be hearing a breath), checked again with each chunk of the pause:
        no second decode is needed, unless the utterance is held to be decoded with what
        follows it (:meth:`_end_of_speech`).

        A session that waits for EndOfUtterance waits for this decode, so there it is quick
        (greedy, with an interim decode's padding): through the server at a 0.25 s trigger,
        EndOfUtterance came 0.28-0.31 s after the last word on average instead of 0.39-0.40 s,
        at worst 0.50-0.51 s instead of 0.61-0.74 s, for 0.4-0.8 points of those sessions' WER
        (docs/engines.md). Other sessions keep batch's options.
        """
        if self._pause_decode is None:
            until = self._audio_end
            begin, context = self._final_start(start)
            words = await self._interim_decode_window(
                begin,
                until,
                final=True,
                deadline=self._clock(),
                optional=True,
                context=context,
                quick=self._turns_wanted,
            )
            if words is None:
                return StreamUpdate(partial=self._partial)
            self._pause_decode = _PauseDecode(until, words)
        heard = after_committed(self._pause_decode.words, self._committed)
        if heard and heard[-1].end > self._audio_end - self._detector.pause:
            return StreamUpdate(partial=self._partial)
        self._detector.close()
        return await self._end_of_speech(start, self._audio_end, self._pause_decode.until)

    def _close(
        self,
        words: Sequence[EngineWord],
        settled: Sequence[EngineWord] = (),
        *,
        span: _Span | None = None,
    ) -> StreamUpdate:
        """The open utterance ended with ``words``: the new ones become final.

        They follow the ``settled`` ones, which a forced end made final just before, and the
        words an interim decode dropped for the pause found due (:meth:`_salvage`). If none
        was heard, the utterance's ``span`` is kept to be heard again with the next one
        (:meth:`_joined`).
        """
        salvaged = self._salvage()
        fresh = after_committed(words, self._committed)
        self._commit(fresh)
        finals = (*settled, *salvaged, *fresh)
        self._unheard_speech = span if span and self._gave_no_words(span) else None
        self._forget_open()
        self._trim()
        return StreamUpdate(finals, (), utterance_ended=True)

    def _forget_open(self) -> None:
        """No utterance is open any more: its looks, partial and pause decode are gone."""
        self._looks.clear()
        self._partial = ()
        self._pause_decode = None
        self._dropped = None
        self._utterances += 1

    def _salvage(self) -> list[EngineWord]:
        """Make final the words due when an interim decode dropped for a pause started.

        Dropping it (:meth:`arriving`) let the pause's decode start at once, but that decode
        is greedy in a session waiting for EndOfUtterance, and it decided words ``max_delay``
        had made due, which the dropped decode would have made final with its beam and the
        looks' vote: through the server at a 0.5 s trigger that cost 0.4-1.2 points of WER.
        The dropped decode runs to its end anyway, and usually before the pause's: its
        words are taken as if it had been waited for (they come with the close, a little
        later than they would have). If they come too late, the pause's decode's words are
        final instead.
        """
        dropped, self._dropped = self._dropped, None
        if dropped is None:
            return []
        finals = self._due_words(dropped.look, dropped.due_before)
        self._commit(finals)
        return finals

    def _due_words(self, look: Look, due_before: float) -> list[EngineWord]:
        """The words ``look`` makes final (:func:`due_finals`, :func:`numbers_heard_whole`)."""
        finals = due_finals(look, self._looks, self._committed, due_before=due_before)
        if self._flexible:
            finals = numbers_heard_whole(finals, look, overdue=due_before - ENTITY_SECONDS)
        return finals

    async def _interim(self, start: float, now: float) -> StreamUpdate:
        """Between pauses: a partial, and whichever words ``max_delay`` makes due."""
        if self._audio_end - self._interim_audio_end < self._step:
            return StreamUpdate(partial=self._partial)
        oldest = max(start, self._committed_end)
        due_before = max(self._due_before(now), self._due_by_audio(oldest))
        must = due_before > oldest + EDGE_SECONDS
        wanted = self._partials and now - self._last_interim >= PARTIAL_INTERVAL
        looked = self._looks[-1].audio_end if self._looks else oldest
        stale = self._audio_end - max(oldest, looked) >= LOOK_SECONDS
        may_look = (wanted or stale) and not self._turn_may_be_ending()
        if not (must or may_look):
            return StreamUpdate(partial=self._partial)
        self._last_interim = now
        self._interim_audio_end = self._audio_end
        deadline = now + (0.0 if must else self._max_delay)
        begin, context = self._recent_start(start)
        audio_end = self._audio_end
        with self._hearing_ahead() as ahead:
            words = await self._interim_decode_window(
                begin,
                audio_end,
                final=False,
                deadline=deadline,
                optional=not must,
                idle=not (must or wanted),
                context=context,
                late=self._keep_dropped(audio_end, due_before) if ahead else None,
            )
        if words is None:
            return StreamUpdate(partial=self._partial)
        self._dropped = None  # the speaker went on: this decode decides what is due now
        look = Look(tuple(words), audio_end)
        finals = self._due_words(look, due_before)
        self._commit(finals)
        self._looks.append(look)
        self._partial = tuple(after_committed(words, self._committed))
        self._trim()
        return StreamUpdate(tuple(finals), self._partial)

    def _keep_dropped(
        self, audio_end: float, due_before: float
    ) -> Callable[[list[EngineWord]], None]:
        """Where the words of an interim decode (up to ``audio_end``) go if it is dropped."""
        utterance = self._utterances

        def keep(words: list[EngineWord]) -> None:
            if self._utterances == utterance:  # still open
                self._dropped = _Dropped(Look(tuple(words), audio_end), due_before)

        return keep

    @contextmanager
    def _hearing_ahead(self) -> Iterator[bool]:
        """In a session waiting for EndOfUtterance, hear the audio arriving meanwhile.

        Yields whether it does (:meth:`arriving`).
        """
        if self._turns_wanted:
            self._ahead = self._detector.fork()
            self._ahead.push(self._unheard)
        try:
            yield self._ahead is not None
        finally:
            self._ahead = None

    def _turn_may_be_ending(self) -> bool:
        """Whether a client may be waiting for this turn's end: the audio ends in a pause.

        A stream decodes one window at a time, so an interim decode started as a pause begins
        holds up the pause's own decode, and EndOfUtterance with it, by up to a decode's time.
        In a session asking for EndOfUtterance only the decodes ``max_delay`` needs are made
        there; partials wait until the speaker goes on (a chunk later, if the pause was a stop
        consonant's silence).
        """
        return self._turns_wanted and self._pausing_seconds() > 0

    def _due_before(self, now: float) -> float:
        """Words ending before this must be final now, or miss ``max_delay``.

        The next decode can start a :attr:`_step` from now and ends a decode's time after that.
        """
        next_answer = now + self._step + self._decode_seconds
        return self._arrivals.audio_by(next_answer - self._max_delay)

    def _due_by_audio(self, oldest: float) -> float:
        """Words ending before this are due by the audio that followed them, whatever the clock.

        ``max_delay`` counts wall time from when the audio arrived, so audio sent faster than
        real time was decoded in large steps, and a stream's finals could wait for more audio
        than a session lived: a server dropping every session after 10 s of audio, sent at
        twice real time, never sent a final for a 10 s utterance, and the client replayed it
        to one session after another. Once the open words' oldest has ``max_delay`` of audio
        after it, all with half of that after them are due, so such audio is decoded in steps
        of about half ``max_delay``.
        """
        if self._audio_end + self._step - self._max_delay <= oldest + EDGE_SECONDS:
            return 0.0
        return self._audio_end - self._max_delay / 2

    @property
    def _step(self) -> float:
        """Seconds of new audio the next interim decode waits for (:data:`MIN_INTERIM_STEP`)."""
        return max(MIN_INTERIM_STEP, self._decode_seconds)

    async def _interim_decode_window(
        self,
        start: float,
        until: float,
        *,
        final: bool,
        deadline: float,
        optional: bool,
        idle: bool = False,
        context: float = PRE_ROLL_SECONDS,
        quick: bool = False,
        late: Callable[[list[EngineWord]], None] | None = None,
    ) -> list[EngineWord] | None:
        """Decode a window whose words are not needed yet; ``None`` if :meth:`hurry` dropped it.

        ``late`` gets its words if it was dropped.
        """
        if self._hurried:
            return None
        with anyio.CancelScope() as self._interim_decode:
            try:
                return await self._decode_window(
                    start,
                    until,
                    final=final,
                    deadline=deadline,
                    optional=optional,
                    idle=idle,
                    context=context,
                    quick=quick,
                    late=late,
                )
            finally:
                self._interim_decode = None
        return None

    async def _decode_window(
        self,
        start: float,
        until: float,
        *,
        final: bool,
        deadline: float,
        optional: bool = False,
        idle: bool = False,
        context: float = PRE_ROLL_SECONDS,
        quick: bool = False,
        late: Callable[[list[EngineWord]], None] | None = None,
    ) -> list[EngineWord] | None:
        """Decode from ``context`` seconds before ``start`` to ``until``; keep speech's words.

        ``late`` gets them (speech's) if the caller stopped waiting.
        """
        begin = self._window_start(start, until, context)
        first = round((begin - self._audio_start) * ENGINE_SAMPLE_RATE)
        last = round((until - self._audio_start) * ENGINE_SAMPLE_RATE)
        began = self._clock()
        words = await self._decode(
            self._audio[max(0, first) : last],
            self._audio_start + max(0, first) / ENGINE_SAMPLE_RATE,
            final=final,
            deadline=deadline,
            optional=optional,
            idle=idle,
            quick=quick,
            late=None if late is None else lambda words: late(self._spoken(words)),
        )
        if words is None:
            return None
        self._decode_seconds = 0.7 * self._decode_seconds + 0.3 * (self._clock() - began)
        return self._spoken(words)

    def _spoken(self, words: list[EngineWord]) -> list[EngineWord]:
        """The ``words`` that overlap speech: the detector's evidence against made-up words."""
        return [
            word
            for word in words
            if self._detector.had_speech(word.start - SPEECH_MARGIN, word.end + SPEECH_MARGIN)
        ]

    def _final_start(self, start: float) -> tuple[float, float]:
        """Where a decode that closes the utterance begun at ``start`` starts, and its context.

        From its start, so the words still open are heard with all their sentence, unless the
        session waits for EndOfUtterance, which waits for this decode: then it reaches back as
        an interim decode does (:meth:`_recent_start`). Through the server at real-time pace
        (``max_delay`` 1 s) that brought EndOfUtterance at a 0.5 s trigger from 0.98-1.19 s to
        0.84-1.14 s after the last word on average, and the worst from 1.74-2.31 s to
        1.35-1.94 s; decoding from the start cost a long utterance's close up to 1 s.
        """
        if self._turns_wanted:
            return self._recent_start(start)
        return start, PRE_ROLL_SECONDS

    def _recent_start(self, start: float) -> tuple[float, float]:
        """Where a decode of the utterance begun at ``start`` starts, and its context.

        In a long utterance: at a final word's end (between two words), at most
        :data:`REACH_SECONDS` before the last final, with no audio before it.
        """
        reach = self._committed_end - REACH_SECONDS
        if reach <= start:
            return start, PRE_ROLL_SECONDS
        return self._between_words_from(reach), 0.0

    def _window_start(self, start: float, until: float, context: float = PRE_ROLL_SECONDS) -> float:
        """Where a decode ending at ``until`` begins: just before the utterance's speech.

        A very long utterance starts at a final word's end instead, within Whisper's 30 s.
        """
        begin = start - context
        if until - begin > MAX_WINDOW_SECONDS:
            reach = until - MAX_UTTERANCE_SECONDS
            begin = self._between_words_from(reach)
        return max(begin, self._audio_start)

    def _between_words_from(self, reach: float) -> float:
        """Where a window reaching back to ``reach`` starts: between two words.

        At the end of the first final word ending there or later, so that the window cuts no
        word it hears; at ``reach`` if none does.
        """
        return next((w.end for w in self._committed if w.end >= reach), reach)

    def _commit(self, finals: Sequence[EngineWord]) -> None:
        self._committed.extend(finals)

    def _trim(self) -> None:
        """Forget audio, words and frames no later decode can reach."""
        start = self._held.start if self._held else self._open_start()
        horizon = self._window_start(self._audio_end if start is None else start, self._audio_end)
        samples = round((horizon - self._audio_start) * ENGINE_SAMPLE_RATE)
        if samples <= 0:
            return
        self._audio = self._audio[samples:]
        self._audio_start += samples / ENGINE_SAMPLE_RATE
        self._committed = [w for w in self._committed if w.end > self._audio_start] or (
            self._committed[-1:]
        )
        self._detector.forget_before(self._audio_start - SPEECH_MARGIN)
        self._arrivals.forget_before(self._audio_start)

    def _check_open(self) -> None:
        if self._closed:
            raise WhisperFailure("the streaming recogniser is closed")
