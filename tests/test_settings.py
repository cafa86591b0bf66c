"""Settings read the same environment as the SDKs and never reveal the key."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from speechmatics_modes import Settings
from speechmatics_modes._settings import DEFAULT_BATCH_URL, DEFAULT_RT_URL

KEY = "sk-test-0123456789abcdef"


def test_defaults_match_the_sdks() -> None:
    settings = Settings()
    assert settings.api_key is None
    assert settings.batch_url == DEFAULT_BATCH_URL == "https://asr.api.speechmatics.com/v2"
    assert settings.rt_url == DEFAULT_RT_URL == "wss://eu2.rt.speechmatics.com/v2"
    assert settings.backend == "cloud"


def test_reads_the_sdk_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHMATICS_API_KEY", KEY)
    monkeypatch.setenv("SPEECHMATICS_BATCH_URL", "http://127.0.0.1:8080/v2/")
    monkeypatch.setenv("SPEECHMATICS_RT_URL", "ws://127.0.0.1:8080/v2")
    monkeypatch.setenv("SPEECHMATICS_MODES_BACKEND", "local")
    settings = Settings()
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == KEY
    assert settings.batch_url == "http://127.0.0.1:8080/v2"
    assert settings.rt_url == "ws://127.0.0.1:8080/v2"
    assert settings.backend == "local"


def test_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHMATICS_MODES_BACKEND", "local")
    assert Settings(backend="cloud").backend == "cloud"


def test_key_never_appears_in_text(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(api_key=KEY)
    logging.getLogger("test").warning("settings: %s %r", settings, settings)
    assert KEY not in repr(settings)
    assert KEY not in str(settings)
    assert KEY not in settings.model_dump_json()
    assert KEY not in caplog.text


def test_key_never_appears_in_validation_errors() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(api_key=KEY, rt_url="https://not-a-websocket")
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_url", "ws://127.0.0.1/v2"),
        ("rt_url", "http://127.0.0.1/v2"),
        ("rt_url", "not a url"),
        ("backend", "mars"),
    ],
)
def test_rejects_bad_values(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_typo_is_an_error() -> None:
    with pytest.raises(ValidationError):
        Settings(api_kee=KEY)  # type: ignore[call-arg]


def test_variable_names_ignore_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("speechmatics_api_key", KEY)
    monkeypatch.setenv("Speechmatics_Modes_Backend", "local")
    settings = Settings()
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == KEY
    assert settings.backend == "local"


def test_an_aliased_field_also_reads_the_prefixed_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHMATICS_BACKEND", "local")
    assert Settings().backend == "local"
    monkeypatch.setenv("SPEECHMATICS_MODES_BACKEND", "cloud")
    assert Settings().backend == "cloud"


def test_a_bad_variable_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHMATICS_MODES_BACKEND", "mars")
    with pytest.raises(ValidationError, match="SPEECHMATICS_MODES_BACKEND"):
        Settings()
