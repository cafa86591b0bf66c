"""Live sessions as users meet them: :func:`speechmatics_modes.stream` against a server's socket.

Each session sends its audio in 100 ms chunks at real-time pace, with the README's live
settings (partials on, ``max_delay`` 1 s), through this library's public client to a
``LocalServer`` in its own process (``benchmarks._server``), so what the server costs is that
process's CPU time and every figure includes the WebSocket, the session protocol and admission.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from benchmarks._clients import CHUNK, KEY, paced_chunks
from benchmarks._server import Server
from benchmarks._wer import word_error_rate
from speechmatics_modes import (
    AudioFormat,
    Conversation,
    EndOfUtterance,
    Final,
    ServerError,
    Settings,
    TranscriptionOptions,
    TranscriptStream,
    stream,
)

LIVE = TranscriptionOptions(enable_partials=True, max_delay=1.0)
"""The README's live example's settings."""
LIVE_LABEL = "through the server, paced, partials on, max_delay 1 s"
"""How the tables describe these sessions."""
FORMAT = AudioFormat(chunk_size=CHUNK)
BYTES_PER_SECOND = 32_000
KEEP_UP_SECONDS = 1.5
"""A session keeps up if its last final comes at most this long after its audio ended."""
FORCE_AT = 0.6
"""How far into a clip ForceEndOfUtterance is sent (mid-utterance for every test clip)."""
TURN_SILENCE_SECONDS = 2.0
"""Silence sent after each clip in a turn-taking session, so its last utterance can end."""
SETTLE_SECONDS = 2.0
"""Pause between rounds of sessions, so the server has released the last round's slots."""


def client_settings(server: Server) -> Settings:
    """This library's settings for reaching ``server``."""
    batch_url, rt_url = server
    return Settings(api_key=KEY, batch_url=batch_url, rt_url=rt_url)


@dataclass(frozen=True)
class LiveSession:
    """One paced session: what it heard and how late, or how it was refused."""

    text: str = ""
    last_final_lag: float = math.nan
    """Wall seconds from the last chunk sent to the last final word."""
    refused: str | None = None
    """The error raised at the start, as ``"ErrorClass: error_type"``."""


async def live_session(where: Settings, pcm: bytes) -> LiveSession:
    """Stream ``pcm`` at real-time pace; a refusal by the server is a result, not a failure."""
    marks: dict[str, float] = {}
    last_final = math.nan
    try:
        async with stream(
            paced_chunks(pcm, 1.0, marks), options=LIVE, audio_format=FORMAT, settings=where
        ) as events:
            async for event in events:
                if isinstance(event, Final) and event.words:
                    last_final = time.perf_counter()
    except ServerError as exc:
        return LiveSession(refused=f"{type(exc).__name__}: {exc.error_type}")
    return LiveSession(events.transcript.text, last_final - marks["last_chunk_sent"])


@dataclass(frozen=True)
class Round:
    """``started`` sessions of the same audio started together, and the CPU they cost."""

    started: int
    sessions: list[LiveSession]
    server_cpu_seconds: float
    client_cpu_seconds: float
    """This process's: the clients share the machine's cores with the server."""

    def summary(self, reference: str, audio_seconds: float) -> dict[str, Any]:
        heard = [session for session in self.sessions if session.refused is None]
        lags = [session.last_final_lag for session in heard]
        heard_seconds = max(1, len(heard)) * audio_seconds
        return {
            "started": self.started,
            "admitted": len(heard),
            "refused": [session.refused for session in self.sessions if session.refused],
            "last_final_lags_s": lags,
            "kept_up": all(lag <= KEEP_UP_SECONDS for lag in lags),
            "wers": [word_error_rate([reference], [session.text]) for session in heard],
            "server_cpu_per_audio_second": self.server_cpu_seconds / heard_seconds,
            "client_cpu_per_audio_second": self.client_cpu_seconds / heard_seconds,
        }


async def concurrent(server: Server, pcm: bytes, count: int) -> Round:
    """``count`` sessions of ``pcm`` started at once against ``server``."""
    where = client_settings(server)
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    sessions = await asyncio.gather(*(live_session(where, pcm) for _ in range(count)))
    result = Round(
        count,
        list(sessions),
        server.cpu_seconds() - server_cpu,
        time.process_time() - client_cpu,
    )
    await asyncio.sleep(SETTLE_SECONDS)
    return result


async def capacity(server: Server, pcm: bytes, reference: str, most: int) -> dict[str, Any]:
    """Rounds of 1 to ``most`` sessions; ``sessions`` is the most that were admitted and all
    kept up (counting up from one, so a round that fails ends the count)."""
    audio_seconds = len(pcm) / BYTES_PER_SECOND
    rounds = [
        (await concurrent(server, pcm, count)).summary(reference, audio_seconds)
        for count in range(1, most + 1)
    ]
    sustained = 0
    for level in rounds:
        if level["refused"] or not level["kept_up"]:
            break
        sustained = level["started"]
    return {"sessions": sustained, "rounds": rounds}


async def forced_answer(where: Settings, pcm: bytes) -> float:
    """Wall seconds from ForceEndOfUtterance, sent :data:`FORCE_AT` into the audio of a paced
    session, to the forced EndOfUtterance that answers it."""
    asked: list[float] = []

    async def force(events: TranscriptStream) -> None:
        await asyncio.sleep(FORCE_AT * len(pcm) / BYTES_PER_SECOND)
        asked.append(time.perf_counter())
        await events.force_end_of_utterance()

    async with stream(
        paced_chunks(pcm, 1.0, {}), options=LIVE, audio_format=FORMAT, settings=where
    ) as events:
        forcing = asyncio.ensure_future(force(events))
        async for event in events:
            if isinstance(event, EndOfUtterance) and event.forced:
                answered = time.perf_counter()
                break
        else:
            raise RuntimeError("the stream ended without answering ForceEndOfUtterance")
        await forcing
    return answered - asked[0]


async def forced_answers(server: Server, clips: list[bytes]) -> list[float]:
    """:func:`forced_answer` for each clip in turn: one session at a time (an idle server)."""
    where = client_settings(server)
    return [await forced_answer(where, pcm) for pcm in clips]


async def turn_delays(where: Settings, pcm: bytes, trigger: float) -> list[float]:
    """How long a voice agent waits to reply: for each EndOfUtterance of a paced session that
    asks for them at ``trigger``, the seconds from the end of the turn's last final word to its
    arrival, counted as audio sent at real-time pace (so decoding time is included)."""
    marks: dict[str, float] = {}
    options = LIVE.model_copy(
        update={"conversation_config": Conversation(end_of_utterance_silence_trigger=trigger)}
    )
    audio = pcm + bytes(round(TURN_SILENCE_SECONDS * BYTES_PER_SECOND))
    delays: list[float] = []
    last_word_end: float | None = None
    async with stream(
        paced_chunks(audio, 1.0, marks), options=options, audio_format=FORMAT, settings=where
    ) as events:
        async for event in events:
            if isinstance(event, Final) and event.words:
                last_word_end = event.words[-1].end
            elif isinstance(event, EndOfUtterance) and last_word_end is not None:
                sent = time.perf_counter() - marks["first_chunk_sent"]
                delays.append(sent - last_word_end)
                last_word_end = None
    return delays


async def turn_taking(server: Server, clips: list[bytes], trigger: float) -> list[float]:
    """:func:`turn_delays` of each clip in turn, one session at a time (an idle server)."""
    where = client_settings(server)
    return [delay for pcm in clips for delay in await turn_delays(where, pcm, trigger)]
