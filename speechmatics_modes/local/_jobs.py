"""Batch jobs of the local server: what the store remembers and how one job is processed.

A job's audio lives on disk (``<store>/<id>/``), never in memory: uploads are written there in
chunks, converted there to engine PCM, and deleted once the transcript exists. Only the
transcript (a few kB per minute of speech) stays in memory, until the retention period ends.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread

from speechmatics_modes._config import CHANNEL_DIARIZATION
from speechmatics_modes.local._audio import (
    AudioDecodeError,
    AudioInfo,
    cannot_split,
    convert_file_to_engine_pcm,
    wav_channels,
)
from speechmatics_modes.local._engine import Engine
from speechmatics_modes.local._fetch import Fetcher
from speechmatics_modes.local._insights import batch_sections, engine_insights
from speechmatics_modes.local._results import (
    JSON_FORMAT_VERSION,
    batch_results,
    in_time_order,
    labels_for,
    language_pack_info,
)
from speechmatics_modes.local._schema import ConfigProblem

__all__ = ["Job", "JobStatus", "JobStore", "prepare_job", "process_job", "timestamp"]

JobStatus = Literal["running", "done", "rejected", "deleted"]
"""The statuses the batch SDK understands (``expired`` jobs are answered with 410 instead)."""

logger = logging.getLogger(__name__)

_ID_ALPHABET = string.ascii_lowercase + string.digits


def timestamp(moment: datetime) -> str:
    """The service's timestamp format: ISO 8601 UTC with milliseconds and ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Job:
    """One batch job, as ``GET /v2/jobs/{id}`` describes it."""

    id: str
    created_at: datetime
    config: dict[str, Any]
    """The config exactly as submitted (echoed back untouched)."""
    data_name: str
    directory: Path
    status: JobStatus = "running"
    duration: float | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    transcript: dict[str, Any] | None = None
    """The json-v2 document, once done."""
    channels: tuple[tuple[str, Path], ...] = ()
    """With channel diarization of a multichannel file: each channel's label and engine PCM."""
    finished: anyio.Event = field(default_factory=anyio.Event)
    cancel_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    @property
    def upload_path(self) -> Path:
        """Where the submitted (or fetched) audio is written."""
        return self.directory / "upload"

    @property
    def pcm_path(self) -> Path:
        """Where the upload converted to engine PCM is written."""
        return self.directory / "engine.pcm"

    @property
    def running(self) -> bool:
        """Whether the job is still being worked on."""
        return self.status == "running"

    def details(self) -> dict[str, Any]:
        """The ``job`` object of the job endpoints."""
        details: dict[str, Any] = {
            "id": self.id,
            "created_at": timestamp(self.created_at),
            "data_name": self.data_name,
            "status": self.status,
            "config": self.config,
        }
        if self.duration is not None:
            details["duration"] = round(self.duration)
        if self.errors:
            details["errors"] = self.errors
        return details

    def reject(self, message: str) -> None:
        """End the job as ``rejected`` with the reason the client will read in ``errors``."""
        self.errors.append({"timestamp": timestamp(_now()), "message": message})
        self._finish("rejected")

    def delete(self) -> None:
        """End the job as ``deleted``, stopping its processing if it is still running."""
        self.cancel_scope.cancel()
        self._finish("deleted")

    def complete(self, transcript: dict[str, Any]) -> None:
        """End the job as ``done`` with its json-v2 transcript."""
        self.transcript = transcript
        self._finish("done")

    def _finish(self, status: JobStatus) -> None:
        self.status = status
        shutil.rmtree(self.directory, ignore_errors=True)
        self.finished.set()


class JobStore:
    """Every job of one server, and the directory holding their audio."""

    def __init__(self, root: Path, retention: timedelta) -> None:
        self._root = root
        self._retention = retention
        self._jobs: dict[str, Job] = {}

    def reserve(self) -> tuple[str, Path]:
        """A fresh job id and its empty directory, for an upload not yet accepted."""
        job_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))
        directory = self._root / job_id
        directory.mkdir()
        return job_id, directory

    def add(self, job: Job) -> None:
        """Register an accepted job."""
        self._jobs[job.id] = job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or ``None`` if there never was one."""
        return self._jobs.get(job_id)

    def expired(self, job: Job) -> bool:
        """Whether the job is past retention (the service then answers 410)."""
        return _now() - job.created_at > self._retention

    def listing(
        self,
        *,
        limit: int,
        created_before: datetime | None,
        created_after: datetime | None,
        include_deleted: bool,
    ) -> Iterator[Job]:
        """Jobs newest first, as ``GET /v2/jobs`` returns them."""
        jobs = sorted(self._jobs.values(), key=lambda job: job.created_at, reverse=True)
        shown = (
            job
            for job in jobs
            if not self.expired(job)
            and (include_deleted or job.status != "deleted")
            and (created_before is None or job.created_at < created_before)
            and (created_after is None or job.created_at > created_after)
        )
        for count, job in enumerate(shown):
            if count >= limit:
                return
            yield job


async def prepare_job(job: Job, *, fetcher: Fetcher) -> None:
    """Fetch (if asked) and convert the audio, so the job knows its duration.

    The submit is answered only after this: clients read ``job.duration`` from the first
    status they get (the legacy SDK's ``wait_for_completion`` does, and fails without it).
    A job whose audio cannot be fetched or decoded is left ``rejected``, as the service
    rejects it after accepting the submit.

    Args:
        job: A running job whose upload is on disk, or whose config has ``fetch_data``.
        fetcher: Downloads ``fetch_data`` URLs under the server's policy and size limit.
    """
    with job.cancel_scope:
        try:
            await _prepare(job, fetcher)
        except Exception as exc:  # the server must outlive a failing disk or decoder
            logger.exception("local batch job %s failed", job.id)
            if job.running:
                job.reject(f"Job error: {type(exc).__name__}")


async def process_job(
    job: Job, engine: Engine, *, extra_seconds: float, realtime_factor: float
) -> None:
    """Recognise a prepared job's audio; leaves the job ``done`` or ``rejected``.

    Args:
        job: A running job that :func:`prepare_job` converted.
        engine: Recognises the converted audio.
        extra_seconds: Seconds the job stays running in addition (fault injection).
        realtime_factor: The job stays running at least ``duration * realtime_factor`` seconds,
            so clients see a realistic ``running`` phase.
    """
    with job.cancel_scope:
        try:
            await _recognise(job, engine, extra_seconds, realtime_factor)
        except Exception as exc:  # the server must outlive a failing engine
            logger.exception("local batch job %s failed", job.id)
            if job.running:
                job.reject(f"Job error: {type(exc).__name__}")


async def _prepare(job: Job, fetcher: Fetcher) -> None:
    fetch = job.config.get("fetch_data")
    if fetch is not None:
        error = await fetcher.fetch(fetch, job.upload_path)
        if error is not None:
            job.reject(error)
            return
    try:
        info = await _convert(job)
    except AudioDecodeError as exc:
        job.reject(f"Job rejected due to invalid audio: {exc}")
        return
    except ConfigProblem as exc:
        job.reject(f"Job rejected: {exc}")
        return
    job.duration = info.duration


async def _convert(job: Job) -> AudioInfo:
    """Convert the upload to the engine PCM its recognition reads, and nothing more.

    With channel diarization of a multichannel WAV that is each channel apart (the labels are
    checked against the header's channel count first); otherwise one mono mixdown.

    Raises:
        AudioDecodeError: The upload cannot be decoded, or is a multichannel file to split that
            is not WAV.
        ConfigProblem: The config names another number of channels than the audio has.
    """
    upload = job.upload_path
    split = _channel_diarization(job.config)
    count = await anyio.to_thread.run_sync(wav_channels, upload) if split else None
    if count is not None and count > 1:
        return await _split_channels(job, count)
    info = await anyio.to_thread.run_sync(convert_file_to_engine_pcm, upload, job.pcm_path)
    if split and info.source_format.channels > 1:  # not a WAV: only decoding told
        raise cannot_split(upload.name)
    return info


def _channel_diarization(config: Mapping[str, Any]) -> bool:
    diarization = (config.get("transcription_config") or {}).get("diarization")
    return diarization in CHANNEL_DIARIZATION


async def _split_channels(job: Job, count: int) -> AudioInfo:
    """Each channel of the upload as engine PCM of its own, labelled as the config says.

    Returns:
        The last channel's conversion (every channel has the upload's duration); the
        channels themselves go to ``job.channels``.

    Raises:
        ConfigProblem: The config names another number of channels than the audio has.
    """
    given = (job.config.get("transcription_config") or {}).get("channel_diarization_labels")
    labels = given or [f"channel_{index}" for index in range(1, count + 1)]
    if len(labels) != count:
        raise ConfigProblem(
            f"channel_diarization_labels names {len(labels)} channels but the audio has {count}"
        )
    channels = []
    for index, label in enumerate(labels):
        path = job.directory / f"channel_{index}.pcm"
        info = await anyio.to_thread.run_sync(
            convert_file_to_engine_pcm, job.upload_path, path, index
        )
        channels.append((str(label), path))
    job.channels = tuple(channels)
    return info


async def _recognise(
    job: Job, engine: Engine, extra_seconds: float, realtime_factor: float
) -> None:
    clock = anyio.current_time()
    duration = job.duration or 0.0
    transcription_config = job.config.get("transcription_config") or {"language": "en"}
    tracks = job.channels or ((None, job.pcm_path),)
    per_channel = []
    for label, path in tracks:
        words = await engine.recognize_file(path)
        per_channel.append(batch_results(words, labels_for(transcription_config, channel=label)))
    extras = batch_sections(job.config, engine_insights(engine), duration)
    transcript = _json_v2(job, in_time_order(per_channel)) | extras
    ready_at = clock + duration * realtime_factor + extra_seconds
    await anyio.sleep(max(0.0, ready_at - anyio.current_time()))
    job.complete(transcript)


def _json_v2(job: Job, results: list[dict[str, Any]]) -> dict[str, Any]:
    transcription_config = job.config.get("transcription_config") or {"language": "en"}
    job_section: dict[str, Any] = {
        "id": job.id,
        "created_at": timestamp(job.created_at),
        "data_name": job.data_name,
        "duration": round(job.duration or 0.0),
    }
    if "tracking" in job.config:
        job_section["tracking"] = job.config["tracking"]
    return {
        "format": JSON_FORMAT_VERSION,
        "job": job_section,
        "metadata": {
            "created_at": timestamp(_now()),
            "type": job.config.get("type", "transcription"),
            "transcription_config": transcription_config,
            "orchestrator_version": "speechmatics-modes-local",
            "language_pack_info": language_pack_info(str(transcription_config["language"])),
        },
        "results": results,
    }


def _now() -> datetime:
    return datetime.now(timezone.utc)
