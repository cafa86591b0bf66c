"""One worker of a shared bulk run, as a process: ``python -m tests._bulk_worker ARGS``.

Arguments: the journal URL, the batch URL, the run's concurrency, the manifest, and the
directory each transcript is written to (as ``<id>.txt``, replaced atomically, so an input
delivered again after a crash overwrites its file rather than adding one).
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
from pydantic import SecretStr

from speechmatics_modes import Settings, read_manifest, transcribe_many


async def work(journal: str, batch_url: str, concurrency: int, manifest: str, out: Path) -> int:
    settings = Settings(api_key=SecretStr("local"), batch_url=batch_url, backend="cloud")
    failures = 0
    async for result in transcribe_many(
        read_manifest(manifest), concurrency=concurrency, settings=settings, journal=journal
    ):
        if result.transcript is None:
            print(f"failed {result.id}: {result.error}", file=sys.stderr, flush=True)
            failures += 1
            continue
        partial = out / f".{result.id}.partial"
        partial.write_text(result.transcript.text)
        partial.replace(out / f"{result.id}.txt")
    return 1 if failures else 0


if __name__ == "__main__":
    journal, batch_url, concurrency, manifest, out = sys.argv[1:6]
    sys.exit(anyio.run(work, journal, batch_url, int(concurrency), manifest, Path(out)))
