"""Tripwires: each place a backend reaches into an SDK's internals.

The SDK offers no public way to do these three things, so ``_batch.py`` uses private names,
each in one place. If an SDK release moves one, the test named after it fails here, against a
real local server, instead of a user's job failing somewhere later:

- ``speechmatics.batch._models``: ``TrackingConfig``, ``LanguageIdentificationConfig`` and
  ``AudioEventsConfig`` are not exported, yet ``JobConfig`` needs them;
- ``AsyncClient._transport.get``: the public ``get_transcript`` returns the SDK's parsed model,
  not the json-v2 document our ``Transcript`` is read from;
- ``Transport._handle_response``: the SDK drops response headers when it raises, and
  ``Retry-After`` is one;
- ``speechmatics.rt``'s ``Transport.connect`` passing ``ConnectionConfig.to_dict()`` to
  ``websockets.connect`` as keywords: how the real-time backend turns compression off.
"""

from __future__ import annotations

import pytest
import speechmatics.batch as sm
import speechmatics.rt as sm_rt

from speechmatics_modes import (
    BatchClient,
    BatchOptions,
    RetryPolicy,
    Settings,
    TranscriptionOptions,
    transcribe,
)
from speechmatics_modes._batch import _RetryAfter, _transcript_json
from speechmatics_modes._sources import classify, open_upload
from speechmatics_modes.local import (
    EngineInsights,
    Faults,
    HttpFailure,
    LocalServer,
    ScriptedEngine,
)
from tests.local.conftest import scripted_engine, wav_bytes

SECOND = b"\x00\x00" * 16_000

pytestmark = pytest.mark.anyio


async def test_the_private_job_config_classes_still_reach_the_service() -> None:
    features = BatchOptions(
        tracking={"reference": "tripwire-1"},
        language_identification_config={"expected_languages": ["en"]},
        audio_event_types=["music"],
    )
    # Offline engines refuse audio events; a scripted one that reports none takes the job.
    engine = ScriptedEngine.from_text("hello", insights=EngineInsights(audio_events=()))
    async with (
        LocalServer(engine=engine) as server,
        BatchClient(server.settings()) as client,
    ):
        async with open_upload(classify(wav_bytes(1.0)), None) as upload:
            job_id = await client.submit(
                upload, options=TranscriptionOptions(), batch_options=features
            )
        job = await client.job(job_id)
    assert job.reference == "tripwire-1", "speechmatics.batch._models.TrackingConfig moved?"


async def test_the_transport_still_reads_the_json_v2_document() -> None:
    config = sm.JobConfig(
        sm.JobType.TRANSCRIPTION, transcription_config=sm.TranscriptionConfig(language="en")
    )
    async with (
        LocalServer(engine=scripted_engine()) as server,
        sm.AsyncClient(api_key="k", url=server.settings().batch_url) as sdk,
    ):
        job = await sdk.submit_job(wav_bytes(1.0), config=config)
        await sdk.wait_for_completion(job.id, polling_interval=0.1, timeout=30)
        document = await _transcript_json(sdk, job.id)
    assert document["format"] == "2.9", "AsyncClient._transport.get moved?"
    assert [result["alternatives"][0]["content"] for result in document["results"]]


async def test_the_response_hook_still_sees_retry_after() -> None:
    busy = HttpFailure(count=1, status=429, retry_after=7, method="GET")
    async with (
        LocalServer(engine=scripted_engine(), faults=Faults(http_failure=busy)) as server,
        sm.AsyncClient(api_key="k", url=server.settings().batch_url) as sdk,
    ):
        retry_after = _RetryAfter(sdk, RetryPolicy(), on_rate_limit=None)
        with pytest.raises(sm.BatchError, match="429"):
            await sdk.list_jobs()
    assert retry_after.take() == 7.0, "Transport._handle_response moved?"


async def test_the_connection_settings_still_reach_websockets_connect() -> None:
    """Our sessions do not offer ``permessage-deflate``; the raw SDK's still do, and are served."""
    async with LocalServer(engine=scripted_engine()) as server:
        settings: Settings = server.settings()
        await transcribe([SECOND, SECOND], settings=settings)
        sdk = sm_rt.AsyncClient(api_key=settings.api_key.get_secret_value(), url=settings.rt_url)
        await sdk.start_session(audio_format=sm_rt.AudioFormat(chunk_size=len(SECOND)))
        await sdk.send_audio(SECOND)
        await sdk.stop_session()
        await sdk.close()
    assert server.stats.sessions_started == 2
    assert server.stats.sessions_compressed == 1, "Transport.connect ignores to_dict() now?"
