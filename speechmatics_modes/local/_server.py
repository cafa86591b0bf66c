"""``LocalServer``: Speechmatics' batch REST and real-time WebSocket APIs on one loopback port.

The official SDKs and this library can be pointed at it (``server.settings()``) and run end to
end with no cloud access: an offline engine (Whisper tiny.en by default, pocketsphinx where
faster-whisper is missing, or a :class:`~speechmatics_modes.local.ScriptedEngine`) does the
recognition.

Everything the server starts (the aiohttp site, session handlers, batch jobs, the engine's
workers, the temporary directory holding uploads) belongs to the ``async with`` block and is
stopped and removed when it exits.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import anyio
from aiohttp import web
from anyio.abc import TaskGroup
from pydantic import SecretStr
from typing_extensions import deprecated

from speechmatics_modes._exceptions import ConfigurationError
from speechmatics_modes._lifetime import StackOwner
from speechmatics_modes._settings import Settings
from speechmatics_modes.local._batch_api import BatchApi, ErrorAnswer, error_name, error_response
from speechmatics_modes.local._connections import (
    GuardedConnection,
    PeerLimit,
    RedactingAccessLogger,
    from_a_web_page,
    is_loopback_name,
)
from speechmatics_modes.local._disk import DiskGuard
from speechmatics_modes.local._engine import Engine, stream_capacity
from speechmatics_modes.local._faults import Faults, FaultState
from speechmatics_modes.local._fetch import Fetcher, parse_networks
from speechmatics_modes.local._insights import engine_insights
from speechmatics_modes.local._jobs import Job, JobStore, prepare_job, process_job
from speechmatics_modes.local._realtime_api import RealtimeApi
from speechmatics_modes.local._rt_protocol import SessionClock, SessionLimits
from speechmatics_modes.local._stats import ServerStats
from speechmatics_modes.local._temp_keys import KeyKind, TemporaryKeys

__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "ENGINE_NAMES",
    "PLACEHOLDER_API_KEY",
    "LocalServer",
    "run_server",
]

ENGINE_NAMES = ("whisper", "pocketsphinx")
"""Engines :class:`LocalServer` can start by name."""

DEFAULT_MAX_UPLOAD_BYTES = 1024**3
"""1 GB: the service rejects a ``data_file`` of 1 GB or more (its batch limits page)."""

PLACEHOLDER_API_KEY = "local-server-accepts-any-key"
"""The key :meth:`LocalServer.settings` hands out when the server has none (the batch SDK
refuses an empty key; a server without a key accepts any)."""

logger = logging.getLogger(__name__)

_SHUTDOWN_SECONDS = 2.0
_MIN_KEY_LENGTH = 16
_TEMP_KEYS_PATH = "/v1/api_keys"
"""The shortest key a server reachable from the network accepts."""
_KEEPALIVE_SECONDS = 60.0
"""How long an idle kept-alive connection stays open (aiohttp's default is an hour)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LocalServer(StackOwner):
    """Speechmatics' batch and real-time APIs on one port, backed by an offline engine.

    Example::

        async with LocalServer() as server:
            client = speechmatics.batch.AsyncClient(api_key="any", url=server.batch_url)
            ...
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        engine: Engine | str | None = None,
        max_session_seconds: float = 48 * 3600.0,
        session_clock: SessionClock = "wall",
        idle_timeout_seconds: float = 3600.0,
        max_sessions: int | None = None,
        max_upload_bytes: int | None = DEFAULT_MAX_UPLOAD_BYTES,
        allow_fetch_from: Iterable[str] = (),
        min_free_disk_bytes: int = 256 * 1024**2,
        header_timeout_seconds: float = 10.0,
        max_connections_per_client: int = 256,
        body_timeout_seconds: float = 30.0,
        realtime_factor: float = 0.0,
        job_retention_seconds: float = 7 * 24 * 3600.0,
        faults: Faults | None = None,
    ) -> None:
        """Configure the server; nothing starts until ``async with``.

        Args:
            host: Interface to bind. Anything but loopback needs an ``api_key`` of at least
                16 characters.
            port: TCP port; 0 picks a free one (read it back from :attr:`port`).
            api_key: The key clients must present (``Authorization: Bearer`` or ``?jwt=``);
                ``None`` accepts any key, as a local test server should.
            engine: The speech engine, or its name (``"whisper"``, ``"pocketsphinx"``); ``None``
                starts Whisper, or pocketsphinx where faster-whisper is not installed. The
                server enters and exits it.
            max_session_seconds: Real-time session length limit (service: 48 h); warnings come
                45/30/15 min before it, proportionally earlier for limits under an hour.
            session_clock: What ``max_session_seconds`` counts: ``"wall"`` time, as the
                service does, or seconds of ``"audio"`` received, so a test that sends audio
                faster than real time meets the limit at the same point of its audio on any
                machine.
            idle_timeout_seconds: Real-time limit without audio (service: 1 h), with warnings
                15/10/5 min before, proportionally for limits under an hour.
            max_sessions: Concurrent real-time sessions allowed (``quota_exceeded`` beyond);
                ``None`` for as many as the engine says the machine keeps up with (its
                ``max_streams``; Whisper: one per decode worker), or no limit if it does not say.
            max_upload_bytes: Largest ``data_file`` accepted (413 beyond), and the most a
                ``fetch_data`` download may write; ``None`` for no limit. Default: 1 GB, the
                service's own limit.
            allow_fetch_from: Networks (``"10.0.0.0/8"``, ``"127.0.0.1"``) that ``fetch_data``
                URLs may point into besides public addresses. By default loopback, private,
                link-local and other non-public addresses are refused, so a key holder cannot
                use the server to reach services only it can reach.
            min_free_disk_bytes: Uploads and fetches stop (``503``, or a rejected job) before
                the disk holding the server's temporary directory has less free space than
                this, however many run at once.
            header_timeout_seconds: A connection whose request headers are not complete this
                long after it opened is closed (slow clients cannot pile up connections).
            max_connections_per_client: Connections one client address may hold at once;
                more are closed as they open, so one client cannot exhaust the process's file
                descriptors and lock everyone else out.
            body_timeout_seconds: An upload that sends nothing for this long is answered 408
                and its connection closed; what it had sent is deleted.
            realtime_factor: A batch job stays ``running`` at least ``duration * factor``
                seconds, so clients see polling happen (the service runs at roughly 0.1-0.5).
            job_retention_seconds: After this, job endpoints answer 410 (service: 7 days).
            faults: Faults to inject from the start; change them later with :attr:`faults`.

        Raises:
            ConfigurationError: A non-loopback ``host`` without a long enough ``api_key``, a
                limit that is not positive, or an ``allow_fetch_from`` entry that is not a
                network.
        """
        _check_key(host, api_key)
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be between 0 and 65535, got {port}")
        for name, value in (
            ("max_sessions", max_sessions),
            ("max_upload_bytes", max_upload_bytes),
            ("job_retention_seconds", job_retention_seconds),
            ("header_timeout_seconds", header_timeout_seconds),
            ("max_connections_per_client", max_connections_per_client),
            ("min_free_disk_bytes", min_free_disk_bytes),
            ("body_timeout_seconds", body_timeout_seconds),
        ):
            if value is not None and value <= 0:
                raise ConfigurationError(f"{name} must be positive, got {value}")
        if realtime_factor < 0:
            raise ConfigurationError(f"realtime_factor must be >= 0, got {realtime_factor}")
        try:
            self._limits = SessionLimits(
                max_session_seconds=max_session_seconds,
                session_clock=session_clock,
                idle_timeout_seconds=idle_timeout_seconds,
            )
        except ValueError as exc:
            raise ConfigurationError(f"invalid session limits: {exc}") from exc
        self._host = host
        self._requested_port = port
        self._api_key = api_key
        self._engine = None if isinstance(engine, str) else engine
        self._engine_name = engine if isinstance(engine, str) else None
        if self._engine_name is not None and self._engine_name not in ENGINE_NAMES:
            raise ConfigurationError(
                f"unknown engine {self._engine_name!r}; choose one of {', '.join(ENGINE_NAMES)}"
            )
        self._max_sessions = max_sessions
        self._max_upload_bytes = max_upload_bytes
        try:
            self._allow_fetch_from = parse_networks(allow_fetch_from)
        except ValueError as exc:
            raise ConfigurationError(
                f"allow_fetch_from takes IP addresses and networks such as 10.0.0.0/8: {exc}"
            ) from exc
        self._min_free_disk = min_free_disk_bytes
        self._header_timeout = header_timeout_seconds
        self._connections_per_client = max_connections_per_client
        self._body_timeout = body_timeout_seconds
        self._realtime_factor = realtime_factor
        self._retention = timedelta(seconds=job_retention_seconds)
        self._fault_state = FaultState(faults or Faults())
        self.stats = ServerStats()
        self._temp_keys = TemporaryKeys(self.stats)
        """What the server saw since it started."""
        self._port: int | None = None
        self._jobs_group: TaskGroup | None = None
        self._fetcher: Fetcher | None = None
        self._running_engine: Engine | None = None

    @property
    def faults(self) -> Faults:
        """The faults in force. Assigning new ones restarts their counts."""
        return self._fault_state.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._fault_state.replace(faults)

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._port is None:
            raise RuntimeError("the server is not running; use 'async with LocalServer()'")
        return self._port

    @property
    def batch_url(self) -> str:
        """Base URL of the batch API, e.g. ``http://127.0.0.1:8123/v2``."""
        return f"http://{self._url_host}:{self.port}/v2"

    @property
    def management_url(self) -> str:
        """Base URL of the temporary-key endpoint, e.g. ``http://127.0.0.1:8123``.

        It is what the SDKs call the management platform (``mp_url``,
        ``SM_MANAGEMENT_PLATFORM_URL``): they mint temporary keys at ``/v1/api_keys`` under it.
        """
        return f"http://{self._url_host}:{self.port}"

    @property
    def rt_url(self) -> str:
        """URL of the real-time API, e.g. ``ws://127.0.0.1:8123/v2``."""
        return f"ws://{self._url_host}:{self.port}/v2"

    def settings(self) -> Settings:
        """Settings pointing both SDKs (and this library's cloud backend) at this server."""
        key = self._api_key if self._api_key is not None else PLACEHOLDER_API_KEY
        return Settings(
            api_key=SecretStr(key),
            batch_url=self.batch_url,
            rt_url=self.rt_url,
            management_url=self.management_url,
            backend="cloud",
        )

    async def _acquire(self, stack: AsyncExitStack) -> None:
        engine = self._engine or _engine_named(self._engine_name)
        self._running_engine = await stack.enter_async_context(engine)
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="sm-modes-local-"))
        self._fetcher = await stack.enter_async_context(
            Fetcher(
                allow_from=self._allow_fetch_from,
                max_bytes=self._max_upload_bytes,
                disk=self._disk_guard(Path(workdir)),
            )
        )
        self._jobs_group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(self._jobs_group.cancel_scope.cancel)
        realtime = await self._start_site(stack, Path(workdir))
        stack.push_async_callback(realtime.close_all)
        stack.callback(self._forget_port)  # closed first: no URL points at a closing server

    def _disk_guard(self, workdir: Path) -> DiskGuard:
        return DiskGuard(workdir, self._min_free_disk)

    def _forget_port(self) -> None:
        self._port = None

    async def _start_site(self, stack: AsyncExitStack, workdir: Path) -> RealtimeApi:
        assert self._running_engine is not None
        store = JobStore(workdir, self._retention)
        batch = BatchApi(
            store,
            self.stats,
            max_upload_bytes=self._max_upload_bytes,
            disk=self._disk_guard(workdir),
            prepare_job=self._prepare_job,
            body_timeout=self._body_timeout,
            start_job=self._start_job,
            insights=engine_insights(self._running_engine),
            engine_name=self._running_engine.name,
        )
        realtime = RealtimeApi(
            self._running_engine,
            self.stats,
            self._fault_state,
            limits=self._limits,
            max_sessions=self._max_sessions or stream_capacity(self._running_engine),
        )
        app = web.Application(middlewares=[self._middleware])
        batch.add_routes(app)
        realtime.add_routes(app)
        app.router.add_post(_TEMP_KEYS_PATH, self._temp_keys.handle)
        # An early answer (401, 413, 429) makes aiohttp keep reading the unread upload for a
        # while so the client sees the answer; bound that by the shutdown time, so nothing the
        # server started outlives it.
        runner = web.AppRunner(
            app,
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_SECONDS,
            lingering_time=_SHUTDOWN_SECONDS,
            handler_cancellation=True,
            keepalive_timeout=_KEEPALIVE_SECONDS,
            access_log_class=RedactingAccessLogger,
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        assert runner.server is not None
        listener = await asyncio.get_running_loop().create_server(
            GuardedConnection.factory(
                runner.server, self._header_timeout, PeerLimit(self._connections_per_client)
            ),
            self._host or None,
            self._requested_port,
        )
        stack.callback(listener.close)
        self._port = int(listener.sockets[0].getsockname()[1])
        return realtime

    async def _prepare_job(self, job: Job) -> None:
        assert self._fetcher is not None
        await prepare_job(job, fetcher=self._fetcher)

    def _start_job(self, job: Job) -> None:
        assert self._jobs_group is not None
        self._jobs_group.start_soon(self._run_job, job)

    async def _run_job(self, job: Job) -> None:
        assert self._running_engine is not None
        stats = self.stats
        stats.jobs_submitted_at.append(anyio.current_time())
        stats.jobs_running += 1
        stats.peak_jobs_running = max(stats.peak_jobs_running, stats.jobs_running)
        try:
            await process_job(
                job,
                self._running_engine,
                extra_seconds=self.faults.job_seconds,
                realtime_factor=self._realtime_factor,
            )
        finally:
            stats.jobs_running -= 1

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.stats.http_requests += 1
        self.stats.http_requests_at.append(anyio.current_time())
        response = await self._answer(request, handler)
        latency = self._fault_state.faults.http_latency
        if latency:  # after the request took effect: a job exists before its id is back
            await anyio.sleep(latency)
        return response

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        failure = self._fault_state.take_http_failure(request.method, request.path)
        if failure is not None:
            self.stats.http_failures_injected += 1
            self.stats.http_failures_at.append(anyio.current_time())
            headers = (
                {} if failure.retry_after is None else {"Retry-After": str(failure.retry_after)}
            )
            return error_response(failure.status, _reason(failure.status), headers=headers)
        if not _readable_headers(request):
            return error_response(400, "Malformed request", "a header is not valid UTF-8")
        if self._api_key is None and from_a_web_page(request):
            self.stats.unauthorised += 1
            return error_response(
                403,
                "Forbidden",
                "a server without an API key answers only programs on this machine, not web "
                "pages (start it with a key to serve browsers)",
            )
        if not self._authorised(request):
            self.stats.unauthorised += 1
            return error_response(401, "Permission Denied", "missing or invalid API key")
        try:
            return await handler(request)
        except ErrorAnswer as answer:
            return answer.response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error_from(exc, request)
        except Exception:  # every answer is JSON, even the server's own failure
            logger.exception("local server failed on %s %s", request.method, request.path)
            return error_response(500, "Internal Server Error", "the local server failed")

    def _authorised(self, request: web.Request) -> bool:
        """The long-lived key opens everything; a temporary key only its own API."""
        if self._api_key is None:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        presented = token if scheme.lower() == "bearer" else request.query.get("jwt", "")
        if secrets.compare_digest(presented.encode(), self._api_key.encode()):
            return True
        if request.path == _TEMP_KEYS_PATH:
            return False  # a temporary key cannot mint others
        kind: KeyKind = "batch" if request.path.startswith("/v2/jobs") else "rt"
        return self._temp_keys.opens(presented, kind)

    @property
    def _url_host(self) -> str:
        host = self._host
        if host in {"0.0.0.0", "::", ""}:
            host = "127.0.0.1"
        return f"[{host}]" if ":" in host else host


@deprecated(
    "run_server() will be removed in 0.2: use 'async with LocalServer(...)', or the "
    "'speechmatics-modes serve' command"
)
def run_server(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    api_key: str | None = None,
    max_session_seconds: float = 48 * 3600.0,
    ready: Callable[[LocalServer], None] | None = None,
) -> None:
    """Deprecated: run a :class:`LocalServer` with the default engine until Ctrl-C.

    Nothing calls it (``speechmatics-modes serve`` runs its own loop, with more options).

    Args:
        host: Interface to bind (non-loopback needs ``api_key``).
        port: TCP port; 0 picks a free one.
        api_key: Key clients must present; ``None`` accepts any.
        max_session_seconds: Real-time session length limit.
        ready: Called once the server listens (e.g. to print its URLs).

    Raises:
        ConfigurationError: As :class:`LocalServer`.
    """
    server = LocalServer(
        host=host, port=port, api_key=api_key, max_session_seconds=max_session_seconds
    )

    async def serve() -> None:
        async with server:
            if ready is not None:
                ready(server)
            await anyio.sleep_forever()

    try:
        anyio.run(serve)
    except KeyboardInterrupt:
        return


def _engine_named(name: str | None) -> Engine:
    """The engine called ``name``; ``None`` for Whisper if installed, else pocketsphinx."""
    if name is None:
        name = "whisper" if importlib.util.find_spec("faster_whisper") else "pocketsphinx"
        if name == "pocketsphinx":
            logger.warning("faster-whisper is not installed: the local server uses pocketsphinx")
    if name == "whisper":
        from speechmatics_modes.local._whisper import WhisperEngine

        return WhisperEngine()
    from speechmatics_modes.local._pocketsphinx import PocketsphinxEngine

    return PocketsphinxEngine()


def _readable_headers(request: web.Request) -> bool:
    """Whether every header decoded as UTF-8 (aiohttp keeps other bytes as surrogates)."""
    try:
        for value in request.headers.values():
            value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _error_from(exc: web.HTTPException, request: web.Request) -> web.Response:
    """Answers aiohttp makes itself (no route, wrong method, no upgrade) in the API's shape."""
    if exc.status == 404:
        detail = f"no endpoint at {request.path}"
    elif exc.status == 405:
        detail = f"{request.method} is not allowed on {request.path}"
    else:
        detail = exc.text or exc.reason
    allow = exc.headers.get("Allow")
    headers = {"Allow": allow} if allow is not None else None
    return error_response(exc.status, error_name(exc.status), detail, headers=headers)


def _check_key(host: str, api_key: str | None) -> None:
    if api_key == "":
        raise ConfigurationError("api_key must not be empty (pass None to accept any key)")
    if is_loopback_name(host):
        return
    if api_key is None:
        raise ConfigurationError(
            f"refusing to serve on {host!r} without an api_key: anyone on the network "
            "could use it. Pass api_key=..., or bind 127.0.0.1."
        )
    if len(api_key) < _MIN_KEY_LENGTH:
        raise ConfigurationError(
            f"refusing to serve on {host!r} with a {len(api_key)}-character api_key: off "
            f"loopback the key must have at least {_MIN_KEY_LENGTH} characters (for example "
            "python -c 'import secrets; print(secrets.token_urlsafe())')"
        )


def _reason(status: int) -> str:
    return "Max concurrent running jobs exceeded" if status == 429 else error_name(status)
