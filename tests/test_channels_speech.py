"""A two-speaker call as two channels, on the embedded engine's real speech recognition.

The agent speaks, then the caller; each channel holds one speaker and silence while the other
talks. Transcribed as two channels of one session, each channel must hear what it hears alone
(the same word error rate, within a point), every word must carry its speaker's channel, and
batch must give the same channels.
"""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator
from itertools import zip_longest

import pytest

from benchmarks import read_pcm
from benchmarks._wer import word_error_rate
from speechmatics_modes import Transcript, transcribe
from speechmatics_modes.local import LocalServer
from tests.conftest import Clip
from tests.local.conftest import pcm_bytes

pytestmark = pytest.mark.anyio

_RATE = 16_000
_GAP = 0.5
"""Seconds of silence between the turns."""
_CHUNK = 3_200


@pytest.fixture(scope="module")
def call(speech_clips: list[Clip]) -> tuple[Clip, Clip]:
    """Two speakers: a LibriSpeech reader, then a LibriVox reader."""
    by_name = {clip.path.name: clip for clip in speech_clips}
    return (
        by_name["librispeech-1988-24833-0003.wav"],
        by_name["librivox-sense-and-sensibility-0870.wav"],
    )


@pytest.fixture
async def speech_server() -> AsyncIterator[LocalServer]:
    async with LocalServer() as server:
        yield server


def _channels(call: tuple[Clip, Clip]) -> tuple[bytes, bytes]:
    """The agent's channel and the caller's, of equal length: each speaks in turn."""
    agent, caller = (read_pcm(clip.path) for clip in call)
    gap = pcm_bytes(_GAP)
    return agent + gap + pcm_bytes(len(caller) / 2 / _RATE), pcm_bytes(
        len(agent) / 2 / _RATE
    ) + gap + caller


def _chunks(pcm: bytes) -> list[bytes]:
    return [pcm[start : start + _CHUNK] for start in range(0, len(pcm), _CHUNK)]


def _stereo_wav(left: bytes, right: bytes) -> bytes:
    frames = bytearray()
    for a, b in zip_longest(_chunks_of(left), _chunks_of(right), fillvalue=b"\x00\x00"):
        frames += a + b
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(_RATE)
        writer.writeframes(bytes(frames))
    return buffer.getvalue()


def _chunks_of(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + 2] for i in range(0, len(pcm), 2)]


def _said(transcript: Transcript, channel: str | None) -> str:
    return " ".join(w.content for w in transcript.words if w.channel == channel)


async def test_a_call_as_two_channels_hears_each_speaker_as_alone(
    speech_server: LocalServer, call: tuple[Clip, Clip]
) -> None:
    agent, caller = _channels(call)
    settings = speech_server.settings()
    together = await transcribe(
        {"agent": _chunks(agent), "caller": _chunks(caller)}, settings=settings
    )
    turn = len(read_pcm(call[0].path)) / 2 / _RATE + _GAP / 2
    for label, pcm, clip in (("agent", agent, call[0]), ("caller", caller, call[1])):
        alone = await transcribe(_chunks(pcm), settings=settings)
        error_together = word_error_rate([clip.reference], [_said(together, label)])
        error_alone = word_error_rate([clip.reference], [_said(alone, None)])
        print(f"{label}: WER {error_together:.3f} as a channel, {error_alone:.3f} alone")
        assert abs(error_together - error_alone) <= 0.01
    agent_words = [w for w in together.words if w.channel == "agent"]
    caller_words = [w for w in together.words if w.channel == "caller"]
    assert agent_words
    assert caller_words
    assert all(w.end <= turn for w in agent_words)
    assert all(w.start >= turn for w in caller_words)
    assert [s.channel for s in together.segments()] == ["agent", "caller"]

    options = {"diarization": "channel", "channel_diarization_labels": ["agent", "caller"]}
    batch = await transcribe(
        _stereo_wav(agent, caller), "batch", options=options, settings=settings
    )
    assert [s.channel for s in batch.segments()] == ["agent", "caller"]
    assert all(w.end <= turn for w in batch.words if w.channel == "agent")
    assert all(w.start >= turn for w in batch.words if w.channel == "caller")
