"""Accuracy and speed of the pocketsphinx engine on the test clips.

Run from the repository root: ``python -m benchmarks.engine_accuracy``. Prints a table and
writes ``bench-results/engine_accuracy.json``. Three measurements:

* **batch**: each clip through :meth:`PocketsphinxEngine.recognize_file` (worker pool);
* **streaming**: each clip fed in 100 ms chunks, as fast as the engine takes them, with the
  event loop's worst stall while it ran (decoding must not block the loop);
* **lw-scale tuning**: whole-file decoding in this process with the language-model weights
  scaled by each factor, which is how :data:`LM_WEIGHT_SCALE` was chosen.

Real-time factor (RTF) is processing seconds over audio seconds; below 1 keeps up with speech.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import AUDIO, read_pcm
from benchmarks._wer import normalise, word_error_rate, word_errors
from speechmatics_modes.local import EngineWord
from speechmatics_modes.local._pocketsphinx import (
    LM_WEIGHT_SCALE,
    PocketsphinxEngine,
    new_decoder,
    recognize_pcm_file,
)

RESULTS = Path("bench-results") / "engine_accuracy.json"
CHUNK_BYTES = 3_200
LW_SCALES = (1.0, 0.9, 0.8, 0.7, 0.6)


@dataclass(frozen=True)
class Clip:
    name: str
    pcm_path: Path
    duration: float
    reference: str

    @property
    def path(self) -> Path:
        """The clip's WAV file in :data:`AUDIO`."""
        return AUDIO / self.name


def load_clips(workdir: Path) -> list[Clip]:
    clips = []
    with (AUDIO / "manifest.tsv").open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            pcm = read_pcm(AUDIO / row["filename"])
            raw = workdir / (row["filename"] + ".raw")
            raw.write_bytes(pcm)
            clips.append(Clip(row["filename"], raw, len(pcm) / 32_000, row["reference"]))
    return clips


def text(words: list[EngineWord]) -> str:
    return " ".join(word.text for word in words)


async def run_batch(engine: PocketsphinxEngine, clips: list[Clip]) -> dict[str, Any]:
    await engine.recognize_file(clips[0].pcm_path)  # load the model in a worker first
    hypotheses, seconds = [], 0.0
    for clip in clips:
        started = time.perf_counter()
        hypotheses.append(text(await engine.recognize_file(clip.pcm_path)))
        seconds += time.perf_counter() - started
    return summarise(clips, hypotheses, seconds)


async def run_streaming(engine: PocketsphinxEngine, clips: list[Clip]) -> dict[str, Any]:
    hypotheses, seconds, worst_stall = [], 0.0, 0.0
    stop = asyncio.Event()

    async def watch_loop() -> None:
        nonlocal worst_stall
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            worst_stall = max(worst_stall, time.perf_counter() - before - 0.005)

    watcher = asyncio.create_task(watch_loop())
    for clip in clips:
        pcm = clip.pcm_path.read_bytes()
        recognizer = await engine.open_stream(max_delay=4.0)
        started = time.perf_counter()
        words: list[EngineWord] = []
        for position in range(0, len(pcm), CHUNK_BYTES):
            words.extend((await recognizer.feed(pcm[position : position + CHUNK_BYTES])).finals)
        words.extend((await recognizer.flush()).finals)
        seconds += time.perf_counter() - started
        await recognizer.aclose()
        hypotheses.append(text(words))
    stop.set()
    await watcher
    return {**summarise(clips, hypotheses, seconds), "worst_event_loop_stall_s": worst_stall}


def run_lw_tuning(clips: list[Clip]) -> list[dict[str, Any]]:
    rows = []
    for scale in LW_SCALES:
        decoder = new_decoder(scale)
        started = time.perf_counter()
        hypotheses = [text(recognize_pcm_file(clip.pcm_path, decoder)) for clip in clips]
        seconds = time.perf_counter() - started
        rows.append({"lw_scale": scale, **summarise(clips, hypotheses, seconds, per_clip=False)})
    return rows


def summarise(
    clips: list[Clip], hypotheses: list[str], seconds: float, *, per_clip: bool = True
) -> dict[str, Any]:
    audio_seconds = sum(clip.duration for clip in clips)
    summary: dict[str, Any] = {
        "wer": word_error_rate([clip.reference for clip in clips], hypotheses),
        "rtf": seconds / audio_seconds,
        "audio_seconds": audio_seconds,
    }
    if per_clip:
        summary["clips"] = [
            {
                "name": clip.name,
                "errors": word_errors(normalise(clip.reference), normalise(hypothesis)),
                "reference_words": len(normalise(clip.reference)),
                "hypothesis": hypothesis,
            }
            for clip, hypothesis in zip(clips, hypotheses, strict=True)
        ]
    return summary


async def measure(clips: list[Clip]) -> dict[str, Any]:
    async with PocketsphinxEngine() as engine:
        batch = await run_batch(engine, clips)
        streaming = await run_streaming(engine, clips)
    return {
        "engine": "pocketsphinx",
        "lm_weight_scale": LM_WEIGHT_SCALE,
        "cpus": os.cpu_count(),
        "batch": batch,
        "streaming_100ms": streaming,
        "lw_tuning_whole_file": run_lw_tuning(clips),
    }


def print_table(results: dict[str, Any]) -> None:
    print(f"{'mode':<28}{'WER':>8}{'RTF':>8}")
    for mode in ("batch", "streaming_100ms"):
        print(f"{mode:<28}{results[mode]['wer']:>8.3f}{results[mode]['rtf']:>8.3f}")
    stall = results["streaming_100ms"]["worst_event_loop_stall_s"]
    print(f"worst event-loop stall while streaming: {stall * 1000:.1f} ms")
    print(f"\n{'lw scale (in-process)':<28}{'WER':>8}{'RTF':>8}")
    for row in results["lw_tuning_whole_file"]:
        print(f"{row['lw_scale']:<28}{row['wer']:>8.3f}{row['rtf']:>8.3f}")


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        results = asyncio.run(measure(load_clips(Path(workdir))))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
