"""The proof on real speech: session switches change (almost) nothing.

Half a minute of tests/data clips, joined with 1 s pauses, is transcribed three times by the
local server: once in one session (the reference), then side by side once with
sessions limited to a few seconds of audio (planned handovers), once with the server dropping
every connection after a few seconds of audio (reconnections with replay). Each run's words
must match the reference: none duplicated, hardly any missing, times monotonic and close to the
reference's. Limits and drops count audio, not wall time, so a loaded machine changes how long
the test takes, not where sessions end.

The engine is pocketsphinx, pinned. Whisper decodes a live stream at about 0.9x real time on
two cores and admits one live session per decode worker, so a handover (two sessions at once)
would be refused and three passes would take minutes; pocketsphinx decodes several streams at
once, faster than real time, and what it hears depends only on the audio it is sent, which is
exactly what a switch changes.
"""

from __future__ import annotations

import difflib
import itertools
import math
from dataclasses import dataclass

import anyio
import pytest

from benchmarks import joined_speech
from speechmatics_modes import (
    AudioFormat,
    Reconnected,
    RolloverPolicy,
    SessionRollover,
    StreamEvent,
    stream,
)
from speechmatics_modes.local import Faults, LocalServer, SocketFault
from tests.conftest import Clip, final_words

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ENGINE = "pocketsphinx"
RATE = 16000
PAUSE_SECONDS = 1.0
FORMAT = AudioFormat(encoding="pcm_s16le", sample_rate=RATE, chunk_size=3200)
SPEECH_SECONDS = 28.0
"""About half a minute: each run costs pocketsphinx ~0.4 CPU seconds per second of audio."""
MAX_CLIP_SECONDS = 8.0
"""Only clips shorter than this, so that a pause always comes in time for a handover."""
SESSION_SECONDS = 15.0
"""The server's session limit, in seconds of audio received: wall time would put the limit,
and so the switches, wherever the machine's load put them. The first warning, a quarter of the
way in, starts the handover at the next pause; the limit leaves room for two clips and a pause
after the warning, so however long the next session takes to start the switch lands at a pause
rather than at the limit."""
DROP_AFTER_SECONDS = 8.0
"""The server drops every connection once it has received this much audio. A new session
resumes after the last final word, so this must exceed the longest wait for a final (a 1 s
pause, then up to ``max_delay``, 4 s, of speech): at 5 s a session could end just before its
first final, and every one after it replayed the same audio and ended the same way."""
POLICY = RolloverPolicy(
    backoff_initial=0.05, backoff_max=0.2, backoff_jitter=0.5, healthy_after=1.0, max_attempts=5
)
TIME_TOLERANCE = 0.3
"""Seconds a matched word's start may differ from the reference's: the engine re-segments a
little near a switch, but rebasing onto the sample clock must not drift."""
LOST_PER_SWITCH = 1
"""Words a switch may lose: a cut inside a word (the deadline forced it, or the pause rule took
a quiet consonant for a pause) leaves two halves the engine may not hear as a word at all.
Pauses make that rare: at most one per switch, and at most 2% of the words."""
MISHEARD_SHARE = 0.2
"""Words a run may hear differently from the reference: pocketsphinx adapts to the voice over a
session, so a fresh session hears its first seconds a little differently (not always worse).
Such words are still there, at the same time; they are reported, and bounded loosely (measured:
11-15% with six to twelve switches in a minute; the reference run itself is no ground truth)."""

Timed = list[tuple[str, float, float]]


@dataclass
class Comparison:
    """A run's words against the reference's."""

    lost: int
    """Reference words that no word of the run overlaps in time: audio that yielded nothing."""
    misheard: int
    """Reference words the run has no match for in sequence, though something was heard."""
    duplicated: int
    """Consecutive equal words overlapping in time: one word emitted twice."""
    backwards: int
    """Words that start before the previous one."""
    worst_drift: float
    """The largest start-time difference between a matched word and the reference's."""


async def transcribe_live(
    server: LocalServer, pcm: bytes, policy: RolloverPolicy | None
) -> tuple[Timed, list[StreamEvent]]:
    chunks = [pcm[i : i + FORMAT.chunk_size] for i in range(0, len(pcm), FORMAT.chunk_size)]
    events: list[StreamEvent] = []
    async with stream(
        iter(chunks), settings=server.settings(), audio_format=FORMAT, rollover=policy
    ) as feed:
        async for event in feed:
            events.append(event)
    words = final_words(events)
    return words, events


def compare(words: Timed, reference: Timed) -> Comparison:
    matcher = difflib.SequenceMatcher(
        a=[w[0] for w in reference], b=[w[0] for w in words], autojunk=False
    )
    unmatched = 0
    drifts = [0.0]
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            drifts += [
                abs(words[b][1] - reference[a][1])
                for a, b in zip(range(a1, a2), range(b1, b2), strict=True)
            ]
        else:
            unmatched += a2 - a1
    lost = sum(1 for word in reference if not _overlapped(word, words))
    pairs = list(itertools.pairwise(words))
    return Comparison(
        lost=lost,
        misheard=unmatched - lost,
        duplicated=sum(1 for a, b in pairs if a[0] == b[0] and b[1] < a[2]),
        backwards=sum(1 for a, b in pairs if b[1] < a[1]),
        worst_drift=max(drifts),
    )


def _overlapped(word: tuple[str, float, float], words: Timed) -> bool:
    _, start, end = word
    return any(other_start < end and start < other_end for _, other_start, other_end in words)


def assert_matches(comparison: Comparison, reference: Timed, switches: int) -> None:
    assert comparison.duplicated == 0
    assert comparison.backwards == 0
    assert comparison.lost <= min(LOST_PER_SWITCH * switches, int(0.02 * len(reference)))
    assert comparison.misheard <= MISHEARD_SHARE * len(reference)
    assert comparison.worst_drift <= TIME_TOLERANCE


async def test_handovers_and_drops_on_real_speech_match_the_reference(
    speech_clips: list[Clip],
) -> None:
    short = [clip for clip in speech_clips if clip.duration < MAX_CLIP_SECONDS]
    pcm, _ = joined_speech(
        sorted(short, key=lambda c: c.path.name), SPEECH_SECONDS, pause_seconds=PAUSE_SECONDS
    )
    drops = Faults(
        socket=SocketFault(after_audio_seconds=DROP_AFTER_SECONDS, close_code=1011, sessions=None)
    )
    async with LocalServer(engine=ENGINE) as server:  # alone: it starts the decoder processes
        reference, _ = await transcribe_live(server, pcm, POLICY)
    servers = {
        "rolled": LocalServer(
            engine=ENGINE, max_session_seconds=SESSION_SECONDS, session_clock="audio"
        ),
        "dropped": LocalServer(engine=ENGINE, faults=drops),
    }
    runs: dict[str, tuple[Timed, list[StreamEvent]]] = {}

    async def run(name: str) -> None:
        async with servers[name] as server:
            runs[name] = await transcribe_live(server, pcm, POLICY)

    async with anyio.create_task_group() as group:  # side by side: nothing depends on speed
        for name in servers:
            group.start_soon(run, name)
    (rolled, rolled_events), (dropped, dropped_events) = runs["rolled"], runs["dropped"]

    seconds = len(pcm) / FORMAT.bytes_per_second
    handovers = [e for e in rolled_events if isinstance(e, SessionRollover)]
    cut_at_limit = [e for e in rolled_events if isinstance(e, Reconnected)]
    reconnects = sum(isinstance(e, Reconnected) for e in dropped_events)
    rolled_vs_reference = compare(rolled, reference)
    dropped_vs_reference = compare(dropped, reference)
    print(
        f"\n{seconds:.0f} s of speech, reference {len(reference)} words\n"
        f"handovers: {len(handovers)} (cut at the limit: {len(cut_at_limit)}), "
        f"{rolled_vs_reference}\nreconnects: {reconnects}, {dropped_vs_reference}"
    )
    # The rolled run switches only when warned (at a pause) or cut at the audio limit. How
    # many of its switches are handovers is a race (the next session must start before the
    # current one has been sent the rest of its 15 s), so only their sum is bounded: no session
    # carries more than SESSION_SECONDS of the stream.
    assert {e.reason for e in handovers} <= {"warning"}
    assert all("session_timeout" in e.cause for e in cut_at_limit)
    switches = len(handovers) + len(cut_at_limit)
    assert switches >= math.ceil(seconds / SESSION_SECONDS) - 1
    assert reconnects >= int(SPEECH_SECONDS // DROP_AFTER_SECONDS)  # at most 8 s a session
    assert_matches(rolled_vs_reference, reference, switches)
    assert_matches(dropped_vs_reference, reference, reconnects)
