"""What one benchmark client process does: ours or the raw SDK's, one job, then a JSON line.

``python -m benchmarks._clients NAME AUDIO BATCH_URL RT_URL [OPTIONS_JSON]`` runs one client and
prints its measurements. ``python -m benchmarks._clients import-ours`` (or ``import-sdks``,
``import-ours-api``) only times an import. This module imports nothing of ours or of the SDKs at
the top and runs its loop with plain ``asyncio``, so a child process costs each client exactly
what the client itself costs: the façade's benchmark times whole processes. A real-time client
first streams one second untimed (:func:`_warm_up`).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import resource
import sys
import tempfile
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

KEY = "bench"
CHUNK = 3_200
"""100 ms of 16 kHz 16-bit mono: a microphone's usual chunk."""

IMPORTS = {
    "import-ours": ["speechmatics_modes"],
    "import-ours-api": ["speechmatics_modes"],
    "import-sdks": ["speechmatics.rt", "speechmatics.batch"],
}
"""What each import measurement imports (``-api`` then also touches the public functions)."""


def _pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as reader:
        return reader.readframes(reader.getnframes())


async def paced_chunks(
    pcm: bytes, pace: float | None, marks: dict[str, float]
) -> AsyncIterator[bytes]:
    """The audio in 100 ms chunks, at ``pace`` times real time (``None``: as fast as taken)."""
    started = marks["first_chunk_sent"] = time.perf_counter()
    for index, start in enumerate(range(0, len(pcm), CHUNK)):
        if pace is not None:
            ahead = index * 0.1 / pace - (time.perf_counter() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        yield pcm[start : start + CHUNK]
    marks["last_chunk_sent"] = time.perf_counter()  # asked for more after the last send


async def ours_batch(path: Path, batch_url: str, rt_url: str, **_: Any) -> dict[str, Any]:
    from speechmatics_modes import Settings, transcribe

    settings = Settings(api_key=KEY, batch_url=batch_url, rt_url=rt_url)
    transcript = await transcribe(path, settings=settings)
    return {"words": len(transcript.words)}


async def sdk_batch(path: Path, batch_url: str, rt_url: str, **_: Any) -> dict[str, Any]:
    """The SDK's documented job, at its defaults: its polls start 0.5 s apart, as ours do."""
    import speechmatics.batch as sm

    async with sm.AsyncClient(api_key=KEY, url=batch_url) as client:
        job = await client.submit_job(str(path))
        result = await client.wait_for_completion(job.id)
    return {"words": len(getattr(result, "results", []) or [])}


async def sdk_batch_pydantic(path: Path, batch_url: str, rt_url: str, **_: Any) -> dict[str, Any]:
    """The raw SDK's batch job in a process that also imports pydantic, as every user of our
    models does: the least a façade whose public types are pydantic models can cost."""
    for module in ("pydantic.main", "pydantic.fields"):  # BaseModel and Field
        importlib.import_module(module)
    return await sdk_batch(path, batch_url, rt_url)


async def sdk_batch_rules(path: Path, batch_url: str, rt_url: str, **_: Any) -> dict[str, Any]:
    """The raw SDK's batch job with pydantic imported and a deadline kept by anyio, as
    ``transcribe()`` keeps its own: what a façade bound to both design rules (pydantic public
    types, one concurrency style: anyio) cannot avoid, anyio's asyncio backend included."""
    import anyio

    with anyio.fail_after(600):
        return await sdk_batch_pydantic(path, batch_url, rt_url)


async def ours_realtime(
    path: Path, batch_url: str, rt_url: str, *, pace: float | None = None, partials: bool = False
) -> dict[str, Any]:
    from speechmatics_modes import AudioFormat, Settings, TranscriptionOptions, stream

    settings = Settings(api_key=KEY, batch_url=batch_url, rt_url=rt_url)
    marks: dict[str, float] = {}
    chunks = paced_chunks(_pcm(path), pace, marks)
    options = TranscriptionOptions(enable_partials=partials)
    async with stream(
        chunks, options=options, audio_format=AudioFormat(chunk_size=CHUNK), settings=settings
    ) as events:
        async for _ in events:
            pass
    return {"words": len(events.transcript.words), "finished": time.perf_counter(), **marks}


async def sdk_realtime(
    path: Path,
    batch_url: str,
    rt_url: str,
    *,
    pace: float | None = None,
    partials: bool = False,
    compression: bool = True,
) -> dict[str, Any]:
    """The SDK's documented loop: ``start_session``, ``send_audio`` per chunk, ``stop_session``."""
    import speechmatics.rt as sm

    finals: list[dict[str, Any]] = []
    config = None if compression else _uncompressed_connection(sm)
    client = sm.AsyncClient(api_key=KEY, url=rt_url, conn_config=config)
    client.on(sm.ServerMessageType.ADD_TRANSCRIPT, finals.append)
    if partials:
        client.on(sm.ServerMessageType.ADD_PARTIAL_TRANSCRIPT, lambda message: None)
    audio_format = sm.AudioFormat(
        encoding=sm.AudioEncoding.PCM_S16LE, sample_rate=16_000, chunk_size=CHUNK
    )
    await client.start_session(
        transcription_config=sm.TranscriptionConfig(enable_partials=partials or None),
        audio_format=audio_format,
    )
    marks: dict[str, float] = {}
    async for chunk in paced_chunks(_pcm(path), pace, marks):
        await client.send_audio(chunk)
    await client.stop_session()
    finished = time.perf_counter()
    await client.close()
    words = sum(len(message["results"]) for message in finals)
    return {"words": words, "finished": finished, **marks}


def _uncompressed_connection(sm: Any) -> Any:
    """The SDK's connection settings, plus ``compression=None`` for ``websockets.connect``."""

    class Uncompressed(sm.ConnectionConfig):  # type: ignore[misc,name-defined]
        def to_dict(self) -> dict[str, Any]:
            return {**super().to_dict(), "compression": None}

    return Uncompressed()


CLIENTS: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "ours_batch": ours_batch,
    "sdk_batch": sdk_batch,
    "sdk_batch_pydantic": sdk_batch_pydantic,
    "sdk_batch_rules": sdk_batch_rules,
    "ours_realtime": ours_realtime,
    "sdk_realtime": sdk_realtime,
}


def _time_import(what: str) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    for module in IMPORTS[what]:
        imported = importlib.import_module(module)
    if what == "import-ours-api":
        for name in ("transcribe", "stream", "Transcript", "TranscriptionOptions"):
            getattr(imported, name)
    print(
        json.dumps(
            {"cpu_seconds": time.process_time() - cpu, "wall_seconds": time.perf_counter() - wall}
        )
    )


def _warm_up(client: Callable[..., Awaitable[dict[str, Any]]], path: Path, *urls: str) -> None:
    """One second of the audio through the same client, untimed: what a process pays once
    (imports, the TLS context, validators built on first use) is in the import figures, and a
    real-time figure per audio second is what each further second costs."""
    with tempfile.TemporaryDirectory() as directory:
        second = Path(directory) / "second.wav"
        with wave.open(str(second), "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(16_000)
            writer.writeframes(_pcm(path)[:32_000])
        asyncio.run(client(second, *urls))


def _run_client(name: str, path: str, batch_url: str, rt_url: str, options: str = "{}") -> None:
    if name.endswith("_realtime"):
        _warm_up(CLIENTS[name], Path(path), batch_url, rt_url)
    cpu_before = time.process_time()
    started = time.perf_counter()
    result = asyncio.run(CLIENTS[name](Path(path), batch_url, rt_url, **json.loads(options)))
    result.update(
        wall_seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_before,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        full_collections=gc.get_stats()[2]["collections"],
    )
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] in IMPORTS:
        _time_import(sys.argv[1])
    else:
        _run_client(*sys.argv[1:])
