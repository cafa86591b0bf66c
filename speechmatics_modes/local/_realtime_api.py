"""The real-time WebSocket API (``/v2``) of the local server: pumps sockets through the protocol.

Every rule lives in :class:`~speechmatics_modes.local._rt_protocol.RealtimeProtocol`; this module
only moves bytes between the socket, the session and the engine, runs the session's clock and
injects socket faults. Each connection is one aiohttp handler task, and engines decode off the
event loop, so a slow session delays only itself: while its engine works, its socket is read
only :data:`READ_AHEAD` messages ahead, then acknowledgements fall behind and TCP pushes back
on that one client, as with the service.

Reading ahead lets a ForceEndOfUtterance (or EndOfStream) be seen while the engine is still
busy with the audio before it: the engine is told to drop the interim work it is doing (a
partial decode, as long as the answer itself), which the end makes moot. It also lets the
audio that came during a decode be fed in one piece when the decode ends, to a stream that
asks for it (:meth:`_Connection._with_audio_behind`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Iterable
from typing import Any, Literal

import anyio
import anyio.to_thread
from aiohttp import WSMsgType, web
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from speechmatics_modes.local._audio import AudioDecodeError
from speechmatics_modes.local._engine import (
    Engine,
    StreamingRecognizer,
    arriving,
    force_end_of_utterance,
    hurry,
    joins_backlog,
    open_tuned,
    retune,
)
from speechmatics_modes.local._faults import FaultState, SocketFault
from speechmatics_modes.local._insights import engine_insights
from speechmatics_modes.local._rt_protocol import (
    MAX_MESSAGE_BYTES,
    Action,
    Close,
    Feed,
    Flush,
    OpenStream,
    RealtimeProtocol,
    Retune,
    Send,
    SessionLimits,
)
from speechmatics_modes.local._stats import ServerStats

__all__ = ["RealtimeApi"]

logger = logging.getLogger(__name__)

_QUOTA_REASON = "Concurrent Quota Exceeded"
_LANGUAGE_PATH = r"[a-z]{2,3}(?:[_-][a-z]{2,4})*"
"""Language codes as the service spells them in paths: ``en``, ``cmn``, ``cmn_en``, ``en-us``."""
READ_AHEAD = 16
"""Messages read but not yet done with, per session, at most: enough to see a forced end
behind a decode's worth of audio chunks; with frames of at most ``MAX_MESSAGE_BYTES``, it bounds
what a session can make the server hold."""
_Read = tuple[list[Action], float]
"""What the reader queues for the worker: a message's actions, and the session's audio seconds
once that message was read."""
_ENDED_TYPES = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


class RealtimeApi:
    """Handlers for the real-time endpoint, and the bookkeeping shared by its sessions."""

    def __init__(
        self,
        engine: Engine,
        stats: ServerStats,
        faults: FaultState,
        *,
        limits: SessionLimits,
        max_sessions: int | None,
    ) -> None:
        self._engine = engine
        self._stats = stats
        self._faults = faults
        self._limits = limits
        self._max_sessions = max_sessions
        self._admitted = 0
        self._sockets: set[web.WebSocketResponse] = set()

    def add_routes(self, app: web.Application) -> None:
        """``/v2``, ``/v2/`` and ``/v2/<language>``; query parameters are ignored.

        Only a path that looks like a language is taken as one (the legacy SDK appends it):
        ``/v2/agent`` is another product's protocol and answers 404.
        """
        for path in ("/v2", "/v2/", f"/v2/{{language:{_LANGUAGE_PATH}}}"):
            app.router.add_get(path, self.handle)

    async def close_all(self) -> None:
        """Close every open session (1001, going away): the server is shutting down."""
        for socket in list(self._sockets):
            await socket.close(code=1001, message=b"server shutting down")

    def admit(self) -> bool:
        """Take a concurrent-session slot, if the quota allows."""
        if self._max_sessions is not None and self._admitted >= self._max_sessions:
            return False
        self._admitted += 1
        return True

    def release(self) -> None:
        """Give back a slot taken by :meth:`admit`."""
        self._admitted -= 1

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Run one session from upgrade to close."""
        socket = web.WebSocketResponse(max_msg_size=8 * MAX_MESSAGE_BYTES, autoping=True)
        await socket.prepare(request)
        self._sockets.add(socket)
        self._stats.sessions_opened += 1
        self._stats.sessions_compressed += bool(socket.compress)
        self._stats.sessions_active += 1
        session = RealtimeProtocol(
            str(uuid.uuid4()),
            self._limits,
            anyio.current_time(),
            insights=engine_insights(self._engine),
            engine_name=self._engine.name,
        )
        connection = _Connection(self, request, socket, session, self._faults.take_socket_fault())
        try:
            await connection.run()
        finally:
            self._sockets.discard(socket)
            self._stats.sessions_active -= 1
            if not socket.closed:
                await socket.close()
        return socket

    @property
    def engine(self) -> Engine:
        """The engine sessions open their streams on."""
        return self._engine

    @property
    def stats(self) -> ServerStats:
        """The server's counters."""
        return self._stats

    @property
    def faults(self) -> FaultState:
        """The server's faults in force."""
        return self._faults


def _audio_channel(actions: list[Action]) -> str | Literal[False] | None:
    """The channel of a message that only brought audio (answers and one feed), else False."""
    feeds = [action for action in actions if isinstance(action, Feed)]
    only_audio = len(feeds) == 1 and all(isinstance(a, Send | Feed) for a in actions)
    return feeds[0].channel if only_audio else False


class _SessionOver(Exception):
    """The socket is gone (closed, dropped, or a fault ended it): stop pumping."""


class _Connection:
    """One WebSocket connection: the read loop, the clock, and action execution."""

    def __init__(
        self,
        api: RealtimeApi,
        request: web.Request,
        socket: web.WebSocketResponse,
        session: RealtimeProtocol,
        fault: SocketFault | None,
    ) -> None:
        self._api = api
        self._request = request
        self._socket = socket
        self._session = session
        self._fault = fault
        self._fault_at = (
            anyio.current_time() + fault.after_seconds
            if fault is not None and fault.after_seconds is not None
            else None
        )
        self._lock = anyio.Lock()
        self._streams: dict[str | None, StreamingRecognizer] = {}
        """One engine stream per channel (``None``: the only one of an ordinary session)."""
        self._admitted = False
        self._sent = 0
        self._over = False

    async def run(self) -> None:
        """Pump until the session or the socket ends; release the streams and the slot."""
        to_engine, from_reader = anyio.create_memory_object_stream[_Read](READ_AHEAD)
        worked = anyio.Event()
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._clock)
                tasks.start_soon(self._work, from_reader, worked)
                try:
                    async with to_engine:
                        socket_ended = await self._read(to_engine)
                    if not socket_ended:  # the session ended: its last actions (Error, close) run
                        await worked.wait()
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            self._session.release()
            for stream in self._streams.values():
                await stream.aclose()
            if self._admitted:
                self._api.release()

    async def _read(self, to_engine: MemoryObjectSendStream[_Read]) -> bool:
        """Read messages; answer what needs no engine, queue the rest for :meth:`_work`.

        Returns whether the socket ended (else the session did: it needs no more messages).
        """
        stats = self._api.stats
        while not self._over and not self._session.closed:
            message = await self._socket.receive()
            if message.type in _ENDED_TYPES:
                return True
            now = anyio.current_time()
            if message.type is WSMsgType.BINARY:
                stats.audio_frames += 1
                stats.audio_bytes += len(message.data)
                actions = self._session.receive_bytes(message.data, now)
            elif message.type is WSMsgType.TEXT:
                stats.messages_received += 1
                actions = self._session.receive_text(message.data, now)
            else:
                continue
            if all(isinstance(action, Send) for action in actions):
                # Answers only: no need to wait for the engine. Audio sent after EndOfStream is
                # warned about before EndOfTranscript, as the service does.
                await self._run_actions(actions)
                continue
            self._tell_ahead(actions)
            try:
                await to_engine.send((actions, self._session.audio_seconds))
            except anyio.BrokenResourceError:  # the worker ended the session (a fault)
                return False
        return False

    def _tell_ahead(self, actions: list[Action]) -> None:
        """Tell the streams, before the worker gets to it, what a message brought.

        An end (EndOfStream, ForceEndOfUtterance) makes its stream :func:`hurry`; audio is
        shown to its stream :func:`arriving`, which may see a pause in it while it decodes.
        """
        for action in actions:
            if not isinstance(action, Flush | Feed):
                continue
            stream = self._streams.get(action.channel)
            if stream is None:
                continue
            if isinstance(action, Flush):
                hurry(stream)
            else:
                arriving(stream, action.pcm)

    async def _work(
        self, from_reader: MemoryObjectReceiveStream[_Read], worked: anyio.Event
    ) -> None:
        """Do what the reader queued, in order: feed the engine, flush it, answer."""
        try:
            async with from_reader:
                async for read in from_reader:
                    for actions, audio_seconds in self._with_audio_behind(read, from_reader):
                        ends = any(isinstance(a, Flush) and a.end_of_stream for a in actions)
                        if ends and self._fault is not None and self._fault.at_end_of_stream:
                            async with self._lock:
                                await self._end_with_fault()
                            return
                        await self._run_locked(actions, audio_seconds)
        finally:
            worked.set()

    def _with_audio_behind(
        self, read: _Read, from_reader: MemoryObjectReceiveStream[_Read]
    ) -> list[_Read]:
        """``read``, with the audio already read behind it joined to its feed.

        While a decode runs, the audio that arrives meanwhile waits here; fed a chunk at a
        time, the next decode would hear only the first of it, and a pause in the rest would be
        seen only a decode later. Joined, the engine hears all that has come. Each message's
        acknowledgement still goes, in order, before the joined feed. A message that is not
        only audio ends the join and is returned after it, to run in its turn. Only for a
        stream that asks for it (:func:`joins_backlog`), and not in a session with a fault to
        inject, which counts the audio fed message by message.
        """
        actions, audio_seconds = read
        channel = _audio_channel(actions)
        if channel is False or self._fault is not None:
            return [read]
        stream = self._streams.get(channel)
        if stream is None or not joins_backlog(stream):
            return [read]
        sends: list[Action] = []
        pcm: list[bytes] = []
        following: _Read | None = read
        while following is not None and _audio_channel(following[0]) == channel:
            more, audio_seconds = following
            sends += [action for action in more if isinstance(action, Send)]
            pcm += [action.pcm for action in more if isinstance(action, Feed)]
            try:
                following = from_reader.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream):
                following = None
        joined: _Read = ([*sends, Feed(b"".join(pcm), channel)], audio_seconds)
        return [joined] if following is None else [joined, following]

    async def _run_locked(self, actions: list[Action], audio_seconds: float) -> None:
        """Run what a message asked for; ``audio_seconds``: the session's audio once it came."""
        async with self._lock:
            await self._run_actions(actions)
            if self._audio_fault_due(audio_seconds):
                await self._end_with_fault()

    async def _end_with_fault(self) -> None:
        with contextlib.suppress(_SessionOver):
            await self._inject_fault()

    def _audio_fault_due(self, audio_seconds: float) -> bool:
        """Whether the fault's ``after_audio_seconds`` are up, with ``audio_seconds`` handled.

        Counted as the engine gets to the audio, not as it is read (which may be ahead), so a
        drop comes at the same point of the audio however far the reader got.
        """
        fault = self._fault
        return (
            not self._over
            and fault is not None
            and fault.after_audio_seconds is not None
            and audio_seconds >= fault.after_audio_seconds
        )

    async def _clock(self) -> None:
        while not self._over:
            deadlines = [self._session.next_deadline(), self._fault_at]
            due = min((deadline for deadline in deadlines if deadline is not None), default=None)
            if due is None:
                return
            await anyio.sleep(max(0.0, due - anyio.current_time()))
            async with self._lock:
                now = anyio.current_time()
                if self._fault_at is not None and now >= self._fault_at:
                    await self._end_with_fault()
                    return
                await self._run_actions(self._session.tick(now))

    async def _run_actions(self, actions: Iterable[Action]) -> None:
        queue: deque[Action] = deque(actions)
        try:
            while queue and not self._over:
                follow_up = await self._run(queue.popleft())
                queue.extendleft(reversed(follow_up))
        except _SessionOver:
            self._over = True

    async def _run(self, action: Action) -> list[Action]:
        if isinstance(action, Send):
            await self._send(action.message)
        elif isinstance(action, Close):
            await self._close(action.code, action.reason)
        elif isinstance(action, OpenStream):
            return await self._open_streams(action)
        elif isinstance(action, Feed):
            return await self._engine_call(self._feed(action.pcm, action.channel))
        elif isinstance(action, Flush):
            return await self._engine_call(self._flush(action.end_of_stream, action.channel))
        elif isinstance(action, Retune):
            for stream in self._streams.values():
                retune(stream, action.settings)
        return []

    async def _open_streams(self, action: OpenStream) -> list[Action]:
        if not self._api.admit():
            self._api.stats.sessions_refused += 1
            return self._session.refuse("quota_exceeded", _QUOTA_REASON)
        self._admitted = True
        try:
            for channel in action.channels:
                self._streams[channel] = await open_tuned(self._api.engine, action.settings)
        except Exception:  # an engine failure ends this session, never the server
            logger.exception("local engine could not open a stream")
            self._api.stats.sessions_refused += 1
            return self._session.refuse("job_error", "the engine could not start")
        self._api.stats.sessions_started += 1
        return self._session.started()

    async def _feed(self, pcm: bytes, channel: str | None) -> list[Action]:
        update = await self._streams[channel].feed(pcm)
        return self._session.recognized(update, channel=channel)

    async def _flush(self, end_of_stream: bool, channel: str | None) -> list[Action]:
        stream = self._streams[channel]
        if not end_of_stream:
            update = await force_end_of_utterance(stream)
            return self._session.recognized(update, forced=True, channel=channel)
        try:  # off the event loop: a compressed stream's decoder may still be catching up
            tail = await anyio.to_thread.run_sync(self._session.tail, channel)
        except AudioDecodeError as exc:
            return self._session.refuse("invalid_audio_type", str(exc))
        actions = await self._feed(tail, channel) if tail else []
        return [*actions, *self._session.finished(await stream.flush(), channel)]

    async def _engine_call(self, call: Awaitable[list[Action]]) -> list[Action]:
        try:
            result = await call
        except Exception:  # an engine failure ends this session, never the server
            logger.exception("local engine failed during session %s", self._session.session_id)
            return self._session.refuse("job_error", "the engine failed on this audio")
        return result

    async def _send(self, message: dict[str, Any]) -> None:
        latency = self._api.faults.faults.message_latency
        if latency:
            await anyio.sleep(latency)
        try:
            await self._socket.send_str(json.dumps(message))
        except (ConnectionError, RuntimeError) as exc:
            raise _SessionOver from exc
        self._api.stats.messages_sent += 1
        self._sent += 1
        fault = self._fault
        if (
            fault is not None
            and fault.after_messages is not None
            and self._sent >= fault.after_messages
        ):
            await self._inject_fault()

    async def _close(self, code: int, reason: str) -> None:
        self._over = True
        await self._socket.close(code=code, message=reason.encode())
        raise _SessionOver

    async def _inject_fault(self) -> None:
        fault = self._fault
        assert fault is not None
        self._api.stats.sessions_faulted += 1
        self._over = True
        if fault.close_code is not None:
            await self._socket.close(code=fault.close_code, message=fault.close_reason.encode())
        else:
            transport = self._request.transport
            if transport is not None:
                transport.abort()
        raise _SessionOver
