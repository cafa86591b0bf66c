"""Live Whisper streams on a fake clock: real decodes, fixed costs, the same numbers every run.

``python -m benchmarks.simulate [--category ...] [--setting ...] [--load ...]`` (all by
default). Writes ``bench-results/simulate.json`` and prints a table.

Why: the paced rows of the engines benchmark measure wall time on a shared 2-core machine, and
from one run to the next a busy neighbour moves them more than most changes to the stream's
policy do (when to decode, what to make final, when a turn ends). Here the stream code runs
as the server runs it, each session through the server's own session state machine, and every
decode is a real Whisper decode, but the clock moves only by what the decode *would* cost on
one core (:func:`decode_cost`, by the kind of decode), times a ``load`` factor standing in for
a busy machine. The audio arrives in 100 ms messages at real-time pace on that clock, each
when its last sample is spoken (as from a microphone); the audio that arrives during a decode
is shown to the stream as the server shows it (``arriving``), and then fed in one piece.
Decodes are deterministic, so the same code gives the same figures, and two commits compared
differ only by what changed between them.

What it leaves out: the socket, the client, other sessions, and CPU contention except through
``load``. Two decodes may run at once (the server's two workers on two cores): a decode the
stream stopped waiting for holds a worker until its cost is spent. Use the engines benchmark
for what users see; use this one to weigh a policy change.

Figures per category of the dev set, stream setting and load: WER of the finals (with batch's
on the same sounds beside it), the finals' lag (clock seconds from a word's end arriving to its
final, p95 and worst), EndOfUtterance's delay after the turn's last final word (mean, worst,
and how many turns missed the target of trigger + 0.3 s), and decode seconds per audio second.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import os
import statistics
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio.lowlevel
import ctranslate2
import numpy as np
import numpy.typing as npt

from benchmarks import RATE
from benchmarks._report import publish
from benchmarks._wer import word_error_rate
from benchmarks.devset import (
    Sound,
    joined,
    noisy_tails,
    non_speech,
    phrase_alone,
    speech_like,
    telephone,
)
from benchmarks.engine_accuracy import CHUNK_BYTES, load_clips, text
from speechmatics_modes.local import EngineWord, SessionLimits
from speechmatics_modes.local._engine import arriving, hurry, retune
from speechmatics_modes.local._rt_protocol import Feed, OpenStream, RealtimeProtocol, Send
from speechmatics_modes.local._whisper import SHORTEST_WINDOW_SECONDS, WhisperEngine
from speechmatics_modes.local._whisper_stream import WhisperStream

RESULTS = Path("bench-results") / "simulate.json"
CHUNK_SECONDS = CHUNK_BYTES / (2 * RATE)
WORKERS = 2
"""Decodes that may run at once, as on the server's default two workers."""
TURN_SILENCE_SECONDS = 2.0
"""Silence after each sound in sessions asking for EndOfUtterance, so the last turn ends."""
SEED = 20_261_203
"""Whisper samples when its checks reject a greedy decode (temperature fallback): with one
worker thread seeded so, the same run draws the same numbers."""
EOU_ALLOWANCE = 0.3
"""EndOfUtterance's target: at most the trigger plus this after the turn's last word."""


DECODE_COSTS = {"interim": (0.034, 0.049), "final": (0.067, 0.060), "quick": (0.023, 0.039)}
"""Seconds one core spends on a live decode, fixed and per second of window, by kind: interim
(beam 5, one pass), final (batch's options) and quick (greedy: a forced end, or the pause of a
session waiting for EndOfUtterance). Fitted to medians on the machine the docs' tables come
from, one thread per decode as the server's workers run (7 s of window: 0.34, 0.50, 0.31 s)."""


def decode_cost(window_seconds: float, *, final: bool, quick: bool) -> float:
    """Seconds one core spends on a live decode of this much audio (:data:`DECODE_COSTS`)."""
    fixed, per_second = DECODE_COSTS["quick" if quick else "final" if final else "interim"]
    return fixed + per_second * window_seconds


@dataclass(frozen=True)
class Setting:
    """What a session asks for: the README's live settings, with or without turns."""

    name: str
    max_delay: float
    trigger: float = 0.0
    """``end_of_utterance_silence_trigger``; 0: no EndOfUtterance."""


SETTINGS = (
    Setting("max_delay 1 s", 1.0),
    Setting("max_delay 2 s", 2.0),
    Setting("max_delay 1 s, turns at 0.25 s", 1.0, 0.25),
    Setting("max_delay 1 s, turns at 0.5 s", 1.0, 0.5),
)
LOADS = (1.0, 2.0)
"""Decode cost factors: 1 is one idle core per decode; 2, a machine busy with other work."""


class Clock:
    """The simulation's time: moved only by the :class:`Timeline`."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Timeline:
    """What happens when on the fake clock: audio messages arriving, decodes ending.

    Each arriving message goes to ``on_audio`` at its instant; :meth:`advance_to` gets there
    event by event, with a checkpoint after each, so a stream that stops waiting for a decode
    when audio arrives (``arriving``) is cancelled at that instant, as on the server.
    """

    def __init__(self, clock: Clock, messages: Sequence[tuple[float, bytes]]) -> None:
        self.clock = clock
        self._messages = deque(messages)
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self.on_audio: Callable[[bytes], None] = lambda pcm: None

    @property
    def audio_left(self) -> bool:
        return bool(self._messages)

    @property
    def next_audio(self) -> float:
        return self._messages[0][0]

    def at(self, when: float, event: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._order), event))

    async def advance_to(self, when: float) -> None:
        while True:
            audio = self._messages[0][0] if self._messages else np.inf
            other = self._events[0][0] if self._events else np.inf
            if min(audio, other) > when:
                break
            self.clock.now = max(self.clock.now, min(audio, other))
            if audio <= other:
                self.on_audio(self._messages.popleft()[1])
            else:
                heapq.heappop(self._events)[2]()
            await anyio.lowlevel.checkpoint()
        self.clock.now = max(self.clock.now, when)


class CostedDecoder:
    """The engine's real decode, charged :func:`decode_cost` times ``load`` on the fake clock.

    Optional decodes are skipped when no worker is free, as the engine's queue skips them.
    """

    def __init__(self, engine: WhisperEngine, timeline: Timeline, load: float) -> None:
        self._engine = engine
        self._timeline = timeline
        self._load = load
        self._busy_until = [0.0] * WORKERS
        self.decoded_seconds = 0.0
        """Clock seconds spent decoding, dropped decodes included."""

    def _free(self) -> list[int]:
        now = self._timeline.clock.now
        return [index for index, until in enumerate(self._busy_until) if until <= now]

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
        seconds = len(audio) / RATE
        if seconds < SHORTEST_WINDOW_SECONDS:
            return []
        if optional and len(self._free()) < (WORKERS if idle else 1):
            return None
        while not self._free():
            await self._timeline.advance_to(min(self._busy_until))
        words = await self._engine.decode(audio, offset, final=final, deadline=0.0, quick=quick)
        assert words is not None
        cost = self._load * decode_cost(seconds, final=final, quick=quick)
        done = self._timeline.clock.now + cost
        self._busy_until[self._free()[0]] = done
        self.decoded_seconds += cost
        try:
            await self._timeline.advance_to(done)
        except BaseException:  # the stream stopped waiting: the decode ends all the same
            if late is not None:
                self._timeline.at(done, partial(late, words))
            raise
        return words


@dataclass
class Heard:
    """One simulated session's output, on its clock."""

    words: list[str] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    turn_delays: list[float] = field(default_factory=list)
    broken: int = 0
    """Final words starting before the previous final ended (must stay 0)."""
    _last_end: float | None = None
    _turn_end: float | None = None

    def take(self, actions: Sequence[object], now: float) -> None:
        for action in actions:
            if not isinstance(action, Send):
                continue
            message = action.message
            if message["message"] == "AddTranscript":
                self._finals([r for r in message["results"] if r["type"] == "word"], now)
            elif message["message"] == "EndOfUtterance" and self._turn_end is not None:
                self.turn_delays.append(now - self._turn_end)
                self._turn_end = None

    def _finals(self, words: list[dict[str, Any]], now: float) -> None:
        for word in words:
            if self._last_end is not None and word["start_time"] < self._last_end:
                self.broken += 1
            self._last_end = word["end_time"]
            self.words.append(word["alternatives"][0]["content"])
            self.lags.append(now - word["end_time"])
        if words:
            self._turn_end = words[-1]["end_time"]


def _start_message(setting: Setting) -> str:
    config: dict[str, Any] = {"language": "en", "max_delay": setting.max_delay}
    config["enable_partials"] = True
    if setting.trigger:
        config["conversation_config"] = {"end_of_utterance_silence_trigger": setting.trigger}
    return json.dumps(
        {
            "message": "StartRecognition",
            "audio_format": {"type": "raw", "encoding": "pcm_s16le", "sample_rate": RATE},
            "transcription_config": config,
        }
    )


async def session(
    engine: WhisperEngine, sound: Sound, setting: Setting, load: float
) -> tuple[Heard, float]:
    """``sound`` through one simulated session: what it heard, and its decode seconds."""
    pcm = sound.pcm + (bytes(round(TURN_SILENCE_SECONDS * 2 * RATE)) if setting.trigger else b"")
    messages = [
        ((index + 1) * CHUNK_SECONDS, pcm[offset : offset + CHUNK_BYTES])
        for index, offset in enumerate(range(0, len(pcm), CHUNK_BYTES))
    ]
    clock = Clock()
    timeline = Timeline(clock, messages)
    decoder = CostedDecoder(engine, timeline, load)
    protocol = RealtimeProtocol("simulated", SessionLimits(), now=0.0)
    (opening,) = protocol.receive_text(_start_message(setting), 0.0)
    assert isinstance(opening, OpenStream)
    protocol.started()
    stream = WhisperStream(decoder, max_delay=setting.max_delay, clock=clock)
    retune(stream, opening.settings)
    backlog: list[bytes] = []

    def read(message: bytes) -> None:  # the server's reader: queue it, show it to the stream
        for action in protocol.receive_bytes(message, clock.now):
            if isinstance(action, Feed):
                backlog.append(action.pcm)
                arriving(stream, action.pcm)

    timeline.on_audio = read
    timeline.at(messages[-1][0], partial(hurry, stream))  # EndOfStream follows the last audio
    heard = Heard()
    while timeline.audio_left or backlog:
        if not backlog:
            await timeline.advance_to(timeline.next_audio)
        joined_pcm = b"".join(backlog)
        backlog.clear()
        heard.take(protocol.recognized(await stream.feed(joined_pcm)), clock.now)
    heard.take(protocol.finished(await stream.flush()), clock.now)
    await stream.aclose()
    return heard, decoder.decoded_seconds


CATEGORIES: dict[str, Callable[[list[Sound]], list[Sound]]] = {
    "speech clips": lambda speech: speech,
    "noisy tails": noisy_tails,
    "telephone clips": lambda speech: [telephone(sound) for sound in speech],
    "telephone stream": lambda speech: [telephone(joined(speech))],
    "non-speech": lambda speech: non_speech(),
    "speech-like": speech_like,
}
"""The dev set's categories where real time and batch differ most, and those without words,
each made from the speech clips; and :data:`PHRASES`, which needs batch's words first."""
PHRASES = "phrases alone"


PHRASE_SECONDS = 0.8
"""A pause is cut into each clip ("phrases alone") after the first word ending this long after
the first word began, as batch heard them."""


async def phrases_alone(engine: WhisperEngine, speech: list[Sound], workdir: Path) -> list[Sound]:
    """The clips with a pause between two words a second or so in (:func:`phrase_alone`).

    Where the words are, batch's words say: the pause goes near half way between two of them.
    """
    cuts = []
    for sound in speech:
        words = await engine.recognize_file(sound.write_raw(workdir))
        pairs = list(itertools.pairwise(words))
        later = [(a, b) for a, b in pairs if a.end - words[0].start >= PHRASE_SECONDS]
        before, after = later[0] if later else pairs[len(pairs) // 2]
        cuts.append((before.end + after.start) / 2)
    return phrase_alone(speech, cuts)


def wordless(sounds: list[Sound]) -> bool:
    return not any(sound.reference.split() for sound in sounds)


def errors(sounds: list[Sound], texts: list[str]) -> float:
    """WER; in sounds without words, how many words were heard (each one made up)."""
    if wordless(sounds):
        return float(sum(len(text.split()) for text in texts))
    return word_error_rate([sound.reference for sound in sounds], texts)


async def run(
    engine: WhisperEngine, sounds: list[Sound], setting: Setting, load: float
) -> dict[str, Any]:
    sessions = [await session(engine, sound, setting, load) for sound in sounds]
    lags = sorted(lag for heard, _ in sessions for lag in heard.lags)
    delays = [delay for heard, _ in sessions for delay in heard.turn_delays]
    texts = [" ".join(heard.words) for heard, _ in sessions]
    result: dict[str, Any] = {
        "setting": setting.name,
        "load": load,
        "wer": errors(sounds, texts),
        "heard": texts,
        "final_lag_p95_s": lags[int(0.95 * (len(lags) - 1))] if lags else 0.0,
        "final_lag_max_s": lags[-1] if lags else 0.0,
        "broken_finals": sum(heard.broken for heard, _ in sessions),
        "decode_per_audio_s": sum(cost for _, cost in sessions)
        / sum(sound.duration for sound in sounds),
    }
    if setting.trigger:
        target = setting.trigger + EOU_ALLOWANCE
        result["end_of_utterance"] = {
            "mean_s": statistics.fmean(delays) if delays else 0.0,
            "max_s": max(delays, default=0.0),
            "turns": len(delays),
            "late": sum(1 for delay in delays if delay > target),
        }
    return result


async def measure(
    workdir: Path,
    speech: list[Sound],
    names: list[str],
    settings: list[Setting],
    loads: list[float],
) -> dict[str, Any]:
    """Each category ``names`` says, made from the ``speech`` clips, in each setting and load."""
    results: dict[str, Any] = {}
    ctranslate2.set_random_seed(SEED)  # before the model's worker thread draws its first number
    async with WhisperEngine(workers=1) as engine:
        for name in names:
            if name == PHRASES:
                sounds = await phrases_alone(engine, speech, workdir)
            else:
                sounds = CATEGORIES[name](speech)
            batch = [text(await engine.recognize_file(s.write_raw(workdir))) for s in sounds]
            runs = [
                await run(engine, sounds, setting, load) for setting in settings for load in loads
            ]
            results[name] = {
                "batch_wer": errors(sounds, batch),
                "wordless": wordless(sounds),
                "batch_heard": batch,
                "runs": runs,
            }
            print(table({name: results[name]}), flush=True)
    return results


def _turns(run: dict[str, Any]) -> str:
    eou = run.get("end_of_utterance")
    if eou is None:
        return "-"
    if not eou["turns"]:
        return "no turns"
    return (
        f"mean {eou['mean_s']:.2f} s, worst {eou['max_s']:.2f} s, "
        f"{eou['late']} of {eou['turns']} late"
    )


def table(results: dict[str, Any]) -> str:
    lines = [
        "| sounds | setting | load | batch: WER (words made up) | live | final lag p95 / worst "
        "| EndOfUtterance after the last word | decode s per audio s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, found in results.items():
        shown = "{:.0f} words" if found["wordless"] else "{:.3f}"
        lines += [
            f"| {name} | {run['setting']} | {run['load']:g}x | {shown.format(found['batch_wer'])} "
            f"| {shown.format(run['wer'])} "
            f"| {run['final_lag_p95_s']:.2f} / {run['final_lag_max_s']:.2f} s "
            f"| {_turns(run)} | {run['decode_per_audio_s']:.2f} |"
            for run in found["runs"]
        ]
    return "\n".join(lines)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulate", description=__doc__)
    parser.add_argument("--category", action="append", help="a dev-set category (repeatable)")
    parser.add_argument("--setting", action="append", help="a stream setting (repeatable)")
    parser.add_argument("--load", action="append", type=float, help="a decode cost factor")
    return parser.parse_args()


def main() -> None:
    arguments = _arguments()
    settings = [s for s in SETTINGS if not arguments.setting or s.name in arguments.setting]
    if arguments.setting and len(settings) != len(arguments.setting):
        raise SystemExit(f"choose settings from: {', '.join(s.name for s in SETTINGS)}")
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        speech = [
            Sound(clip.name, clip.pcm_path.read_bytes(), clip.reference)
            for clip in load_clips(workdir)
        ]
        everything = [*CATEGORIES, PHRASES]
        unknown = set(arguments.category or ()) - set(everything)
        if unknown:
            raise SystemExit(f"choose categories from: {', '.join(everything)}")
        names = [name for name in everything if name in (arguments.category or everything)]
        loads = arguments.load or list(LOADS)
        results = asyncio.run(measure(workdir, speech, names, settings, loads))
    publish(RESULTS, {"cpus": os.cpu_count(), "categories": results}, table(results))


if __name__ == "__main__":
    main()
