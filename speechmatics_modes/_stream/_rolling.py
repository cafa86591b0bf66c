"""One real-time stream across many sessions: planned handovers, idle closes, reconnections.

:class:`RollingStream` has the interface of
:class:`~speechmatics_modes._realtime.RealtimeSession` (``run(chunks)``, ``transcript()``) and
runs one ``RealtimeSession`` per server session. It only pumps: the decisions about which
audio to send and which words to emit are the bookkeeping of ``_ledger.py``. Three tasks share
the work:

- the *reader* moves the caller's chunks into the
  :class:`~speechmatics_modes._stream._ledger.AudioRing` (the stream's sample clock), keeping it
  bounded;
- the *driver* sends audio from the ring to the current session and decides when to hand
  over (budget or warning, at a pause), close for idleness, or reconnect after a drop;
- the *emitter* passes each session's events on in session order, rebased and deduplicated,
  so a new session's words never overtake the old session's last finals.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import (
    MemoryObjectReceiveStream,
    MemoryObjectSendStream,
)

from speechmatics_modes._config import AudioFormat, RealtimeOptions, TranscriptionOptions
from speechmatics_modes._exceptions import (
    AUDIO_SENT_WAS_TRANSCRIBED,
    SpeechmaticsModesError,
    TransportError,
    source_failed,
)
from speechmatics_modes._insights import SpeakersResult
from speechmatics_modes._models import (
    ExtrasCollector,
    Mode,
    ServerWarning,
    SessionInfo,
    StreamEvent,
    Transcript,
)
from speechmatics_modes._realtime import RealtimeSession
from speechmatics_modes._retry import Backoff
from speechmatics_modes._settings import Settings
from speechmatics_modes._stream._ledger import AudioRing, Leg, SpeakerLedger, WordLedger
from speechmatics_modes._stream._policy import (
    AudioGap,
    Reconnected,
    RolloverPolicy,
    RolloverReason,
    SessionRollover,
    StreamMetrics,
)

__all__ = ["RollingStream"]

logger = logging.getLogger(__name__)

_SESSION_EVENTS = 64
"""Events a session may hold while an earlier one drains; then it pauses its audio."""
_IN_FLIGHT_SECONDS = 2.0
"""Audio sent ahead of acknowledgements: small, so that a session handed over (or dropped)
has little unfinished audio to drain (or replay), yet enough to keep a loopback link busy."""
_START_WAIT_SECONDS = 15.0
"""How long a control waits for a session to be receiving audio."""
_POLL_SECONDS = 0.25
"""How often the driver re-checks clocks (budget, pause deadline, idleness) while waiting."""


@dataclass(eq=False)
class _SessionOnStream:
    """One server session in flight, and where it sits on the stream."""

    client: RealtimeSession
    """The session's own client: one WebSocket, one ``StartRecognition`` to ``EndOfTranscript``."""
    place: Leg
    chunks: MemoryObjectSendStream[bytes]
    events: MemoryObjectReceiveStream[StreamEvent]
    opened_at: float
    intro: list[StreamEvent] = field(default_factory=list)
    """Events the emitter passes on before this session's own (why it took over)."""
    committed: anyio.Event = field(default_factory=anyio.Event)
    """Set when the session was given its place on the stream, or abandoned."""
    abandoned: bool = False
    order: int = -1
    """Which session of the stream it is (0 first), once committed."""
    retired: bool = False
    """Handed over or closed for idleness: it only drains now."""
    warned: bool = False
    """The service warned that this session will time out."""
    done: anyio.Event = field(default_factory=anyio.Event)
    drained: anyio.Event = field(default_factory=anyio.Event)
    """Set when the emitter has passed on every event of the session."""
    error: SpeechmaticsModesError | None = None

    @property
    def ready(self) -> bool:
        """Started and still running: audio can be switched onto it."""
        return self.client.started.is_set() and not self.done.is_set()


@dataclass
class _Handover:
    successor: _SessionOnStream
    reason: Literal["budget", "warning"]
    due_at: float


class RollingStream:
    """A real-time stream that outlives its sessions (see the module docstring).

    Args:
        settings: Where to connect.
        options: How to transcribe; every session gets the same.
        audio_format: What the chunks contain (raw PCM: replay cuts it anywhere).
        events: Where events go, in order; ``None`` only collects the transcript.
        policy: When to hand over and how to reconnect.
        live: The source cannot wait (a feed, a microphone): a full buffer drops its oldest
            audio (reported as :class:`AudioGap`) instead of pausing the source.
        features: Translation and audio events, asked of every session.
        random: Jitter source for the backoff, in [0, 1).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        options: TranscriptionOptions,
        audio_format: AudioFormat,
        events: MemoryObjectSendStream[StreamEvent] | None,
        policy: RolloverPolicy,
        live: bool,
        features: RealtimeOptions | None = None,
        random: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._options = options
        self._features = features
        self._format = audio_format
        self._events = events
        self._policy = policy
        self._bps = audio_format.bytes_per_second
        self._ring = AudioRing(
            int(policy.buffer_seconds * self._bps), audio_format, policy.silence_dbfs
        )
        mode = policy.on_buffer_full or ("drop_oldest" if live else "wait")
        self._source_waits = mode == "wait"
        self._words = WordLedger(keep_words=policy.keep_transcript)
        self._random = random
        self._backoff = Backoff.following(policy, random)
        self._handover_backoff = Backoff.following(policy, random)
        """Paces retries of a refused handover. Kept apart from reconnection's count: while
        the current session lives, a refusal (no capacity yet) is waited out, never a reason
        to give up."""
        self.metrics = StreamMetrics()
        """Counters of sessions, handovers, reconnections, replayed audio and gaps."""
        self._changed = anyio.Event()
        self._source_done = False
        self._source_failure: Exception | None = None
        self._last_audio_at = 0.0
        self._sent_point = 0
        self._draining: set[_SessionOnStream] = set()
        self._next_handover_at = 0.0
        self._session_ids: list[str] = []
        self._word_delimiter = " "
        self._queue: MemoryObjectSendStream[_SessionOnStream] | None = None
        self._current: _SessionOnStream | None = None
        """The committed session audio goes to (retired once handed over or closed)."""
        self._opening: set[_SessionOnStream] = set()
        """Sessions opened but not yet given their place: a handover's successor, or a
        reconnection's; they were asked for the settings in force when they were opened."""
        self._sent_high = 0
        """The furthest stream offset any session was sent: the audio the caller has given."""
        self._forcing = 0
        """ForceEndOfUtterance requests on their way: the current session must not end yet."""
        self._finished = False
        self._extras = ExtrasCollector()
        self._speakers = SpeakerLedger()

    def transcript(self) -> Transcript:
        """Every final word emitted so far, on the stream's clock."""
        words = tuple(self._words.words)
        return Transcript(
            words=words,
            mode=Mode.REALTIME,
            language=next((word.language for word in words if word.language), None),
            duration=self._words.emitted_until or None,
            session_ids=tuple(self._session_ids),
            word_delimiter=self._word_delimiter,
            **self._extras.fields(),
        )

    async def run(self, chunks: AsyncIterator[bytes]) -> None:
        """Transcribe every chunk, across as many sessions as it takes.

        Raises:
            AuthenticationError, ConfigurationError, ServerError: an error no new session can
                cure, at once.
            TransportError, SessionLimitError: reconnection gave up after
                ``policy.max_attempts`` consecutive failures.
            AudioSourceError: the source failed; the audio before it was transcribed.
            Each carries ``partial_transcript``.
        """
        error: SpeechmaticsModesError | None = None
        queue, backlog = anyio.create_memory_object_stream[_SessionOnStream](math.inf)
        self._queue = queue
        self._last_audio_at = anyio.current_time()
        async with anyio.create_task_group() as group:
            group.start_soon(self._read_source, chunks)
            group.start_soon(self._emit, backlog)
            try:
                with queue:
                    await self._drive(group)
            except SpeechmaticsModesError as exc:
                error = exc
                group.cancel_scope.cancel()
            finally:
                self._finished = True
        error = error or self._source_error()
        if error is not None:
            error.partial_transcript = self.transcript()
            raise error

    def _source_error(self) -> SpeechmaticsModesError | None:
        failure = self._source_failure
        if failure is None or isinstance(failure, SpeechmaticsModesError):
            return failure
        return source_failed(failure, AUDIO_SENT_WAS_TRANSCRIBED)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait(self, changed: anyio.Event) -> None:
        with anyio.move_on_after(_POLL_SECONDS):
            await changed.wait()

    # The reader ---------------------------------------------------------------------------

    async def _read_source(self, chunks: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in chunks:
                await self._room_for_more()
                self._ring.append(chunk)
                self._last_audio_at = anyio.current_time()
                self._notify()
        except Exception as exc:
            self._source_failure = exc
        finally:
            self._source_done = True
            self._notify()

    async def _room_for_more(self) -> None:
        """A source that can wait waits while half the ring is audio not yet sent."""
        while self._source_waits:
            changed = self._changed
            if self._ring.end - self._sent_point < self._ring.capacity // 2:
                return
            await changed.wait()

    # The driver ---------------------------------------------------------------------------

    async def _drive(self, group: TaskGroup) -> None:
        first, _ = await self._connect(group)
        self._commit(first, 0, [])
        current: _SessionOnStream | None = first
        while current is not None:
            current = await self._serve(group, current)

    async def _serve(self, group: TaskGroup, current: _SessionOnStream) -> _SessionOnStream | None:
        """Send audio to ``current`` until another session (or none) takes over."""
        handover: _Handover | None = None
        closing = False
        while True:
            changed = self._changed
            if current.done.is_set():
                return await self._after_end(group, current, handover)
            self._ring.release(self._needed_from(current))
            if self._ring.start > current.place.sent:
                return await self._skip_lost_audio(group, current, handover)
            handover = self._plan_handover(group, current, handover)
            if handover is not None and self._switch_now(current, handover):
                return self._switch(current, handover)
            if self._idle(current):
                self._abandon(handover.successor if handover else None)
                return await self._close_for_idleness(group, current)
            data = self._ring.read(current.place.sent)
            if data:
                await self._send(current, data)
                continue
            if self._source_done and not closing and not self._forcing:
                closing = True
                current.chunks.close()  # EndOfStream; the last finals follow
            await self._wait(changed)

    def _needed_from(self, current: _SessionOnStream) -> int:
        """The oldest audio a session may still need (draining ones included).

        Replayed after a drop, or sent again as a handover's lead-in (:meth:`_lead_in`).
        """
        lead_in = max(0, current.place.sent - self._lead_in_bytes)
        return min(lead_in, *(session.place.final_end for session in (current, *self._draining)))

    def _lead_in(self, switch: int) -> int:
        """Where the next session of a handover at ``switch`` starts: ``lead_in`` before it.

        A session starting at the switch heard its first words without the sentence before
        them; on the default local engine that cost whole phrases (a quick "and that" at the
        start of the session's first window). A replay after a drop has no lead-in: sessions
        dropped every few seconds would spend them on audio already final, and a test server
        dropping each after 25 messages stopped the stream's progress.
        """
        return max(self._ring.start, switch - self._lead_in_bytes)

    @property
    def _lead_in_bytes(self) -> int:
        return self._aligned(self._policy.lead_in * self._bps)

    async def _send(self, current: _SessionOnStream, data: bytes) -> None:
        try:
            await current.chunks.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            await current.done.wait()
            return
        current.place.sent += len(data)
        self._sent_point = current.place.sent
        self._sent_high = max(self._sent_high, self._sent_point)
        self._notify()

    async def _after_end(
        self, group: TaskGroup, ended: _SessionOnStream, handover: _Handover | None
    ) -> _SessionOnStream | None:
        """The current session ended: the stream is complete, or it must reconnect."""
        await ended.drained.wait()
        complete = self._source_done and ended.place.sent >= self._ring.end
        if complete and (ended.error is None or ended.place.final_end >= ended.place.sent):
            self._abandon(handover.successor if handover else None)
            return None  # (a failure after the last final loses nothing)
        if ended.error is None:  # the service ended the session on its own
            ended.error = TransportError("the session ended before the audio did")
        return await self._reconnect(group, ended, handover)

    async def _reconnect(
        self, group: TaskGroup, failed: _SessionOnStream, handover: _Handover | None
    ) -> _SessionOnStream:
        error = failed.error
        assert error is not None
        if not error.retryable:
            raise error
        healthy = self._proved_healthy(failed)
        if healthy:
            self._backoff.reset()
        logger.info(
            "session %s ended (%s); %s, replaying from %.2f s",
            failed.place.session_id,
            error,
            "it was healthy" if healthy else "a failed attempt",
            failed.place.final_end / self._bps,
        )
        resume = failed.place.final_end
        intro: list[StreamEvent] = []
        if resume < self._ring.start:
            intro.extend(self._gap(resume, self._ring.start))
            resume = self._ring.start
        spare = handover.successor if handover is not None else None
        if not (healthy and spare is not None and spare.ready):
            await self._give_up_or_wait(error)  # counts the attempt; raises once they run out
        if spare is not None and spare.ready:
            replacement, attempts = spare, 1
        else:
            self._abandon(spare)
            replacement, attempts = await self._connect(group)
        replayed = max(0, failed.place.sent - resume) / self._bps
        intro.append(
            Reconnected(
                offset=resume / self._bps,
                replayed_seconds=replayed,
                attempts=attempts,
                cause=str(error),
                session_id=replacement.client.session_id,
            )
        )
        self.metrics.reconnects += 1
        self.metrics.replayed_seconds += replayed
        self._commit(replacement, resume, intro)
        return replacement

    def _proved_healthy(self, ended: _SessionOnStream) -> bool:
        """Whether ``ended`` ran ``healthy_after`` and its finals moved the stream on.

        A session dropped before its first final leaves the stream where it was: the next one
        replays the same audio, and may well fail at the same point. Counting such a session
        as healthy (however long it ran) would reset the backoff every time, and the stream
        would replay forever instead of giving up after ``max_attempts``.
        """
        ran = anyio.current_time() - ended.opened_at >= self._policy.healthy_after
        return ran and ended.place.final_end > ended.place.base

    async def _give_up_or_wait(self, error: SpeechmaticsModesError) -> None:
        """Raise ``error`` if it cannot be cured or attempts ran out; else back off."""
        if not await self._waited_to_retry(error, self._backoff):
            raise error

    async def _waited_to_retry(self, error: SpeechmaticsModesError, backoff: Backoff) -> bool:
        """The stream's one retry rule, for reconnections and replays alike.

        Returns:
            False at once if no new session can cure ``error``, or ``backoff`` already counts
            ``max_attempts`` failures in a row; else True, after waiting its next delay (which
            counts this failure).
        """
        limit = self._policy.max_attempts
        if not error.retryable or (limit is not None and backoff.failures >= limit):
            return False
        await anyio.sleep(backoff.next_delay())
        return True

    async def _connect(self, group: TaskGroup) -> tuple[_SessionOnStream, int]:
        """Open sessions until one starts, backing off between attempts.

        Returns:
            The started session, and how many attempts it took.
        """
        attempts = 0
        while True:
            attempts += 1
            session = self._open(group)
            await _first_of(session.client.started, session.done)
            if session.client.started.is_set():
                return session, attempts
            self._abandon(session)
            await self._give_up_or_wait(
                session.error or TransportError("the session ended before it started")
            )

    def _open(self, group: TaskGroup) -> _SessionOnStream:
        chunk_sender, chunk_receiver = anyio.create_memory_object_stream[bytes](0)
        event_sender, event_receiver = anyio.create_memory_object_stream[StreamEvent](
            _SESSION_EVENTS
        )
        session = _SessionOnStream(
            client=self._client(event_sender, final_speakers=True),
            place=Leg(self._bps, self._format.bytes_per_sample),
            chunks=chunk_sender,
            events=event_receiver,
            opened_at=anyio.current_time(),
        )
        self.metrics.connection_attempts += 1
        self._opening.add(session)
        assert self._queue is not None
        self._queue.send_nowait(session)
        group.start_soon(self._run_session, session, chunk_receiver, event_sender)
        return session

    def _client(
        self, events: MemoryObjectSendStream[StreamEvent], *, final_speakers: bool
    ) -> RealtimeSession:
        """A new server session's client, with the options of the stream as they are now.

        ``final_speakers`` has it ask (with speaker diarization) for its speakers at its end,
        for :class:`SpeakerLedger`; a replay of old audio need not.
        """
        return RealtimeSession(
            settings=self._settings,
            options=self._options,
            audio_format=self._format,
            events=events,
            features=self._features,
            max_in_flight_seconds=_IN_FLIGHT_SECONDS,
            final_speakers=final_speakers and self._options.identifies_speakers,
        )

    async def _run_session(
        self,
        session: _SessionOnStream,
        chunks: MemoryObjectReceiveStream[bytes],
        events: MemoryObjectSendStream[StreamEvent],
    ) -> None:
        try:
            with chunks, events:
                session.error = await _run_to_end(session.client, chunks)
        finally:
            session.chunks.close()
            session.done.set()
            self._notify()

    def _commit(
        self,
        session: _SessionOnStream,
        base: int,
        intro: list[StreamEvent],
        *,
        owned_from: int | None = None,
    ) -> None:
        session.place.commit(base, owned_from=owned_from)
        session.place.session_id = session.client.session_id
        session.intro = intro
        session.order = self.metrics.sessions
        session.committed.set()
        self._opening.discard(session)
        self._current = session
        self._sent_point = base
        self.metrics.sessions += 1

    def _abandon(self, session: _SessionOnStream | None) -> None:
        """Give up a session that never carried audio; the emitter skips it."""
        if session is None:
            return
        session.abandoned = True
        self._opening.discard(session)
        session.chunks.close()
        session.committed.set()

    def _retire(self, session: _SessionOnStream) -> None:
        """Hand the session's last audio over: EndOfStream, then it drains on its own.

        Retiring is planned (a handover, an idle close, an overflow): a session that proved
        healthy ends the run of failures, so the next connection counts its attempts afresh.
        """
        if self._proved_healthy(session):
            self._backoff.reset()
        session.retired = True
        self._draining.add(session)
        session.chunks.close()

    def _plan_handover(
        self, group: TaskGroup, current: _SessionOnStream, handover: _Handover | None
    ) -> _Handover | None:
        """Open the next session once the current one is due to be replaced."""
        now = anyio.current_time()
        if handover is not None and handover.successor.done.is_set():
            self._abandon(handover.successor)  # the next session failed to start: try again later
            self._next_handover_at = now + self._handover_backoff.next_delay()
            handover = None
        if handover is not None or self._draining or now < self._next_handover_at:
            return handover
        if now - current.opened_at >= self._policy.max_session:
            return _Handover(self._open(group), "budget", now)
        if current.warned and self._policy.roll_on_warning:
            return _Handover(self._open(group), "warning", now)
        return None

    def _switch_now(self, current: _SessionOnStream, handover: _Handover) -> bool:
        if not handover.successor.ready or self._forcing:
            return False
        forced = anyio.current_time() >= handover.due_at + self._policy.pause_wait
        return forced or self._at_pause(current)

    def _at_pause(self, current: _SessionOnStream) -> bool:
        """Quiet audio just sent, or (with partials) nothing pending after the last final."""
        pause = self._policy.min_pause * self._bps
        if self._ring.quiet_run(current.place.sent) >= pause:
            return True
        place = current.place
        return (
            bool(self._options.enable_partials)
            and place.settled
            and (place.sent - place.final_end <= pause)
        )

    def _switch(self, current: _SessionOnStream, handover: _Handover) -> _SessionOnStream:
        successor = handover.successor
        at_pause = self._at_pause(current)
        switch = current.place.sent
        self._roll_over(
            current,
            successor,
            switch,
            handover.reason,
            at_pause=at_pause,
            lead_in_from=self._lead_in(switch),
        )
        self._retire(current)
        self._backoff.reset()
        self._handover_backoff.reset()
        return successor

    def _idle(self, current: _SessionOnStream) -> bool:
        idle_after = self._policy.idle_after
        if idle_after is None or current.place.sent < self._ring.end or self._source_done:
            return False
        if self._forcing:
            return False
        silent = anyio.current_time() - self._last_audio_at >= idle_after
        return silent or self._ring.quiet_run(self._ring.end) >= idle_after * self._bps

    async def _close_for_idleness(
        self, group: TaskGroup, current: _SessionOnStream
    ) -> _SessionOnStream | None:
        """Close the session while the source is quiet; open a new one when speech returns."""
        self._retire(current)
        self.metrics.idle_closes += 1
        preroll = self._aligned(self._policy.min_pause * self._bps)
        position = current.place.sent
        while True:
            changed = self._changed
            loud = self._ring.first_loud(position)
            if loud is not None:
                break
            if self._source_done:
                return None
            skip_to = max(position, self._ring.end - preroll)
            self.metrics.skipped_seconds += (skip_to - position) / self._bps
            position = skip_to
            self._ring.release(position)
            self._sent_point = self._ring.end
            await self._wait(changed)
        resume = max(position, self._ring.start, loud - preroll)
        successor, _ = await self._connect(group)
        self._roll_over(current, successor, resume, "idle", at_pause=True)
        return successor

    async def _skip_lost_audio(
        self, group: TaskGroup, current: _SessionOnStream, handover: _Handover | None
    ) -> _SessionOnStream:
        """Start a new session where the ring now starts, after an explicit gap.

        The ring discarded audio before it was sent; sending on would break the session's
        clock, whose times count the bytes it received.
        """
        self._abandon(handover.successor if handover else None)
        self._retire(current)
        successor, _ = await self._connect(group)
        start = self._ring.start
        lost = self._gap(current.place.sent, start)
        self._roll_over(current, successor, start, "overflow", at_pause=False, lost=lost)
        return successor

    def _roll_over(
        self,
        current: _SessionOnStream,
        successor: _SessionOnStream,
        base: int,
        reason: RolloverReason,
        *,
        at_pause: bool,
        lost: Sequence[StreamEvent] = (),
        lead_in_from: int | None = None,
    ) -> None:
        """Give ``successor`` the stream from offset ``base``, announced by a SessionRollover.

        ``lost`` (an :class:`AudioGap`) goes out before the announcement. ``lead_in_from``: the
        audio from there to ``base`` is sent again first, as the successor's lead-in.
        """
        rollover = SessionRollover(
            reason=reason,
            offset=base / self._bps,
            at_pause=at_pause,
            previous_session_id=current.place.session_id,
            session_id=successor.client.session_id,
        )
        sent_from = base if lead_in_from is None else lead_in_from
        self._commit(successor, sent_from, [*lost, rollover], owned_from=base)
        self.metrics.rollovers += 1

    def _gap(self, start: int, end: int) -> list[StreamEvent]:
        """An :class:`AudioGap` for ``[start, end)`` if loud audio was lost there."""
        if end <= start or not self._ring.lost_since(start):
            return []
        return [self._lost(start, end)]

    def _lost(self, start: int, end: int) -> AudioGap:
        """The :class:`AudioGap` for ``[start, end)``, counted and logged."""
        self.metrics.gaps += 1
        self.metrics.gap_seconds += (end - start) / self._bps
        logger.warning("audio %.2f-%.2f s was not transcribed", start / self._bps, end / self._bps)
        return AudioGap(start=start / self._bps, end=end / self._bps)

    def _aligned(self, size: float) -> int:
        width = self._format.bytes_per_sample
        return int(size) // width * width

    # The emitter --------------------------------------------------------------------------

    async def _emit(self, backlog: MemoryObjectReceiveStream[_SessionOnStream]) -> None:
        async with backlog:
            async for session in backlog:
                await session.committed.wait()
                if session.abandoned:
                    async with session.events:
                        async for _ in session.events:
                            pass
                else:
                    await self._emit_session(session)
                session.drained.set()
                self._notify()

    async def _emit_session(self, session: _SessionOnStream) -> None:
        for event in session.intro:
            await self._publish(event)
        async with session.events:
            async for event in session.events:
                session.place.observe(event)
                self._note(session, event)
                rebased = self._words.rebase(event, session.place)
                self.metrics.deduplicated_words = self._words.deduplicated
                if isinstance(rebased, SpeakersResult):
                    rebased = self._stream_speakers(session, rebased)
                if rebased is not None:
                    await self._publish(rebased)
                self._notify()
        await session.done.wait()
        place = session.place
        if session.retired and session.error is not None and place.final_end < place.sent:
            logger.info(
                "session %s ended while draining after a handover (%s); transcribing %.2f-%.2f s "
                "again",
                place.session_id,
                session.error,
                place.final_end / self._bps,
                place.sent / self._bps,
            )
            await self._patch(place)
        self._draining.discard(session)

    async def _patch(self, failed: Leg) -> None:
        """Transcribe again what a session left unfinished when it failed while draining.

        Its successor's words are held until this returns, so the order stays right. A
        retryable failure (above all a refusal for lack of capacity, which a busy server gives
        while the successor holds a session) is retried with backoff, by the rule reconnections
        follow (:meth:`_waited_to_retry`): the first replay starts at once, as a ready spare
        takes over from a dropped session, and up to ``max_attempts`` retries follow it, so
        audio is never given up for want of a session. What the attempts cannot finish becomes
        an :class:`AudioGap`; a replay that reached its ``EndOfTranscript`` finished all of its
        audio, including the quiet audio after its last word (a handover waits for a pause, so
        there always is some).
        """
        start = max(failed.final_end, self._ring.start)
        done = start
        retries = Backoff.following(self._policy, self._random)  # not the live session's count
        while done < failed.sent:
            place, error = await self._replay(max(done, self._ring.start), failed.sent)
            if error is None:
                done = failed.sent
                break
            done = max(done, place.final_end)
            if not await self._waited_to_retry(error, retries):
                logger.warning("could not transcribe it again: %s", error)
                break
        lost_from = failed.final_end if start > failed.final_end else done
        if lost_from < failed.sent:
            await self._publish(self._lost(lost_from, failed.sent))

    async def _replay(self, start: int, end: int) -> tuple[Leg, SpeechmaticsModesError | None]:
        """One session over the buffered audio ``[start, end)``; its words are published."""
        audio = self._ring.copy(start, end)
        place = Leg(self._bps, self._format.bytes_per_sample)
        place.commit(start)
        place.sent = end
        sender, receiver = anyio.create_memory_object_stream[StreamEvent](_SESSION_EVENTS)
        client = self._client(sender, final_speakers=False)
        self.metrics.connection_attempts += 1
        self.metrics.replayed_seconds += len(audio) / self._bps
        failure: list[SpeechmaticsModesError] = []

        async def replay() -> None:
            with sender:
                error = await _run_to_end(client, _chunked(audio, self._format.chunk_size))
                if error is not None:
                    failure.append(error)

        async with anyio.create_task_group() as group, receiver:
            group.start_soon(replay)
            async for event in receiver:
                place.observe(event)
                rebased = self._words.rebase(event, place)
                if rebased is not None and not isinstance(rebased, SessionInfo):
                    await self._publish(rebased)
        return place, failure[0] if failure else None

    def _note(self, session: _SessionOnStream, event: StreamEvent) -> None:
        if isinstance(event, SessionInfo):
            if event.session_id is not None:
                self._session_ids.append(event.session_id)
            self._word_delimiter = event.word_delimiter
        elif isinstance(event, ServerWarning) and event.type == "session_timeout":
            session.warned = True

    async def _publish(self, event: StreamEvent) -> None:
        self._extras.add(event)
        if self._events is not None:
            await self._events.send(event)

    # Controls, for the session receiving audio now ------------------------------------------

    @property
    def options(self) -> TranscriptionOptions:
        """The transcription options every new session starts with (after any update)."""
        return self._options

    async def force_end_of_utterance(self) -> None:
        """``ForceEndOfUtterance`` to the session that holds the audio given so far.

        After a drop the replacement is first sent the audio replayed from the last final; the
        request waits until it has been, or it would finalise none of the words pending when
        it was made. While the request is on its way the session is not handed over, closed
        for idleness or sent ``EndOfStream`` (after which it would answer nothing forced).
        """
        given = self._sent_high
        live = await self._live(lambda session: session.place.sent >= given)
        self._forcing += 1
        try:
            await live.client.force_end_of_utterance()
        finally:
            self._forcing -= 1
            self._notify()

    async def update(self, options: TranscriptionOptions, changes: dict[str, Any]) -> None:
        """Apply ``changes`` to the current session and to every session being opened.

        A handover's successor (or a reconnection's session) was asked for the settings in
        force when it was opened: it gets the change as soon as it has started. Every session
        opened from now on starts with ``options``.
        """
        self._options = options
        for session in self._receiving_sessions():
            with contextlib.suppress(TransportError):  # it ended: the next starts with options
                await session.client.update(options, changes)

    def _receiving_sessions(self) -> list[_SessionOnStream]:
        """The current session, unless retired, and the sessions being opened."""
        current = self._current
        now = [current] if current is not None and not current.retired else []
        return [*now, *self._opening]

    async def get_speakers(self, timeout: float) -> SpeakersResult:
        """The speakers of every session so far, each with the session that heard them.

        The current session is asked now. Every session of a rolling stream with speaker
        diarization asks at its start for its speakers at its end (``GetSpeakers`` with
        ``final``), so a session handed over or closed answers as it finishes; one still
        finishing is waited for, within ``timeout``. A session that dropped counts with what
        it answered before (nothing, if it was never asked).
        """
        deadline = anyio.current_time() + timeout
        live = await self._live()
        answer = await live.client.get_speakers(timeout)
        self._speakers.record(live.order, live.client.session_id, answer)
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            for finishing in list(self._draining):
                await finishing.drained.wait()
        return self._speakers.result()

    def _stream_speakers(self, session: _SessionOnStream, answer: SpeakersResult) -> SpeakersResult:
        """A session's ``SpeakersResult`` event becomes the stream's: every session's."""
        self._speakers.record(session.order, session.client.session_id, answer)
        return self._speakers.result()

    async def _live(
        self, caught_up: Callable[[_SessionOnStream], bool] = lambda _: True
    ) -> _SessionOnStream:
        """The session receiving audio (and ``caught_up``), waiting briefly for one."""
        with anyio.move_on_after(_START_WAIT_SECONDS):
            while not self._finished and not self._is_live(self._current, caught_up):
                await self._wait(self._changed)
        current = self._current
        if current is None or not self._is_live(current, caught_up):
            raise TransportError(
                "no real-time session is running right now (or the one after a reconnection "
                "has not yet been sent the audio replayed to it)"
            )
        return current

    @staticmethod
    def _is_live(
        session: _SessionOnStream | None, caught_up: Callable[[_SessionOnStream], bool]
    ) -> bool:
        return session is not None and session.ready and not session.retired and caught_up(session)


async def _run_to_end(
    client: RealtimeSession, chunks: AsyncIterator[bytes]
) -> SpeechmaticsModesError | None:
    """Run one session; how it failed, if it did, is returned rather than raised.

    The error's traceback holds the frame that caught it, with that frame's variables. The
    stream keeps the error (:attr:`_SessionOnStream.error`), so the catching frame must not
    hold the session on the stream, or the stream: this one holds only the client, and a
    failed session goes by reference counting alone, not at the next full collection.
    """
    try:
        await client.run(chunks)
    except SpeechmaticsModesError as exc:
        return exc
    return None


async def _chunked(audio: bytes, size: int) -> AsyncIterator[bytes]:
    for offset in range(0, len(audio), size):
        yield audio[offset : offset + size]


async def _first_of(*events: anyio.Event) -> None:
    """Return as soon as any of ``events`` is set."""
    async with anyio.create_task_group() as group:

        async def wait_then_stop(event: anyio.Event) -> None:
            await event.wait()
            group.cancel_scope.cancel()

        for event in events:
            group.start_soon(wait_then_stop, event)
