"""The local engines, real time side by side with batch, on real speech and the seeded dev set.

Run from the repository root: ``python -m benchmarks.engines``. Writes
``bench-results/engines.json`` and prints the tables kept in ``docs/engines.md``. Every figure
of one run comes from the same machine at the same time, so compare within a run.

Whisper (the default engine):

* **WER** over the speech clips, pooled (``benchmarks._wer``); **tails WER** over the same clips
  with non-speech before and after them (``benchmarks.devset``): words invented in a noisy tail
  show up there as insertions; **non-speech words**: words heard in the seven non-speech clips.
* **one stream**: the clips joined, decoded as one recording and as one live stream (real time
  must find the sentences itself), full band and through a telephone's band.
* **RTF**: processing seconds over audio seconds, audio fed as fast as the engine takes it.
* **paced**: audio fed in 100 ms chunks at real time with partials on, for ``max_delay`` 1 and
  2 s; **final lag** is wall time from a word's end being spoken to its final (p95 and worst).
* **finals** broken: final words that start before the previous final ended (must be 0).
* **EndOfUtterance**: audio seconds from the last word's end to EndOfUtterance, through the
  server's session state machine (the engine stream opened as the session asks), fed
  unpaced, for 0.25 and 0.5 s triggers (target: at most trigger + 0.3), and the WER of those
  sessions (a trigger under the engine's own pause has utterances end at shorter pauses).
  The audio counted is what the engine had read, so decoding time is not in it: this is the
  stream's own decision, and the paced row below is what a voice agent waits.
* **ForceEndOfUtterance**: wall seconds to answer it mid-utterance on an idle server, twice:
  at engine level, fed unpaced with partials off (what a flush itself costs), and as users
  meet it (below).

Through the server's socket (:mod:`benchmarks._live`): a ``LocalServer`` with its defaults in
its own process, reached with this library's ``stream()`` at real-time pace with the README's
live settings (partials on, ``max_delay`` 1 s):

* **ForceEndOfUtterance**: sent 60 % into each clip, one session at a time; wall seconds to
  the forced EndOfUtterance (target: 0.3 s).
* **EndOfUtterance**: each clip and 2 s of silence, one session at a time, asking for
  EndOfUtterance at 0.25 and 0.5 s: seconds from each turn's last final word to its
  EndOfUtterance, counted as audio sent at real-time pace, decoding included (target: at
  most trigger + 0.3).
* **live sessions**: rounds of 1 to 6 sessions started together (one more than the server
  admits, if that is more), each streaming the same three clips: how many were admitted and
  how the rest were refused (``quota_exceeded``, raised as ``SessionLimitError``); each
  admitted session's last final after its audio ended (keeping up: within 1.5 s); each one's
  WER beside one session alone; the server process's CPU seconds per audio second (and, in
  the JSON, the clients', which share the machine's cores with it). This
  replaced an engine-level count of paced streams: through the socket the figure includes
  the protocol, the client and admission, so it is the number of users a server serves, and
  the refusal beyond it is measured rather than assumed.

pocketsphinx keeps its simpler row: batch and real-time WER and RTF.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from benchmarks._live import (
    KEEP_UP_SECONDS,
    LIVE_LABEL,
    capacity,
    client_settings,
    forced_answers,
    live_session,
    turn_taking,
)
from benchmarks._report import publish
from benchmarks._server import Server, server_process
from benchmarks._wer import word_error_rate
from benchmarks.devset import (
    Sound,
    joined,
    noisy_tails,
    non_speech,
    speech_like,
    telephone,
    under_babble,
)
from benchmarks.engine_accuracy import CHUNK_BYTES, load_clips, text
from speechmatics_modes.local import Engine, EngineWord, SessionLimits
from speechmatics_modes.local._engine import force_end_of_utterance, open_tuned, stream_capacity
from speechmatics_modes.local._pocketsphinx import PocketsphinxEngine
from speechmatics_modes.local._rt_protocol import Feed, OpenStream, RealtimeProtocol, Send
from speechmatics_modes.local._whisper import WhisperEngine

RESULTS = Path("bench-results") / "engines.json"
MOST_SESSIONS = 6
"""Concurrent live sessions tried, at least (one more than the server admits, if it is more)."""
EOU_TRIGGERS = (0.25, 0.5)
EOU_ALLOWANCE = 0.3
"""EndOfUtterance's target: at most the trigger plus this, in audio seconds after the last word."""
FORCE_TARGET_SECONDS = 0.3
"""ForceEndOfUtterance's target on an idle server, in wall seconds."""
BYTES_PER_SECOND = 32_000


async def batch(engine: Engine, sounds: list[Sound], workdir: Path) -> list[str]:
    return [text(await engine.recognize_file(sound.write_raw(workdir))) for sound in sounds]


async def unpaced(engine: Engine, pcm: bytes) -> list[EngineWord]:
    stream = await engine.open_stream(max_delay=4.0, partials=False)
    words: list[EngineWord] = []
    for offset in range(0, len(pcm), CHUNK_BYTES):
        words.extend((await stream.feed(pcm[offset : offset + CHUNK_BYTES])).finals)
    words.extend((await stream.flush()).finals)
    await stream.aclose()
    return words


async def paced(
    engine: Engine, pcm: bytes, *, max_delay: float, partials: bool
) -> tuple[list[EngineWord], list[float]]:
    """Feed at real time; the words and each final's lag."""
    stream = await engine.open_stream(max_delay=max_delay, partials=partials)
    words: list[EngineWord] = []
    lags: list[float] = []
    began = time.perf_counter()

    def take(finals: tuple[EngineWord, ...]) -> None:
        now = time.perf_counter() - began
        words.extend(finals)
        lags.extend(now - word.end for word in finals)

    for index, offset in enumerate(range(0, len(pcm), CHUNK_BYTES)):
        await asyncio.sleep(max(0.0, began + (index + 1) * 0.1 - time.perf_counter()))
        take((await stream.feed(pcm[offset : offset + CHUNK_BYTES])).finals)
    take((await stream.flush()).finals)
    await stream.aclose()
    return words, lags


def broken_finals(words: list[EngineWord]) -> int:
    return sum(1 for earlier, later in pairwise(words) if later.start < earlier.end)


@dataclass
class TurnRun:
    """Sessions asking for EndOfUtterance at one trigger: its delays, and what they heard."""

    delays: list[float] = field(default_factory=list)
    """Audio seconds from the last word to each EndOfUtterance."""
    texts: list[str] = field(default_factory=list)
    """Each session's final transcript (a short trigger ends utterances at shorter pauses)."""


async def end_of_utterance_run(engine: Engine, sounds: list[Sound], trigger: float) -> TurnRun:
    """Each sound through the session state machine, asking for EndOfUtterance at ``trigger``:
    the engine stream is opened as the server opens it, so it hears of the trigger too."""
    start = {
        "message": "StartRecognition",
        "audio_format": {"type": "raw", "encoding": "pcm_s16le", "sample_rate": 16_000},
        "transcription_config": {
            "language": "en",
            "max_delay": 4.0,
            "conversation_config": {"end_of_utterance_silence_trigger": trigger},
        },
    }
    run = TurnRun()
    for sound in sounds:
        session = RealtimeProtocol("bench", SessionLimits(), now=0.0)
        (opening,) = session.receive_text(json.dumps(start), 0.0)
        assert isinstance(opening, OpenStream)
        session.started()
        stream = await open_tuned(engine, opening.settings)
        last_end = None
        heard: list[str] = []
        pcm = sound.pcm + bytes(2 * BYTES_PER_SECOND)
        for offset in range(0, len(pcm), CHUNK_BYTES):
            for action in session.receive_bytes(pcm[offset : offset + CHUNK_BYTES], 0.0):
                if not isinstance(action, Feed):
                    continue
                for sent in session.recognized(await stream.feed(action.pcm)):
                    assert isinstance(sent, Send)
                    message = sent.message
                    words = [r for r in message.get("results", ()) if r["type"] == "word"]
                    if message["message"] == "AddTranscript" and words:
                        heard += [word["alternatives"][0]["content"] for word in words]
                        last_end = words[-1]["end_time"]
                    if message["message"] == "EndOfUtterance" and last_end is not None:
                        run.delays.append(session.audio_seconds - last_end)
                        last_end = None
        heard += [word.text for word in (await stream.flush()).finals]
        run.texts.append(" ".join(heard))
        await stream.aclose()
    return run


async def force_end_of_utterance_seconds(engine: Engine, sounds: list[Sound]) -> list[float]:
    """Wall seconds to answer ForceEndOfUtterance as the server does, in mid-utterance (60 %
    into each clip) on an idle engine."""
    seconds = []
    for sound in sounds:
        stream = await engine.open_stream(max_delay=4.0, partials=False)
        cut = int(len(sound.pcm) * 0.6) // 2 * 2
        for offset in range(0, cut, CHUNK_BYTES):
            await stream.feed(sound.pcm[offset : min(cut, offset + CHUNK_BYTES)])
        began = time.perf_counter()
        await force_end_of_utterance(stream)
        seconds.append(time.perf_counter() - began)
        await stream.aclose()
    return seconds


async def measure_whisper(workdir: Path, speech: list[Sound]) -> dict[str, Any]:
    references = [sound.reference for sound in speech]
    tails = noisy_tails(speech)
    crowded = under_babble(speech)
    quiet = non_speech()
    wordless = speech_like(speech)
    streams = {"one_stream": joined(speech)}
    streams["telephone"] = telephone(streams["one_stream"])
    audio = sum(sound.duration for sound in speech)
    async with WhisperEngine() as engine:
        await engine.recognize_file(speech[0].write_raw(workdir))  # warm up
        began = time.perf_counter()
        batch_text = await batch(engine, speech, workdir)
        batch_rtf = (time.perf_counter() - began) / audio
        began = time.perf_counter()
        streamed = [await unpaced(engine, sound.pcm) for sound in speech]
        stream_rtf = (time.perf_counter() - began) / audio
        result: dict[str, Any] = {
            "batch": {
                "wer": word_error_rate(references, batch_text),
                "rtf": batch_rtf,
                "tails_wer": word_error_rate(references, await batch(engine, tails, workdir)),
                "babble_wer": word_error_rate(references, await batch(engine, crowded, workdir)),
                "non_speech_words": sum(
                    len(t.split()) for t in await batch(engine, quiet, workdir)
                ),
                "speech_like_words": sum(
                    len(t.split()) for t in await batch(engine, wordless, workdir)
                ),
                "speech_like_clips": len(wordless),
            },
            "realtime": {
                "wer": word_error_rate(references, [text(words) for words in streamed]),
                "rtf": stream_rtf,
                "tails_wer": word_error_rate(
                    references, [text(await unpaced(engine, s.pcm)) for s in tails]
                ),
                "babble_wer": word_error_rate(
                    references, [text(await unpaced(engine, s.pcm)) for s in crowded]
                ),
                "non_speech_words": sum([len(await unpaced(engine, s.pcm)) for s in quiet]),
                "speech_like_words": sum([len(await unpaced(engine, s.pcm)) for s in wordless]),
                "broken_finals": sum(broken_finals(words) for words in streamed),
            },
        }
        for key, sound in streams.items():
            (batch_heard,) = await batch(engine, [sound], workdir)
            live_heard = text(await unpaced(engine, sound.pcm))
            result["batch"][f"{key}_wer"] = word_error_rate([sound.reference], [batch_heard])
            result["realtime"][f"{key}_wer"] = word_error_rate([sound.reference], [live_heard])
        words, _ = await paced(engine, streams["telephone"].pcm, max_delay=1.0, partials=True)
        result["realtime"]["telephone_paced_wer"] = word_error_rate(
            [streams["telephone"].reference], [text(words)]
        )
        for max_delay in (1.0, 2.0):
            runs = [
                await paced(engine, sound.pcm, max_delay=max_delay, partials=True)
                for sound in speech
            ]
            lags = sorted(lag for _, run_lags in runs for lag in run_lags)
            result[f"paced_max_delay_{max_delay:g}"] = {
                "wer": word_error_rate(references, [text(words) for words, _ in runs]),
                "final_lag_p95_s": lags[int(0.95 * (len(lags) - 1))],
                "final_lag_max_s": lags[-1],
                "broken_finals": sum(broken_finals(words) for words, _ in runs),
            }
        result["end_of_utterance"] = []
        for trigger in EOU_TRIGGERS:
            turns = await end_of_utterance_run(engine, speech, trigger)
            row = _spread(turns.delays, trigger_s=trigger)
            row["wer"] = word_error_rate(references, turns.texts)
            result["end_of_utterance"].append(row)
        result["force_end_of_utterance"] = _spread(
            await force_end_of_utterance_seconds(engine, speech)
        )
    return result


def _spread(seconds: list[float], **about: float) -> dict[str, float]:
    """Median, mean, worst and count of some durations, with what they were measured for."""
    return {
        **about,
        "median_s": statistics.median(seconds),
        "mean_s": statistics.mean(seconds),
        "max_s": max(seconds),
        "count": len(seconds),
    }


async def measure_live(server: Server, speech: list[Sound]) -> dict[str, Any]:
    """The figures users meet through the server's socket (:mod:`benchmarks._live`): first
    ForceEndOfUtterance on the idle server, then rounds of concurrent sessions, up to one more
    than the server admits."""
    admitted = stream_capacity(WhisperEngine()) or MOST_SESSIONS
    await live_session(client_settings(server), speech[0].pcm)  # warm up
    clips = [sound.pcm for sound in speech]
    forced = await forced_answers(server, clips)
    turns = [
        _spread(await turn_taking(server, clips, trigger), trigger_s=trigger)
        for trigger in EOU_TRIGGERS
    ]
    pcm = b"".join(sound.pcm for sound in speech[:3])
    reference = " ".join(sound.reference for sound in speech[:3])
    return {
        "force_end_of_utterance": _spread(forced),
        "end_of_utterance": turns,
        "admission_limit": admitted,
        "capacity": await capacity(server, pcm, reference, max(MOST_SESSIONS, admitted + 1)),
    }


async def measure_pocketsphinx(workdir: Path, speech: list[Sound]) -> dict[str, Any]:
    references = [sound.reference for sound in speech]
    audio = sum(sound.duration for sound in speech)
    async with PocketsphinxEngine() as engine:
        began = time.perf_counter()
        batch_text = await batch(engine, speech, workdir)
        batch_rtf = (time.perf_counter() - began) / audio
        began = time.perf_counter()
        streamed = [text(await unpaced(engine, sound.pcm)) for sound in speech]
        stream_rtf = (time.perf_counter() - began) / audio
    return {
        "batch": {"wer": word_error_rate(references, batch_text), "rtf": batch_rtf},
        "realtime": {"wer": word_error_rate(references, streamed), "rtf": stream_rtf},
    }


def capacity_table(live: dict[str, Any]) -> list[str]:
    """One row per round of sessions started together, then how many kept up."""
    alone = live["capacity"]["rounds"][0]["wers"][0]
    lines = [
        f"| live sessions started together ({LIVE_LABEL}) | admitted | last final after the "
        f"audio ended, worst | WER, worst (alone {alone:.3f}) | server CPU per audio second |",
        "|---|---|---|---|---|",
    ]
    for level in live["capacity"]["rounds"]:
        refused = Counter(level["refused"])
        admitted = f"{level['admitted']}" + "".join(
            f", {count} refused ({why})" for why, count in refused.items()
        )
        lines.append(
            f"| {level['started']} | {admitted} | {max(level['last_final_lags_s']):.2f} s | "
            f"{max(level['wers']):.3f} | {level['server_cpu_per_audio_second']:.2f} s |"
        )
    lines.append(
        f"\nSessions admitted and keeping up (last final within {KEEP_UP_SECONDS:g} s): "
        f"{live['capacity']['sessions']}; the server admits {live['admission_limit']}."
    )
    return lines


def _turns(eou: dict[str, float]) -> str:
    """EndOfUtterance delays against their target."""
    target = eou["trigger_s"] + EOU_ALLOWANCE
    return f"mean {eou['mean_s']:.2f} s, worst {eou['max_s']:.2f} s (target ≤ {target:g} s)"


def table(results: dict[str, Any]) -> str:
    whisper = results["whisper"]
    batch, live = whisper["batch"], whisper["realtime"]
    lines = [
        "| Whisper tiny.en | batch | real time |",
        "|---|---|---|",
        f"| WER, speech clips | {batch['wer']:.3f} | {live['wer']:.3f} (unpaced) |",
    ]
    for key in ("paced_max_delay_1", "paced_max_delay_2"):
        paced_row = whisper[key]
        delay = key.rsplit("_", 1)[1]
        lines.append(
            f"| WER, paced, partials on, max_delay {delay} s | {batch['wer']:.3f} | "
            f"{paced_row['wer']:.3f} (final lag p95 {paced_row['final_lag_p95_s']:.2f} s, "
            f"worst {paced_row['final_lag_max_s']:.2f} s) |"
        )
    lines += [
        f"| WER, the clips as one stream | {batch['one_stream_wer']:.3f} | "
        f"{live['one_stream_wer']:.3f} (unpaced) |",
        f"| WER, that stream through a telephone's band | {batch['telephone_wer']:.3f} | "
        f"{live['telephone_wer']:.3f} (unpaced) |",
        f"| WER, that stream through a telephone's band, paced, partials on, max_delay 1 s | "
        f"{batch['telephone_wer']:.3f} | {live['telephone_paced_wer']:.3f} |",
        f"| WER, speech with noisy tails | {batch['tails_wer']:.3f} | {live['tails_wer']:.3f} |",
        f"| WER, speech under four talkers' babble 5 dB below it | {batch['babble_wer']:.3f} | "
        f"{live['babble_wer']:.3f} (unpaced) |",
        f"| words heard in 7 non-speech clips | {batch['non_speech_words']} | "
        f"{live['non_speech_words']} |",
        f"| words heard in {batch['speech_like_clips']} speech-like clips without words (voices "
        f"backwards, babble) | {batch['speech_like_words']} | {live['speech_like_words']} |",
        f"| RTF (as fast as taken) | {batch['rtf']:.3f} | {live['rtf']:.3f} |",
    ]
    broken = live["broken_finals"] + sum(
        whisper[key]["broken_finals"] for key in ("paced_max_delay_1", "paced_max_delay_2")
    )
    lines.append(f"| finals starting before the previous final ended | - | {broken} |")
    lines += [
        f"| EndOfUtterance after the last word (trigger {eou['trigger_s']:g} s, engine, unpaced, "
        f"audio read) | - | {_turns(eou)}; WER {eou['wer']:.3f} |"
        for eou in whisper["end_of_utterance"]
    ]
    lines += [
        f"| EndOfUtterance after the last word (trigger {eou['trigger_s']:g} s, {LIVE_LABEL}, "
        f"audio sent) | - | {_turns(eou)} |"
        for eou in results["live"]["end_of_utterance"]
    ]
    engine_force, socket_force = (
        whisper["force_end_of_utterance"],
        results["live"]["force_end_of_utterance"],
    )
    lines += [
        "| ForceEndOfUtterance answered (engine, idle, unpaced, partials off) | - | "
        f"median {engine_force['median_s']:.2f} s, worst {engine_force['max_s']:.2f} s |",
        f"| ForceEndOfUtterance answered ({LIVE_LABEL}, idle) | - | "
        f"median {socket_force['median_s']:.2f} s, worst {socket_force['max_s']:.2f} s "
        f"(target ≤ {FORCE_TARGET_SECONDS:g} s) |",
        "",
        *capacity_table(results["live"]),
    ]
    pocketsphinx = results["pocketsphinx"]
    lines += [
        "",
        "| pocketsphinx | batch | real time (unpaced) |",
        "|---|---|---|",
        f"| WER | {pocketsphinx['batch']['wer']:.3f} | {pocketsphinx['realtime']['wer']:.3f} |",
        f"| RTF | {pocketsphinx['batch']['rtf']:.3f} | {pocketsphinx['realtime']['rtf']:.3f} |",
    ]
    return "\n".join(lines)


def main() -> None:
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        speech = [
            Sound(clip.name, clip.pcm_path.read_bytes(), clip.reference)
            for clip in load_clips(workdir)
        ]
        results["whisper"] = asyncio.run(measure_whisper(workdir, speech))
        with server_process("default") as server:
            results["live"] = asyncio.run(measure_live(server, speech))
        results["pocketsphinx"] = asyncio.run(measure_pocketsphinx(workdir, speech))
    results["load_average_at_end"] = os.getloadavg()  # 1, 5, 15 min: how busy the machine was
    publish(RESULTS, results, table(results))


if __name__ == "__main__":
    main()
