"""Fixtures every test shares: hermetic environment, the asyncio backend, the shared audio."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

SHARED_AUDIO = Path(
    os.environ.get("SPEECHMATICS_MODES_TEST_AUDIO", Path(__file__).parents[2] / "shared" / "audio")
)
"""Real speech with reference transcripts, kept beside the repo (never copied into it)."""


@dataclass(frozen=True)
class Clip:
    """One clip of ../shared/audio with its reference transcript."""

    path: Path
    duration: float
    reference: str


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real key or URLs: the SDKs read these variables too."""
    for name in list(os.environ):
        if name.startswith(("SPEECHMATICS_", "SM_")):
            monkeypatch.delenv(name)


@pytest.fixture
def anyio_backend() -> str:
    """The SDKs are asyncio-only, so we test on asyncio alone."""
    return "asyncio"


def _read_manifest() -> list[Clip]:
    manifest = SHARED_AUDIO / "manifest.tsv"
    if not manifest.exists():
        return []
    with manifest.open(newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return [
            Clip(SHARED_AUDIO / row["filename"], float(row["duration_s"]), row["reference"])
            for row in rows
        ]


@pytest.fixture(scope="session")
def speech_clips() -> list[Clip]:
    """Every real-speech clip in ../shared/audio; the suite needs them (CI has them too)."""
    clips = _read_manifest()
    if not clips:
        pytest.fail(
            f"no speech clips found under {SHARED_AUDIO}; set SPEECHMATICS_MODES_TEST_AUDIO"
        )
    return clips
