"""The façade against the raw SDKs, side by side in one run, on the same local server.

``python -m benchmarks.facade`` prints a table and writes ``bench-results/facade.json``:

1. **Batch upload memory**: peak RSS of a client process transcribing a ~500 MB WAV through
   ``transcribe()`` (which streams the file) and through the batch SDK given a path (which reads
   it whole), against a server in another process whose engine only measures the audio.
2. **Real-time CPU**: client CPU seconds per audio second streaming one minute of real speech,
   unpaced, through ``transcribe(mode="realtime")`` and through ``speechmatics.rt.AsyncClient``.
3. **Latency**: seconds from the last audio chunk to the complete transcript, both clients, on
   the real engine.

Every measurement runs in a fresh child process, so one cannot inflate another's peak RSS.
Ratios matter more than absolute numbers: the machine is shared.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from benchmarks import AUDIO
from benchmarks._server import server_process

RESULTS = Path("bench-results") / "facade.json"
WORK = Path("bench-results") / "work"
BIG_WAV_MB = int(os.environ.get("BENCH_BIG_WAV_MB", "500"))
KEY = "bench"


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


def _speech_minute(path: Path) -> Path:
    """About a minute of the test clips, back to back, as one 16 kHz WAV."""
    if path.exists():
        return path
    pcm = b""
    for clip in sorted(AUDIO.glob("*.wav")):
        with wave.open(str(clip), "rb") as reader:
            pcm += reader.readframes(reader.getnframes())
        if len(pcm) >= 60 * 32_000:
            break
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        writer.writeframes(pcm)
    return path


# --- what each child process does ------------------------------------------------------------


async def _ours_batch(path: Path, batch_url: str, rt_url: str) -> dict[str, Any]:
    from speechmatics_modes import Settings, transcribe

    settings = Settings(api_key=KEY, batch_url=batch_url, rt_url=rt_url)
    transcript = await transcribe(path, settings=settings)
    return {"words": len(transcript.words)}


async def _sdk_batch(path: Path, batch_url: str, rt_url: str) -> dict[str, Any]:
    import speechmatics.batch as sm

    async with sm.AsyncClient(api_key=KEY, url=batch_url) as client:
        job = await client.submit_job(str(path))
        result = await client.wait_for_completion(job.id)
    return {"words": len(getattr(result, "results", []) or [])}


def _pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as reader:
        return reader.readframes(reader.getnframes())


async def _ours_realtime(path: Path, batch_url: str, rt_url: str) -> dict[str, Any]:
    from speechmatics_modes import AudioFormat, Settings, stream

    settings = Settings(api_key=KEY, batch_url=batch_url, rt_url=rt_url)
    pcm = _pcm(path)
    marks: dict[str, float] = {}

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(pcm), 3_200):
            yield pcm[start : start + 3_200]
        marks["last_chunk_sent"] = time.perf_counter()  # asked for more after the last send

    async with stream(
        chunks(), audio_format=AudioFormat(chunk_size=3_200), settings=settings
    ) as events:
        async for _ in events:
            pass
    return {"words": len(events.transcript.words), "finished": time.perf_counter(), **marks}


async def _sdk_realtime(path: Path, batch_url: str, rt_url: str) -> dict[str, Any]:
    import speechmatics.rt as sm

    pcm = _pcm(path)
    finals: list[dict[str, Any]] = []
    client = sm.AsyncClient(api_key=KEY, url=rt_url)
    client.on(sm.ServerMessageType.ADD_TRANSCRIPT, finals.append)
    audio_format = sm.AudioFormat(
        encoding=sm.AudioEncoding.PCM_S16LE, sample_rate=16_000, chunk_size=3_200
    )
    await client.start_session(
        transcription_config=sm.TranscriptionConfig(), audio_format=audio_format
    )
    for start in range(0, len(pcm), 3_200):
        await client.send_audio(pcm[start : start + 3_200])
    sent = time.perf_counter()
    await client.stop_session()
    finished = time.perf_counter()
    words = sum(len(message["results"]) for message in finals)
    return {"words": words, "finished": finished, "last_chunk_sent": sent}


CHILDREN = {
    "ours_batch": _ours_batch,
    "sdk_batch": _sdk_batch,
    "ours_realtime": _ours_realtime,
    "sdk_realtime": _sdk_realtime,
}


def _child(name: str, path: str, batch_url: str, rt_url: str) -> None:
    cpu_before = time.process_time()
    started = time.perf_counter()
    result = anyio.run(CHILDREN[name], Path(path), batch_url, rt_url)
    result.update(
        wall_seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_before,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        started=started,
    )
    print(json.dumps(result))


def _run_child(name: str, path: Path, urls: tuple[str, str]) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.facade", "--child", name, str(path), *urls],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def _audio_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as reader:
        return reader.getnframes() / reader.getframerate()


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    big = _big_wav(WORK / "big.wav", BIG_WAV_MB)
    minute = _speech_minute(WORK / "speech-minute.wav")
    seconds = _audio_seconds(minute)
    results: dict[str, Any] = {
        "big_wav_mb": big.stat().st_size / 1024**2,
        "speech_seconds": seconds,
    }

    with server_process("scripted") as urls:
        for name in ("ours_batch", "sdk_batch"):
            results[name] = _run_child(name, big, urls)
        for name in ("ours_realtime", "sdk_realtime"):
            run = _run_child(name, minute, urls)
            run["cpu_per_audio_second"] = run["cpu_seconds"] / seconds
            results[name + "_cpu"] = run
    with server_process("default") as urls:
        for name in ("ours_realtime", "sdk_realtime"):
            results[name + "_latency"] = _run_child(name, minute, urls)

    RESULTS.write_text(json.dumps(results, indent=2))
    _print_table(results)


def _print_table(results: dict[str, Any]) -> None:
    ours_rss = results["ours_batch"]["peak_rss_mb"]
    sdk_rss = results["sdk_batch"]["peak_rss_mb"]
    ours_cpu = results["ours_realtime_cpu"]["cpu_per_audio_second"]
    sdk_cpu = results["sdk_realtime_cpu"]["cpu_per_audio_second"]
    print(f"batch upload of a {results['big_wav_mb']:.0f} MB WAV, peak client RSS:")
    print(f"  transcribe()          {ours_rss:8.1f} MB")
    print(f"  batch SDK, a path     {sdk_rss:8.1f} MB   (ratio SDK/ours {sdk_rss / ours_rss:.1f}x)")
    print(
        f"real-time, {results['speech_seconds']:.0f} s of speech unpaced, client CPU per audio s:"
    )
    print(f"  transcribe()          {ours_cpu * 1000:8.2f} ms")
    ratio = ours_cpu / sdk_cpu
    print(f"  rt SDK                {sdk_cpu * 1000:8.2f} ms   (ratio ours/SDK {ratio:.2f}x)")
    print("real-time on the real engine, seconds from the last chunk sent to the transcript:")
    for label, key in (("stream()", "ours_realtime_latency"), ("rt SDK", "sdk_realtime_latency")):
        run = results[key]
        latency = run["finished"] - run["last_chunk_sent"]
        print(f"  {label:<20}  {latency:8.2f} s   (whole session {run['wall_seconds']:.1f} s)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(*sys.argv[2:6])
    else:
        main()
