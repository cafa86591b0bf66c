"""What the local server saw, so tests can assert on traffic ("no duplicate submissions")."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ServerStats"]


@dataclass
class ServerStats:
    """Counters (and a few timelines) since the server started; the server alone writes them."""

    http_requests: int = 0
    """HTTP requests received, WebSocket upgrades included."""
    http_requests_at: list[float] = field(default_factory=list)
    """When each HTTP request arrived (``anyio.current_time()``), in order: a pause that
    holds a client back shows as a quiet stretch."""
    http_failures_injected: int = 0
    """Requests answered by an injected :class:`~speechmatics_modes.local.HttpFailure`."""
    unauthorised: int = 0
    """Requests refused with 401 for a missing or wrong key."""
    jobs_submitted: int = 0
    """``POST /v2/jobs`` requests that created a job."""
    jobs_refused: int = 0
    """``POST /v2/jobs`` requests answered with an error (bad config, too large, ...)."""
    jobs_running: int = 0
    """Batch jobs being processed right now (from their creation until done or rejected)."""
    peak_jobs_running: int = 0
    """The most batch jobs that were ever processed at once: what a concurrency limit caps."""
    jobs_submitted_at: list[float] = field(default_factory=list)
    """When each job was created (``anyio.current_time()``), in order."""
    http_failures_at: list[float] = field(default_factory=list)
    """When each injected HTTP failure was answered (``anyio.current_time()``), in order."""
    jobs_deleted: int = 0
    """Jobs deleted with ``DELETE /v2/jobs/{id}``."""
    sessions_opened: int = 0
    """Real-time WebSocket connections accepted."""
    sessions_started: int = 0
    """Sessions that reached ``RecognitionStarted``."""
    sessions_refused: int = 0
    """Sessions ended with an ``Error`` before or at the start (config, quota, protocol)."""
    sessions_active: int = 0
    """Sessions open right now."""
    sessions_compressed: int = 0
    """Sessions whose client negotiated ``permessage-deflate`` (the SDK's default; accepted,
    as any WebSocket server may, though ours does not offer it: PCM hardly compresses)."""
    sessions_faulted: int = 0
    """Sessions ended by an injected :class:`~speechmatics_modes.local.SocketFault`."""
    audio_frames: int = 0
    """Binary audio frames received, over all sessions."""
    audio_bytes: int = 0
    """Bytes of audio received, over all sessions."""
    messages_received: int = 0
    """Text (JSON) messages received, over all sessions."""
    messages_sent: int = 0
    """Messages sent, over all sessions."""
    temporary_keys_minted: int = 0
    """Temporary keys issued by ``POST /v1/api_keys``."""
