"""Every SDK exception becomes one of ours, chosen in one table per SDK."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest
import speechmatics.batch as sm_batch
import speechmatics.rt as sm_rt

from speechmatics_modes import (
    AudioSourceError,
    AuthenticationError,
    ConfigurationError,
    JobFailedError,
    ServerError,
    SessionLimitError,
    SpeechmaticsModesError,
    TranscriptionTimeout,
    TransportError,
)
from speechmatics_modes._batch import BATCH_ERRORS
from speechmatics_modes._exceptions import translate_sdk_error
from speechmatics_modes._realtime import REALTIME_ERRORS

SDK_TABLES = [(sm_batch, BATCH_ERRORS), (sm_rt, REALTIME_ERRORS)]


def _exported_exceptions(module: ModuleType) -> list[type[BaseException]]:
    names = module.__all__
    return [
        obj
        for obj in (getattr(module, name) for name in names)
        if inspect.isclass(obj) and issubclass(obj, BaseException)
    ]


@pytest.mark.parametrize(("module", "table"), SDK_TABLES, ids=["batch", "rt"])
def test_every_exported_sdk_exception_is_mapped(module: ModuleType, table: dict) -> None:  # type: ignore[type-arg]
    exported = _exported_exceptions(module)
    assert exported, "the SDK exports no exceptions? the walk is broken"
    unmapped = [cls.__name__ for cls in exported if cls not in table]
    assert not unmapped, f"unmapped SDK exceptions: {unmapped}"
    assert set(table) <= set(exported), "the table names classes the SDK does not export"


@pytest.mark.parametrize(("module", "table"), SDK_TABLES, ids=["batch", "rt"])
def test_every_mapping_gives_our_error_with_the_cause(module: ModuleType, table: dict) -> None:  # type: ignore[type-arg]
    for cls in _exported_exceptions(module):
        original = _instance(cls)
        ours = translate_sdk_error(original, table)
        assert isinstance(ours, SpeechmaticsModesError), cls
        assert ours.__cause__ is original


def _instance(cls: type[BaseException]) -> BaseException:
    if cls is sm_batch.TransportError:
        return cls("boom", status_code=None)  # type: ignore[call-arg]
    return cls("boom")


def test_foreign_exceptions_are_left_alone() -> None:
    assert translate_sdk_error(KeyError("x"), BATCH_ERRORS) is None
    assert translate_sdk_error(ValueError("x"), REALTIME_ERRORS) is None


def test_most_specific_class_wins() -> None:
    expired = translate_sdk_error(sm_batch.JobExpiredError("gone"), BATCH_ERRORS)
    assert isinstance(expired, ServerError)
    assert not isinstance(expired, JobFailedError)
    assert expired.status == 410
    rejected = translate_sdk_error(sm_batch.JobError("Job x was rejected"), BATCH_ERRORS)
    assert isinstance(rejected, JobFailedError)


def test_unlisted_sdk_subclass_maps_through_its_ancestor() -> None:
    class FutureJobError(sm_batch.JobError):
        pass

    assert isinstance(translate_sdk_error(FutureJobError("x"), BATCH_ERRORS), JobFailedError)


@pytest.mark.parametrize(
    ("status", "expected", "retryable"),
    [
        (None, TransportError, True),
        (401, AuthenticationError, False),
        (403, AuthenticationError, False),
        (400, ServerError, False),
        (404, ServerError, False),
        (408, ServerError, True),
        (429, ServerError, True),
        (500, ServerError, True),
        (503, ServerError, True),
    ],
)
def test_batch_transport_errors_by_status(
    status: int | None, expected: type[Exception], retryable: bool
) -> None:
    ours = translate_sdk_error(sm_batch.TransportError("HTTP", status_code=status), BATCH_ERRORS)
    assert type(ours) is expected
    assert ours.retryable is retryable
    if isinstance(ours, ServerError):
        assert ours.status == status


def test_realtime_handshake_401_is_an_authentication_error() -> None:
    sdk = sm_rt.ConnectionError(
        "WebSocket connection error: server rejected WebSocket connection: HTTP 401"
    )
    ours = translate_sdk_error(sdk, REALTIME_ERRORS)
    assert isinstance(ours, AuthenticationError)
    assert "401" in str(ours)
    refused = translate_sdk_error(sm_rt.ConnectionError("Connect call failed"), REALTIME_ERRORS)
    assert isinstance(refused, TransportError)
    assert refused.retryable


def test_tree_subclasses_builtins_where_callers_expect_them() -> None:
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(AudioSourceError, ValueError)
    assert issubclass(TranscriptionTimeout, TimeoutError)
    assert issubclass(TransportError, OSError)
    assert issubclass(JobFailedError, ServerError)
    assert issubclass(SessionLimitError, ServerError)
    for cls in (AudioSourceError, AuthenticationError, ServerError, TranscriptionTimeout):
        assert issubclass(cls, SpeechmaticsModesError)


def test_server_error_carries_what_the_service_said() -> None:
    error = SessionLimitError("limit", error_type="quota_exceeded", status=4005, retryable=True)
    assert (error.error_type, error.status, error.retryable) == ("quota_exceeded", 4005, True)
    failed = JobFailedError("rejected", job_id="abc", reasons=("bad audio",))
    assert (failed.job_id, failed.reasons, failed.retryable) == ("abc", ("bad audio",), False)


def test_tree_in_the_docstring_names_every_class() -> None:
    import speechmatics_modes._exceptions as module

    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            assert name in (module.__doc__ or ""), f"{name} missing from the drawn tree"
