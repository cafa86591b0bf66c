"""Fixtures every test shares: hermetic environment, the asyncio backend, the test audio."""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from speechmatics_modes import Final, StreamEvent

TEST_AUDIO = Path(__file__).parent / "data"
"""Real speech with reference transcripts (credits and licences in data/NOTICE)."""

SYNTHETIC_AUDIO = TEST_AUDIO / "synthetic"
"""Speech generated with espeak-ng: clean, so exact transcripts can be asserted."""


@dataclass(frozen=True)
class Clip:
    """One clip of tests/data with its reference transcript."""

    path: Path
    duration: float
    reference: str


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether ``condition`` holds within ``seconds``: for state of another component (a
    server's counters, files it removes) that announces no event."""
    with anyio.move_on_after(seconds):
        while not condition():  # noqa: ASYNC110 - the condition is another component's state
            await anyio.sleep(0.02)
    return condition()


def final_words(events: Iterable[StreamEvent]) -> list[tuple[str, float, float]]:
    """The spoken words of every :class:`Final` in ``events``: lower case, with their times."""
    return [
        (word.content.lower(), word.start, word.end)
        for event in events
        if isinstance(event, Final)
        for word in event.words
        if not word.is_punctuation
    ]


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
    with (TEST_AUDIO / "manifest.tsv").open(newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return [
            Clip(TEST_AUDIO / row["filename"], float(row["duration_s"]), row["reference"])
            for row in rows
        ]


@pytest.fixture(scope="session")
def speech_clips() -> list[Clip]:
    """Every real-speech clip in tests/data, in manifest order."""
    return _read_manifest()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server of our own for the session (see tests/_postgres.py)."""
    from tests._postgres import missing_reason, running_server, skip_or_fail

    reason = missing_reason()
    if reason is not None:
        skip_or_fail(reason)
    with running_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """An empty database for one test, on the session's server."""
    from tests._postgres import fresh_database

    name = "t_" + uuid.uuid4().hex[:12]
    return fresh_database(postgres_server, name)
