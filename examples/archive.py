"""Transcribe an archive listed in a manifest, resumably; any number of copies can share it.

    python examples/archive.py [JOURNAL]

JOURNAL is a SQLite file (the default: a temporary one) or a postgresql:// URL. With a
PostgreSQL journal, run this same script on several machines at once: each recording is
transcribed by one of them, the concurrency limit holds for all of them together, and a copy
that dies has its recordings taken over (pip install 'speechmatics-modes[postgres]').
With SPEECHMATICS_API_KEY set this uses Speechmatics; without it, the embedded offline server.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import anyio

from speechmatics_modes import Settings, read_manifest, transcribe_many

SAMPLE = Path(__file__).parent / "sample.wav"


async def main(journal: str | None) -> None:
    settings = Settings()
    if settings.api_key is None:
        print("No SPEECHMATICS_API_KEY: using the embedded offline server.\n")
        settings = Settings(backend="local")
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder)
        rows = ["id,path"]
        for number in range(3):  # an archive of three calls, listed by id
            shutil.copy(SAMPLE, archive / f"call-{number}.wav")
            rows.append(f"call-{number},call-{number}.wav")
        manifest = archive / "calls.csv"
        manifest.write_text("\n".join(rows) + "\n")
        async for result in transcribe_many(
            read_manifest(manifest),
            journal=journal or archive / "journal.sqlite",
            concurrency=2,
            settings=settings,
        ):
            if result.transcript is None:
                print(f"{result.id}: failed: {result.error}")
            else:
                print(f"{result.id}: {result.transcript.to_text()[:60]}...")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else None)
