"""The façade against the raw SDKs, side by side in one run, on the same local server.

``python -m benchmarks.facade`` prints a table and writes ``bench-results/facade.json``,
``bench-results/facade.md`` and (with matplotlib) ``bench-results/cpu-per-audio-second.png``:

1. **Import**: ``import speechmatics_modes`` against importing both SDKs, timed inside a fresh
   interpreter each time.
2. **A short batch job as a whole process**: a 4 s WAV through ``transcribe()`` and through the
   batch SDK (``submit_job`` + ``wait_for_completion``), interpreter start to exit; and the
   SDK's job once more in a process that also imports pydantic, the floor for a façade whose
   public types are pydantic models, and once more keeping its deadline with anyio (the floor
   under both design rules). Each process also reports how many full garbage collections it
   ran: one costs 15-30 ms at this size, and CPython 3.11 runs its first at the 133rd young
   collection, which the raw SDK + pydantic process (120) does not reach and ours (139) passes.
3. **Real-time CPU**: client CPU seconds per audio second streaming a minute of real speech
   through ``stream()`` and through the SDK's own ``start_session`` + ``send_audio`` loop, on the
   same async generator: unpaced, with partials, and paced at real time. The SDK once more
   with ``permessage-deflate`` off shows what compression costs it; the server's CPU per audio
   second is read from ``/proc`` for each run.
4. **Batch upload memory**: peak RSS of a client transcribing a ~500 MB WAV through
   ``transcribe()`` (which streams the file) and through the batch SDK given a path (which reads
   it whole).
5. **Latency**: seconds from the last audio chunk to the complete transcript, both clients, on
   the real engine.

Every measurement runs in a fresh child process (``benchmarks._clients``), so one cannot inflate
another's peak RSS or share its imports, and ours and the SDK's alternate, ``BENCH_REPEATS``
times each (medians reported). Ratios matter more than absolute numbers: the machine is shared.
Our package's bytecode is compiled first (:func:`_compile_package`), as installing a wheel
compiles it and the SDKs' was compiled when they were installed.
"""

from __future__ import annotations

import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import AUDIO
from benchmarks._report import Row, plot_bars, write_markdown
from benchmarks._server import Server, server_process

RESULTS = Path("bench-results") / "facade.json"
WORK = Path("bench-results") / "work"
BIG_WAV_MB = int(os.environ.get("BENCH_BIG_WAV_MB", "500"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
LATENCY = os.environ.get("BENCH_LATENCY", "1") != "0"
"""``BENCH_LATENCY=0`` skips the Whisper runs (minutes each on a busy machine)."""
SHORT_CLIP = AUDIO / "synthetic" / "espeak-hello-world.wav"
PACED_SECONDS = 20
"""Audio streamed at real time: enough chunks for a stable figure, short enough to wait for."""

REALTIME_RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "ours": ("ours_realtime", {}),
    "sdk": ("sdk_realtime", {}),
    "sdk_uncompressed": ("sdk_realtime", {"compression": False}),
    "ours_partials": ("ours_realtime", {"partials": True}),
    "sdk_partials": ("sdk_realtime", {"partials": True}),
    "ours_paced": ("ours_realtime", {"pace": 1.0}),
    "sdk_paced": ("sdk_realtime", {"pace": 1.0}),
}
"""Each real-time run: which client, with which options (paced ones stream the short file)."""


def _big_wav(path: Path, megabytes: int) -> Path:
    if path.exists() and path.stat().st_size >= megabytes * 1024**2:
        return path
    frames = megabytes * 1024**2 // 2
    block = b"\x00\x00" * 16_000
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        for _ in range(frames // 16_000):
            writer.writeframesraw(block)
    return path


def _speech(path: Path, seconds: float) -> Path:
    """About ``seconds`` of the test clips, back to back, as one 16 kHz WAV."""
    if path.exists():
        return path
    pcm = b""
    for clip in sorted(AUDIO.glob("*.wav")):
        with wave.open(str(clip), "rb") as reader:
            pcm += reader.readframes(reader.getnframes())
        if len(pcm) >= seconds * 32_000:
            break
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        writer.writeframes(pcm[: int(seconds * 32_000)])
    return path


def _compile_package() -> None:
    """Write our ``.pyc`` files, as a wheel install does: from an editable checkout under
    ``PYTHONDONTWRITEBYTECODE`` each client process would compile every module again, a cost
    no installed copy pays (the SDKs' bytecode was compiled when pip installed them)."""
    import speechmatics_modes

    compileall.compile_dir(Path(speechmatics_modes.__file__).parent, quiet=1)


def _audio_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as reader:
        return reader.getnframes() / reader.getframerate()


def _child(*args: str) -> dict[str, Any]:
    """Run one client process; its JSON line, plus the whole process's wall and CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks._clients", *args], capture_output=True, text=True
    )
    if process.returncode:
        raise RuntimeError(f"{' '.join(args[:2])} failed:\n{process.stderr[-2000:]}")
    output = process.stdout
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result["process_wall_seconds"] = wall
    result["process_cpu_seconds"] = (after.ru_utime - before.ru_utime) + (
        after.ru_stime - before.ru_stime
    )
    return result


def _alternating(
    runs: dict[str, Callable[[], dict[str, Any]]], repeats: int
) -> dict[str, list[dict[str, Any]]]:
    """Every run ``repeats`` times, interleaved, so a busy spell on the machine hits all alike."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            results[name].append(run())
    return results


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _imports() -> dict[str, Any]:
    runs = _alternating(
        {
            what: lambda what=what: _child(what)
            for what in ("import-ours", "import-ours-api", "import-sdks")
        },
        REPEATS * 2,
    )
    return {what: {"cpu": _median(r, "cpu_seconds"), "runs": r} for what, r in runs.items()}


def _short_batch(server: Server) -> dict[str, Any]:
    runs = _alternating(
        {
            name: lambda name=name: _child(name, str(SHORT_CLIP), *server)
            for name in ("ours_batch", "sdk_batch", "sdk_batch_pydantic", "sdk_batch_rules")
        },
        REPEATS,
    )
    return {
        name: {
            "process_cpu": _median(r, "process_cpu_seconds"),
            "process_wall": _median(r, "process_wall_seconds"),
            "full_collections": _median(r, "full_collections"),
            "runs": r,
        }
        for name, r in runs.items()
    }


def _realtime(server: Server, minute: Path, short: Path) -> dict[str, Any]:
    def run(name: str) -> dict[str, Any]:
        client, options = REALTIME_RUNS[name]
        audio = short if "pace" in options else minute
        server_cpu = server.cpu_seconds()
        result = _child(client, str(audio), *server, json.dumps(options))
        seconds = _audio_seconds(audio)
        result["cpu_per_audio_second"] = result["cpu_seconds"] / seconds
        result["server_cpu_per_audio_second"] = (server.cpu_seconds() - server_cpu) / seconds
        return result

    unpaced = [name for name, (_, options) in REALTIME_RUNS.items() if "pace" not in options]
    paced = [name for name in REALTIME_RUNS if name not in unpaced]
    runs = _alternating({name: lambda name=name: run(name) for name in unpaced}, REPEATS)
    runs |= _alternating({name: lambda name=name: run(name) for name in paced}, 3)
    return {
        name: {
            "cpu_per_audio_second": _median(r, "cpu_per_audio_second"),
            "server_cpu_per_audio_second": _median(r, "server_cpu_per_audio_second"),
            "runs": r,
        }
        for name, r in runs.items()
    }


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    _compile_package()
    big = _big_wav(WORK / "big.wav", BIG_WAV_MB)
    minute = _speech(WORK / "speech-minute.wav", 60)
    short = _speech(WORK / f"speech-{PACED_SECONDS}s.wav", PACED_SECONDS)
    results: dict[str, Any] = {"big_wav_mb": big.stat().st_size / 1024**2, "repeats": REPEATS}
    results["import"] = _imports()
    with server_process("scripted") as server:
        results["short_batch"] = _short_batch(server)
        results["realtime"] = _realtime(server, minute, short)
        for name in ("ours_batch", "sdk_batch"):
            results[name + "_upload"] = _child(name, str(big), *server)
    if LATENCY:
        with server_process("default") as server:
            for name in ("ours_realtime", "sdk_realtime"):
                results[name + "_latency"] = _child(name, str(minute), *server)

    RESULTS.write_text(json.dumps(results, indent=2))
    rows = _rows(results)
    write_markdown(rows, RESULTS.with_suffix(".md"))
    ms = _per_second(results)
    plot_bars(
        {
            "unpaced": (ms("ours"), ms("sdk"), ms("sdk_uncompressed")),
            "unpaced, partials": (ms("ours_partials"), ms("sdk_partials"), None),
            "paced 1x": (ms("ours_paced"), ms("sdk_paced"), None),
        },
        ("stream()", "rt SDK", "rt SDK, no deflate"),
        "client CPU ms per audio second",
        RESULTS.parent / "cpu-per-audio-second.png",
    )
    print(RESULTS.with_suffix(".md").read_text())


def _per_second(results: dict[str, Any]) -> Callable[[str], float]:
    """Client CPU milliseconds per audio second of a real-time run, by name."""
    realtime = results["realtime"]
    return lambda name: float(realtime[name]["cpu_per_audio_second"] * 1000)


def _rows(results: dict[str, Any]) -> list[Row]:
    imports, batch, realtime = results["import"], results["short_batch"], results["realtime"]
    ms = _per_second(results)

    def server_ms(name: str) -> float:
        return float(realtime[name]["server_cpu_per_audio_second"] * 1000)

    def latency(name: str) -> float:
        run = results[name]
        return float(run["finished"] - run["last_chunk_sent"])

    rows = [
        Row(
            "`import` (CPU s)",
            imports["import-ours"]["cpu"],
            imports["import-sdks"]["cpu"],
            "{:.3f}",
            1.2,
        ),
        Row(
            "`import` + `transcribe`, `stream`, `Transcript`, options (CPU s)",
            imports["import-ours-api"]["cpu"],
            imports["import-sdks"]["cpu"],
            "{:.3f}",
            1.2,
        ),
        Row(
            "4 s batch job, whole process (CPU s)",
            batch["ours_batch"]["process_cpu"],
            batch["sdk_batch"]["process_cpu"],
            "{:.2f}",
            1.25,
        ),
        Row(
            "same, against the raw SDK in a process that also imports pydantic (CPU s)",
            batch["ours_batch"]["process_cpu"],
            batch["sdk_batch_pydantic"]["process_cpu"],
            "{:.2f}",
        ),
        Row(
            "same, against the raw SDK with pydantic imported and an anyio deadline (CPU s)",
            batch["ours_batch"]["process_cpu"],
            batch["sdk_batch_rules"]["process_cpu"],
            "{:.2f}",
        ),
        Row(
            "full garbage collections in the batch job's process, ours and raw SDK + pydantic",
            batch["ours_batch"]["full_collections"],
            batch["sdk_batch_pydantic"]["full_collections"],
            "{:.0f}",
            ratio_means_something=False,
        ),
        Row(
            "4 s batch job, whole process (wall s)",
            batch["ours_batch"]["process_wall"],
            batch["sdk_batch"]["process_wall"],
            "{:.2f}",
        ),
        Row("real-time client CPU per audio s, unpaced (ms)", ms("ours"), ms("sdk"), "{:.2f}", 0.8),
        Row(
            "same, SDK without permessage-deflate (ms)",
            ms("ours"),
            ms("sdk_uncompressed"),
            "{:.2f}",
        ),
        Row("same, with partials (ms)", ms("ours_partials"), ms("sdk_partials"), "{:.2f}"),
        Row("same, paced at real time (ms)", ms("ours_paced"), ms("sdk_paced"), "{:.2f}", 1.0),
        Row("server CPU per audio s, unpaced (ms)", server_ms("ours"), server_ms("sdk"), "{:.2f}"),
        Row(
            f"peak client RSS, {results['big_wav_mb']:.0f} MB WAV upload (MB)",
            results["ours_batch_upload"]["peak_rss_mb"],
            results["sdk_batch_upload"]["peak_rss_mb"],
            "{:.0f}",
        ),
    ]
    if LATENCY:
        rows.append(
            Row(
                "last chunk sent to transcript, Whisper engine (s)",
                latency("ours_realtime_latency"),
                latency("sdk_realtime_latency"),
                "{:.1f}",
            )
        )
    return rows


if __name__ == "__main__":
    main()
