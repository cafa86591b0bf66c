"""A stand-in for your application: it captions a recording through Speechmatics."""

from __future__ import annotations

from pathlib import Path

from speechmatics_modes import Settings, transcribe


async def caption(recording: Path, settings: Settings | None = None) -> str:
    """The recording's transcript as one caption line (``settings=None``: the environment's)."""
    transcript = await transcribe(recording, settings=settings)
    return transcript.text.strip()
