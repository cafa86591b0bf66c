"""The local engines, real time side by side with batch, on real speech and the seeded dev set.

Run from the repository root: ``python -m benchmarks.engines``. Writes
``bench-results/engines.json`` and prints the tables kept in ``docs/engines.md``. Every figure
of one run comes from the same machine at the same time, so compare within a run.

Whisper (the default engine):

* **WER** over the speech clips, pooled (``benchmarks._wer``); **tails WER** over the same clips
  with non-speech before and after them (``benchmarks.devset``): words invented in a noisy tail
  show up there as insertions; **non-speech words**: words heard in the seven non-speech clips.
* **RTF**: processing seconds over audio seconds, audio fed as fast as the engine takes it.
* **paced**: audio fed in 100 ms chunks at real time with partials on, for ``max_delay`` 1 and
  2 s; **final lag** is wall time from a word's end being spoken to its final (p95 and worst).
* **finals** broken: final words that start before the previous final ended (must be 0).
* **EndOfUtterance**: audio seconds from the last word's end to EndOfUtterance, through the
  server's session state machine, for a 0.5 s trigger (target: at most trigger + 0.3).
* **ForceEndOfUtterance**: wall seconds to answer it mid-utterance on an idle engine.
* **streams**: concurrent paced streams (``max_delay`` 4, partials off) that all deliver their
  last final within 1.5 s of their audio ending; their WER is reported beside one stream's,
  and the CPU seconds one stream costs per second of audio (this process's CPU time, so it
  hardly depends on what else the machine runs: 2 cores keep up with about 2 / that streams).

pocketsphinx keeps its simpler row: batch and real-time WER and RTF.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from benchmarks._report import publish
from benchmarks._wer import word_error_rate
from benchmarks.devset import Sound, noisy_tails, non_speech
from benchmarks.engine_accuracy import CHUNK_BYTES, load_clips, text
from speechmatics_modes.local import Engine, EngineWord, SessionLimits
from speechmatics_modes.local._pocketsphinx import PocketsphinxEngine
from speechmatics_modes.local._rt_protocol import Feed, RealtimeProtocol, Send
from speechmatics_modes.local._whisper import WhisperEngine

RESULTS = Path("bench-results") / "engines.json"
MAX_STREAMS = 6
KEEP_UP_SECONDS = 1.5
EOU_TRIGGER = 0.5
BYTES_PER_SECOND = 32_000


def _raw(sound: Sound, workdir: Path) -> Path:
    path = workdir / f"{sound.name}.raw"
    path.write_bytes(sound.pcm)
    return path


async def batch(engine: Engine, sounds: list[Sound], workdir: Path) -> list[str]:
    return [text(await engine.recognize_file(_raw(sound, workdir))) for sound in sounds]


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
) -> tuple[list[EngineWord], list[float], float]:
    """Feed at real time; the words, each final's lag, and the last final's lag after the end."""
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
    return words, lags, time.perf_counter() - began - len(pcm) / BYTES_PER_SECOND


def broken_finals(words: list[EngineWord]) -> int:
    return sum(1 for earlier, later in pairwise(words) if later.start < earlier.end)


async def end_of_utterance_delays(engine: Engine, sounds: list[Sound]) -> list[float]:
    """Audio seconds from the last word to EndOfUtterance, through the session state machine."""
    start = {
        "message": "StartRecognition",
        "audio_format": {"type": "raw", "encoding": "pcm_s16le", "sample_rate": 16_000},
        "transcription_config": {
            "language": "en",
            "conversation_config": {"end_of_utterance_silence_trigger": EOU_TRIGGER},
        },
    }
    delays = []
    for sound in sounds:
        session = RealtimeProtocol("bench", SessionLimits(), now=0.0)
        session.receive_text(json.dumps(start), 0.0)
        session.started()
        stream = await engine.open_stream(max_delay=4.0, partials=False)
        last_end = None
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
                        last_end = words[-1]["end_time"]
                    if message["message"] == "EndOfUtterance" and last_end is not None:
                        delays.append(session.audio_seconds - last_end)
                        last_end = None
        await stream.aclose()
    return delays


async def force_end_of_utterance(engine: Engine, sounds: list[Sound]) -> list[float]:
    """Wall seconds for flush() in mid-utterance (60 % into each clip) on an idle engine."""
    seconds = []
    for sound in sounds:
        stream = await engine.open_stream(max_delay=4.0, partials=False)
        cut = int(len(sound.pcm) * 0.6) // 2 * 2
        for offset in range(0, cut, CHUNK_BYTES):
            await stream.feed(sound.pcm[offset : min(cut, offset + CHUNK_BYTES)])
        began = time.perf_counter()
        await stream.flush()
        seconds.append(time.perf_counter() - began)
        await stream.aclose()
    return seconds


async def capacity(engine: Engine, speech: list[Sound]) -> dict[str, Any]:
    """How many paced streams keep up, and their accuracy against one stream alone."""
    pcm = b"".join(sound.pcm for sound in speech[:3])
    reference = " ".join(sound.reference for sound in speech[:3])
    levels: dict[str, Any] = {}
    sustained = 0
    audio = len(pcm) / BYTES_PER_SECOND
    for count in range(1, MAX_STREAMS + 1):
        cpu = time.process_time()
        runs = await asyncio.gather(
            *(paced(engine, pcm, max_delay=4.0, partials=False) for _ in range(count))
        )
        worst = max(lag for _, _, lag in runs)
        wer = statistics.mean(word_error_rate([reference], [text(w)]) for w, _, _ in runs)
        levels[str(count)] = {
            "last_final_lag_s": worst,
            "wer": wer,
            "cpu_per_stream_second": (time.process_time() - cpu) / (count * audio),
        }
        if worst > KEEP_UP_SECONDS:
            break
        sustained = count
    return {"streams": sustained, "levels": levels}


async def measure_whisper(workdir: Path, speech: list[Sound]) -> dict[str, Any]:
    references = [sound.reference for sound in speech]
    tails = noisy_tails(speech)
    quiet = non_speech()
    audio = sum(sound.duration for sound in speech)
    async with WhisperEngine() as engine:
        await engine.recognize_file(_raw(speech[0], workdir))  # warm up
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
                "non_speech_words": sum(
                    len(t.split()) for t in await batch(engine, quiet, workdir)
                ),
            },
            "realtime": {
                "wer": word_error_rate(references, [text(words) for words in streamed]),
                "rtf": stream_rtf,
                "tails_wer": word_error_rate(
                    references, [text(await unpaced(engine, s.pcm)) for s in tails]
                ),
                "non_speech_words": sum([len(await unpaced(engine, s.pcm)) for s in quiet]),
                "broken_finals": sum(broken_finals(words) for words in streamed),
            },
        }
        for max_delay in (1.0, 2.0):
            runs = [
                await paced(engine, sound.pcm, max_delay=max_delay, partials=True)
                for sound in speech
            ]
            lags = sorted(lag for _, run_lags, _ in runs for lag in run_lags)
            result[f"paced_max_delay_{max_delay:g}"] = {
                "wer": word_error_rate(references, [text(words) for words, _, _ in runs]),
                "final_lag_p95_s": lags[int(0.95 * (len(lags) - 1))],
                "final_lag_max_s": lags[-1],
                "broken_finals": sum(broken_finals(words) for words, _, _ in runs),
            }
        delays = await end_of_utterance_delays(engine, speech)
        forced = await force_end_of_utterance(engine, speech)
        result["end_of_utterance"] = {
            "trigger_s": EOU_TRIGGER,
            "mean_delay_s": statistics.mean(delays),
            "max_delay_s": max(delays),
            "count": len(delays),
        }
        result["force_end_of_utterance"] = {
            "median_s": statistics.median(forced),
            "max_s": max(forced),
        }
        result["capacity"] = await capacity(engine, speech)
    return result


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
        f"| WER, speech with noisy tails | {batch['tails_wer']:.3f} | {live['tails_wer']:.3f} |",
        f"| words heard in 7 non-speech clips | {batch['non_speech_words']} | "
        f"{live['non_speech_words']} |",
        f"| RTF (as fast as taken) | {batch['rtf']:.3f} | {live['rtf']:.3f} |",
    ]
    broken = live["broken_finals"] + sum(
        whisper[key]["broken_finals"] for key in ("paced_max_delay_1", "paced_max_delay_2")
    )
    eou, force, capacity_row = (
        whisper["end_of_utterance"],
        whisper["force_end_of_utterance"],
        whisper["capacity"],
    )
    alone = capacity_row["levels"]["1"]["wer"]
    cpu = capacity_row["levels"]["1"]["cpu_per_stream_second"]
    most = capacity_row["levels"].get(str(capacity_row["streams"]), {"wer": float("nan")})
    lines += [
        f"| finals starting before the previous final ended | - | {broken} |",
        f"| EndOfUtterance after the last word (trigger {eou['trigger_s']} s, audio time) | - | "
        f"mean {eou['mean_delay_s']:.2f} s, worst {eou['max_delay_s']:.2f} s |",
        f"| ForceEndOfUtterance answered (idle, mid-utterance) | - | "
        f"median {force['median_s']:.2f} s, worst {force['max_s']:.2f} s |",
        f"| paced streams keeping up (last final within 1.5 s) | - | {capacity_row['streams']} "
        f"(WER {most['wer']:.3f} each, alone {alone:.3f}; one costs {cpu:.3f} s of CPU per "
        "audio second) |",
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
        results["pocketsphinx"] = asyncio.run(measure_pocketsphinx(workdir, speech))
    publish(RESULTS, results, table(results))


if __name__ == "__main__":
    main()
