"""The batch REST API (``/v2/jobs``) of the local server, as aiohttp handlers.

Status codes and error bodies follow the service (``{"code", "error", "detail"}``, §2.8 of the
wire-protocol notes). Where the service does not document a behaviour we choose one and say so:

* An upload over ``max_upload_bytes`` is answered ``413`` with
  ``{"code": 413, "error": "Job rejected", "detail": ...}`` once the limit is crossed; the rest
  of the body is read and discarded (never stored) so the client sees the answer instead of a
  broken pipe.
* ``GET /v2/jobs/{id}`` without ``wait`` answers at once (the service waits up to 2 s).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import anyio
from aiohttp import BodyPartReader, web

from speechmatics_modes._models import Transcript
from speechmatics_modes.local._disk import DiskGuard, DiskLow, TooLarge, save_chunks
from speechmatics_modes.local._insights import EngineInsights, refusal
from speechmatics_modes.local._jobs import Job, JobStore
from speechmatics_modes.local._results import LANGUAGE_NAMES, transcript_txt
from speechmatics_modes.local._schema import BatchJobConfig, ConfigProblem, check
from speechmatics_modes.local._stats import ServerStats

__all__ = ["BatchApi", "ErrorAnswer", "error_name", "error_response"]

JSON_V2_CONTENT_TYPE = "application/vnd.speechmatics.v2+json"
MAX_WAIT_SECONDS = 3600
"""The longest ``wait`` honoured; longer values are capped, as the service caps them."""

T = TypeVar("T")

_CHUNK = 256 * 1024
_DISK_RETRY_SECONDS = 30
_MAX_CONFIG_BYTES = 1024 * 1024
_FORMATS = ("json-v2", "txt", "srt")
_ERROR_NAMES = {
    400: "Bad Request",
    401: "Permission Denied",
    403: "Forbidden",
    404: "Requested product not available",
    410: "Job Expired",
    413: "Job rejected",
    422: "Unprocessable Entity",
    423: "Resource Locked",
    501: "Not Implemented",
}
"""The ``error`` for a status no handler named; every value is on the API's fixed list (the JS
batch client refuses any other), so an unknown path is "Requested product not available"."""


def error_name(status: int) -> str:
    """The ``error`` string of the API's fixed list that fits ``status`` best."""
    default = "Internal Server Error" if status >= 500 else "Bad Request"
    return _ERROR_NAMES.get(status, default)


def error_response(
    status: int, error: str, detail: str | None = None, *, headers: dict[str, str] | None = None
) -> web.Response:
    """An error in the service's shape: ``{"code", "error", "detail"?}``."""
    body: dict[str, Any] = {"code": status, "error": error}
    if detail is not None:
        body["detail"] = detail
    return web.json_response(body, status=status, headers=headers)


class ErrorAnswer(Exception):
    """Ends a request early with an error response; the server's middleware sends it."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.reason)
        self.response = response


class BatchApi:
    """Handlers for ``/v2/jobs`` over one :class:`JobStore`."""

    def __init__(
        self,
        store: JobStore,
        stats: ServerStats,
        *,
        max_upload_bytes: int | None,
        disk: DiskGuard,
        prepare_job: Callable[[Job], Awaitable[None]],
        body_timeout: float,
        start_job: Callable[[Job], None],
        insights: EngineInsights | None = None,
        engine_name: str = "local",
    ) -> None:
        self._store = store
        self._stats = stats
        self._max_upload_bytes = max_upload_bytes
        self._disk = disk
        self._prepare_job = prepare_job
        self._body_timeout = body_timeout
        self._start_job = start_job
        self._insights = insights or EngineInsights()
        self._engine_name = engine_name

    def add_routes(self, app: web.Application) -> None:
        """Register the routes under ``/v2``."""
        app.router.add_post("/v2/jobs", self.submit)
        app.router.add_post("/v2/jobs/", self.submit)
        app.router.add_get("/v2/jobs", self.list_jobs)
        app.router.add_get("/v2/jobs/", self.list_jobs)
        app.router.add_get("/v2/jobs/{job_id}", self.job_info)
        app.router.add_delete("/v2/jobs/{job_id}", self.delete)
        app.router.add_get("/v2/jobs/{job_id}/transcript", self.transcript)

    async def submit(self, request: web.Request) -> web.StreamResponse:
        """``POST /v2/jobs``: multipart ``config`` plus ``data_file`` (or ``fetch_data``)."""
        job_id, directory = self._store.reserve()
        try:
            config, data_name = await self._read_submission(request, directory / "upload")
            job = Job(job_id, _utcnow(), config, data_name, directory)
            await self._prepare_job(job)
        except BaseException as ended:
            # Refused, timed out, dropped by the client mid-upload or mid-fetch, or cancelled
            # by shutdown: nothing of it stays on disk.
            shutil.rmtree(directory, ignore_errors=True)
            if not isinstance(ended, ErrorAnswer):
                raise
            self._stats.jobs_refused += 1
            return ended.response
        self._store.add(job)
        self._stats.jobs_submitted += 1
        if job.running:
            self._start_job(job)
        body: dict[str, Any] = {"id": job.id}
        wait = _wait_seconds(request)
        if wait is not None:
            await _wait_for(job, wait)
            body.update(_waited_body(job, request.query.get("format", "json-v2")))
        return web.json_response(body, status=201)

    async def job_info(self, request: web.Request) -> web.StreamResponse:
        """``GET /v2/jobs/{id}``."""
        job = self._job(request)
        wait = _wait_seconds(request)
        if wait is not None:
            await _wait_for(job, wait)
        return web.json_response({"job": job.details()})

    async def list_jobs(self, request: web.Request) -> web.StreamResponse:
        """``GET /v2/jobs?limit=&created_before=&created_after=&include_deleted=``."""
        try:
            limit = int(request.query.get("limit", "100"))
            created_before = _query_time(request, "created_before")
            created_after = _query_time(request, "created_after")
        except ValueError as exc:
            raise _unprocessable(f"bad list query: {exc}") from exc
        if not 1 <= limit <= 100:
            raise _unprocessable("limit must be between 1 and 100")
        include_deleted = request.query.get("include_deleted", "false").lower() == "true"
        jobs = self._store.listing(
            limit=limit,
            created_before=created_before,
            created_after=created_after,
            include_deleted=include_deleted,
        )
        return web.json_response({"jobs": [job.details() for job in jobs]})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /v2/jobs/{id}[?force=true]``: 423 for a running job without ``force``."""
        job = self._job(request)
        if job.running and request.query.get("force", "false").lower() != "true":
            return error_response(423, "Resource Locked", "the job is running; use force=true")
        if job.status != "deleted":
            job.delete()
            self._stats.jobs_deleted += 1
        return web.json_response({"job": job.details()})

    async def transcript(self, request: web.Request) -> web.StreamResponse:
        """``GET /v2/jobs/{id}/transcript?format=json-v2|txt|srt[&wait=N]``: 404 until done."""
        job = self._job(request)
        output_format = request.query.get("format", "json-v2")
        if output_format not in _FORMATS:
            return error_response(400, "Format Not Supported", f"unknown format {output_format!r}")
        wait = _wait_seconds(request)
        if wait is not None:
            await _wait_for(job, wait)
        if job.transcript is None:
            return error_response(404, "Transcription not ready", f"the job is {job.status}")
        if output_format == "json-v2":
            return web.json_response(job.transcript, content_type=JSON_V2_CONTENT_TYPE)
        return web.Response(text=_render(job, output_format), content_type="text/plain")

    def _job(self, request: web.Request) -> Job:
        job = self._store.get(request.match_info["job_id"])
        if job is None:
            raise ErrorAnswer(error_response(404, "Job not found"))
        if self._store.expired(job):
            raise ErrorAnswer(error_response(410, "Job Expired"))
        return job

    async def _read_submission(
        self, request: web.Request, upload: Path
    ) -> tuple[dict[str, Any], str]:
        if not request.content_type.startswith("multipart/"):
            raise ErrorAnswer(
                error_response(400, "Malformed request", "expected multipart/form-data")
            )
        try:
            raw_config, data_name = await self._read_parts(request, upload)
        except ValueError as exc:  # aiohttp's word for a broken multipart body
            raise ErrorAnswer(
                error_response(400, "Malformed request", f"the multipart body is malformed: {exc}")
            ) from exc
        config = _checked_config(raw_config)
        unsupported = refusal(config, self._insights, self._engine_name)
        if unsupported is not None:
            raise ErrorAnswer(error_response(400, "Job rejected", f"invalid_config: {unsupported}"))
        fetch = config.get("fetch_data")
        if data_name is not None and fetch is not None:
            raise ErrorAnswer(
                error_response(400, "Malformed request", "give data_file or fetch_data, not both")
            )
        if data_name is not None:
            return config, data_name
        if fetch is None:
            raise ErrorAnswer(error_response(400, "Missing data_file"))
        return config, str(fetch["url"]).rsplit("/", 1)[-1]

    async def _read_parts(
        self, request: web.Request, upload: Path
    ) -> tuple[str | None, str | None]:
        """The ``config`` text and the ``data_file`` name (its bytes go to ``upload``)."""
        reader = await request.multipart()
        raw_config: str | None = None
        data_name: str | None = None
        while (part := await self._timed(reader.next())) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "config":
                raw_config = await self._read_config_part(part)
            elif part.name == "data_file":
                data_name = part.filename or "audio.wav"
                await self._store_upload(part, upload, request)
            else:
                await part.release()
        return raw_config, data_name

    async def _read_config_part(self, part: BodyPartReader) -> str:
        data = bytearray()
        while chunk := await self._timed(part.read_chunk(_CHUNK)):
            data += chunk
            if len(data) > _MAX_CONFIG_BYTES:
                raise ErrorAnswer(
                    error_response(400, "Job rejected", "Job config JSON is too large")
                )
        return data.decode("utf-8", errors="replace")

    async def _store_upload(self, part: BodyPartReader, upload: Path, request: web.Request) -> None:
        try:
            await save_chunks(
                self._body_chunks(part), upload, limit=self._max_upload_bytes, disk=self._disk
            )
        except TooLarge:
            await self._drain(request)
            raise ErrorAnswer(
                error_response(
                    413,
                    "Job rejected",
                    f"data_file is larger than this server's limit of "
                    f"{self._max_upload_bytes} bytes",
                )
            ) from None
        except DiskLow:
            await self._drain(request)
            raise ErrorAnswer(
                error_response(
                    503,
                    "Service Unavailable",
                    "the server is low on disk space; submit the job later",
                    headers={"Retry-After": str(_DISK_RETRY_SECONDS)},
                )
            ) from None

    async def _body_chunks(self, part: BodyPartReader) -> AsyncIterator[bytes]:
        while chunk := await self._timed(part.read_chunk(_CHUNK)):
            yield chunk

    async def _timed(self, read: Awaitable[T]) -> T:
        """One read of the request body, answered 408 if the client sends nothing in time."""
        with anyio.move_on_after(self._body_timeout):
            return await read
        timeout = error_response(
            408, "Request Timeout", f"nothing received for {self._body_timeout:g} seconds"
        )
        timeout.force_close()
        raise ErrorAnswer(timeout)

    async def _drain(self, request: web.Request) -> None:
        while await self._timed(request.content.read(_CHUNK)):
            pass


def _checked_config(raw: str | None) -> dict[str, Any]:
    if raw is None:
        raise ErrorAnswer(error_response(400, "Job rejected", "the config part is missing"))
    try:
        config = json.loads(raw)
        check(BatchJobConfig, config)
    except ConfigProblem as exc:
        raise ErrorAnswer(
            error_response(400, "Job rejected", f"Job config is invalid: {exc}")
        ) from exc
    except (ValueError, RecursionError) as exc:  # bad JSON, a 5000-digit number, deep nesting
        raise ErrorAnswer(
            error_response(400, "Job rejected", f"Job config JSON is invalid: {_json_problem(exc)}")
        ) from exc
    transcription = config.get("transcription_config")
    if config["type"] == "transcription" and transcription is None:
        raise ErrorAnswer(error_response(400, "No language selected"))
    if transcription is not None and transcription["language"] not in LANGUAGE_NAMES:
        raise ErrorAnswer(
            error_response(
                400,
                "Job rejected",
                f"language {transcription['language']!r} is not available on the local server "
                f"(available: {', '.join(sorted(LANGUAGE_NAMES))})",
            )
        )
    return dict(config)


def _json_problem(exc: ValueError | RecursionError) -> str:
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    return str(exc)


def _render(job: Job, output_format: str) -> str:
    assert job.transcript is not None
    if output_format == "txt":
        return transcript_txt(job.transcript["results"])
    transcript = Transcript.from_batch_json(job.transcript)
    overrides = (job.config.get("output_config") or {}).get("srt_overrides") or {}
    return transcript.to_srt(**overrides)


def _waited_body(job: Job, output_format: str) -> dict[str, Any]:
    if job.status != "done":
        return {"status": "created" if job.running else job.status}
    rendered: Any = job.transcript if output_format == "json-v2" else _render(job, output_format)
    return {"status": "done", output_format: rendered}


async def _wait_for(job: Job, seconds: float) -> None:
    with anyio.move_on_after(seconds):
        await job.finished.wait()


def _wait_seconds(request: web.Request) -> float | None:
    raw = request.query.get("wait")
    if raw is None:
        return None
    try:
        return float(min(max(int(raw), 0), MAX_WAIT_SECONDS))
    except ValueError as exc:
        raise ErrorAnswer(
            error_response(400, "Bad Request", "wait must be a whole number of seconds")
        ) from exc


def _query_time(request: web.Request, name: str) -> datetime | None:
    """An ISO 8601 time from the query (``Z`` or an offset; naive times are UTC)."""
    raw = request.query.get(name)
    if raw is None:
        return None
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _unprocessable(detail: str) -> ErrorAnswer:
    return ErrorAnswer(error_response(422, "Unprocessable Entity", detail))


def _utcnow() -> datetime:
    """Now, to the millisecond the API shows, so ``created_after=<a job's created_at>`` is exact."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
