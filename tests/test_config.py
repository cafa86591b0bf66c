"""Our options translate into each SDK's own config, field by field, and fail before any I/O."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

import pytest
import speechmatics.batch as sm_batch
import speechmatics.rt as sm_rt
from pydantic import ValidationError

from speechmatics_modes import (
    AudioFormat,
    BatchOptions,
    ConfigurationError,
    TranscriptionOptions,
)
from speechmatics_modes._batch import batch_job_config, batch_transcription_config
from speechmatics_modes._realtime import realtime_audio_format, realtime_transcription_config

# One sample value per field, as the caller would write it, and what the SDK must then hold.
FIELD_SAMPLES: dict[str, Any] = {
    "language": "de",
    "model": "standard",
    "output_locale": "en-GB",
    "domain": "finance",
    "additional_vocab": [{"content": "Speechmatics", "sounds_like": ["speech matics"]}],
    "punctuation_overrides": {"permitted_marks": [".", ","], "sensitivity": 0.4},
    "enable_entities": True,
    "diarization": "speaker",
    "speaker_diarization_config": {"speaker_sensitivity": 0.7, "prefer_current_speaker": True},
    "channel_diarization_labels": ["agent", "caller"],
    "language_hints": ["en", "es"],
    "language_hints_strict": True,
    "transcript_filtering_config": {
        "remove_disfluencies": True,
        "replacements": [{"from": "gonna", "to": "going to"}],
    },
    "audio_filtering_config": {"volume_threshold": 3.5},
    "enable_partials": True,
    "max_delay": 1.5,
    "max_delay_mode": "fixed",
    "conversation_config": {"end_of_utterance_silence_trigger": 0.6},
    "streaming_mode": True,
    "ctrl": {"some": "thing"},
}
"""Every field of TranscriptionOptions, with a value that is not its default."""

NOT_EXPOSED = {"operating_point": "deprecated alias of `model`; `model` sends the same value"}
REALTIME_ONLY = {
    "enable_partials",
    "max_delay",
    "max_delay_mode",
    "conversation_config",
    "streaming_mode",
    "ctrl",
}
BATCH_SDK_FIELDS_WITHOUT_BATCH_MEANING = {"enable_partials", "max_delay", "max_delay_mode"}
"""Fields the batch SDK's dataclass has but the batch API ignores: we refuse them for batch."""


def _options_for(name: str) -> TranscriptionOptions:
    extra: dict[str, Any] = {}
    if name == "speaker_diarization_config":
        extra["diarization"] = "speaker"
    if name == "channel_diarization_labels":
        extra["diarization"] = "channel"
    return TranscriptionOptions(**{name: FIELD_SAMPLES[name], **extra})


def _plain(value: Any) -> Any:
    """SDK values as JSON would carry them: enums by value, dataclasses as dicts, no Nones."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
    raise TypeError(type(value))


def test_samples_cover_every_option() -> None:
    assert set(FIELD_SAMPLES) == set(TranscriptionOptions.model_fields)


@pytest.mark.parametrize(
    ("sdk_config", "mode"),
    [(sm_batch.TranscriptionConfig, "batch"), (sm_rt.TranscriptionConfig, "realtime")],
)
def test_every_sdk_field_is_reachable(sdk_config: type[Any], mode: str) -> None:
    sdk_fields = {f.name for f in dataclasses.fields(sdk_config)}
    missing = sdk_fields - set(TranscriptionOptions.model_fields) - set(NOT_EXPOSED)
    assert not missing, f"{mode} SDK fields with no option: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(FIELD_SAMPLES))
def test_field_reaches_the_realtime_sdk_unchanged(name: str) -> None:
    options = _options_for(name)
    if name == "model":
        options = TranscriptionOptions(model="melia-1")
    sdk = _to_realtime(options)
    assert isinstance(sdk, sm_rt.TranscriptionConfig)
    assert _plain(getattr(sdk, name)) == options.to_wire()[name]
    assert _plain(sdk.to_dict())[name] == options.to_wire()[name]


@pytest.mark.parametrize("name", sorted(set(FIELD_SAMPLES) - REALTIME_ONLY))
def test_field_reaches_the_batch_sdk_unchanged(name: str) -> None:
    options = _options_for(name)
    sdk = _to_batch(options)
    assert isinstance(sdk, sm_batch.TranscriptionConfig)
    sent = _plain(sdk.to_dict())[name]
    if name == "transcript_filtering_config":  # the SDK's dataclass always sends this flag
        assert sent == {"remove_disfluencies": True, **options.to_wire()[name]}
    else:
        assert sent == options.to_wire()[name]


def test_unset_fields_are_left_to_the_sdk_defaults() -> None:
    assert _plain(_to_batch(TranscriptionOptions()).to_dict()) == {
        "language": "en",
        "model": "enhanced",
    }
    assert _plain(_to_realtime(TranscriptionOptions()).to_dict()) == {
        "language": "en",
        "model": "enhanced",
    }


@pytest.mark.parametrize("name", sorted(REALTIME_ONLY))
def test_realtime_only_field_is_an_error_for_batch(name: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{name}.*batch transcription.*realtime"):
        _to_batch(_options_for(name))


@pytest.mark.parametrize(
    ("options", "field", "mode"),
    [
        (TranscriptionOptions(model="oak-1"), "model='oak-1'", "real-time"),
        (
            TranscriptionOptions(diarization="channel_and_speaker"),
            "diarization='channel_and_speaker'",
            "batch",
        ),
        (
            TranscriptionOptions(
                diarization="speaker", speaker_diarization_config={"max_speakers": 3}
            ),
            "speaker_diarization_config.max_speakers",
            "batch",
        ),
        (
            TranscriptionOptions(
                diarization="speaker", speaker_diarization_config={"get_speakers": True}
            ),
            "speaker_diarization_config.get_speakers",
            "real-time",
        ),
    ],
)
def test_mode_specific_values_name_field_and_mode(
    options: TranscriptionOptions, field: str, mode: str
) -> None:
    translate = _to_realtime if mode == "real-time" else _to_batch
    with pytest.raises(ConfigurationError) as caught:
        translate(options)
    message = str(caught.value)
    assert message.startswith(field)
    assert f"not available in {mode} transcription" in message


def test_mode_specific_values_allowed_in_their_own_mode() -> None:
    assert _to_batch(TranscriptionOptions(model="oak-1")).model == sm_batch.Model.OAK_1
    both = TranscriptionOptions(diarization="channel_and_speaker")
    assert _to_realtime(both).diarization == "channel_and_speaker"
    speakers = _to_realtime(
        TranscriptionOptions(diarization="speaker", speaker_diarization_config={"max_speakers": 3})
    )
    assert speakers.speaker_diarization_config == sm_rt.SpeakerDiarizationConfig(max_speakers=3)


def test_known_speakers_become_sdk_identifiers() -> None:
    options = TranscriptionOptions(
        diarization="speaker",
        speaker_diarization_config={"speakers": [{"label": "Ann", "speaker_identifiers": ["x1"]}]},
    )
    speakers = _to_realtime(options).speaker_diarization_config
    assert speakers is not None
    assert speakers.speakers == [sm_rt.SpeakerIdentifier(label="Ann", speaker_identifiers=["x1"])]
    assert _to_batch(options).speaker_diarization_config == {
        "speakers": [{"label": "Ann", "speaker_identifiers": ["x1"]}]
    }


def test_plain_strings_are_vocabulary_entries() -> None:
    options = TranscriptionOptions(additional_vocab=["gnocchi", {"content": "Bolognese"}])
    assert options.to_wire()["additional_vocab"] == [
        {"content": "gnocchi"},
        {"content": "Bolognese"},
    ]


@pytest.mark.parametrize(
    "bad",
    [
        {"max_delay": 0.5},
        {"max_delay": 4.5},
        {"max_delay_mode": "eventually"},
        {"language": ""},
        {"language": "English"},
        {"model": "turbo"},
        {"diarization": "people"},
        {"output_locale": "english"},
        {"punctuation_overrides": {"sensitivity": 1.5}},
        {"audio_filtering_config": {"volume_threshold": 101}},
        {"conversation_config": {"end_of_utterance_silence_trigger": 3}},
        {"diarization": "speaker", "speaker_diarization_config": {"max_speakers": 1}},
        {"diarization": "speaker", "speaker_diarization_config": {"speaker_sensitivity": -0.1}},
        {
            "diarization": "speaker",
            "speaker_diarization_config": {
                "speakers": [{"label": "S1", "speaker_identifiers": ["a"]}]
            },
        },
        {"speaker_diarization_config": {"speaker_sensitivity": 0.5}},
        {"channel_diarization_labels": ["left"]},
        {"diarization": "channel", "channel_diarization_labels": ["has space"]},
        {"additional_vocab": [{"content": ""}]},
        {"enable_partials": "sometimes"},
        {"languge": "en"},
    ],
)
def test_invalid_values_are_rejected_at_construction(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TranscriptionOptions(**bad)


def test_options_are_frozen_values() -> None:
    options = TranscriptionOptions(language="fr")
    with pytest.raises(ValidationError):
        options.language = "de"  # type: ignore[misc]
    assert options == TranscriptionOptions(language="fr")
    assert hash(options) == hash(TranscriptionOptions(language="fr"))


def test_every_option_has_a_description() -> None:
    """The CLI's help and the JSON schema show them; attribute docstrings are not read."""
    import speechmatics_modes._config as config

    models = [
        value
        for value in vars(config).values()
        if isinstance(value, type)
        and issubclass(value, config._Value)
        and value is not config._Value
    ]
    assert {TranscriptionOptions, BatchOptions, AudioFormat} <= set(models)
    for model in models:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


FULL_BATCH_OPTIONS = BatchOptions(
    fetch_data={"url": "https://example.com/a.wav", "auth_headers": ["Authorization: Bearer t"]},
    notification_config=[
        {"url": "https://hooks.example.com/done", "contents": ["jobinfo"], "method": "put"}
    ],
    tracking={"title": "Standup", "reference": "r-1", "tags": ["team"]},
    translation_config={"target_languages": ["de", "fr"]},
    language_identification_config={"expected_languages": ["en", "fr"]},
    summarization_config={"content_type": "conversational", "summary_length": "detailed"},
    sentiment_analysis=True,
    topic_detection_config={"topics": ["budget"]},
    auto_chapters=True,
    audio_event_types=["music", "laughter"],
    output_config={"srt_max_line_length": 30, "srt_max_lines": 1, "generate_lattice": False},
)

EXPECTED_JOB_SECTIONS = {
    "fetch_data": {"url": "https://example.com/a.wav", "auth_headers": ["Authorization: Bearer t"]},
    "notification_config": [
        {"url": "https://hooks.example.com/done", "contents": ["jobinfo"], "method": "put"}
    ],
    "tracking": {"title": "Standup", "reference": "r-1", "tags": ["team"]},
    "translation_config": {"target_languages": ["de", "fr"]},
    "language_identification_config": {"expected_languages": ["en", "fr"]},
    "summarization_config": {"content_type": "conversational", "summary_length": "detailed"},
    "sentiment_analysis_config": {"enable_sentiment": True},
    "topic_detection_config": {"topics": ["budget"]},
    "auto_chapters_config": {"enable_chapters": True},
    "audio_events_config": {"types": ["music", "laughter"]},
    "output_config": {
        "generate_lattice": False,
        "srt_overrides": {"max_line_length": 30, "max_lines": 1},
    },
}

JOB_CONFIG_FIELDS_NOT_EXPOSED = {
    "type": "always 'transcription': this library transcribes",
    "transcription_config": "comes from TranscriptionOptions",
    "alignment_config": "alignment jobs align a known text; they do not transcribe",
}


def test_every_job_config_field_is_reachable() -> None:
    sdk_fields = {f.name for f in dataclasses.fields(sm_batch.JobConfig)}
    assert sdk_fields - set(JOB_CONFIG_FIELDS_NOT_EXPOSED) == set(EXPECTED_JOB_SECTIONS)


def test_batch_options_become_the_sdk_job_config() -> None:
    job = batch_job_config(TranscriptionOptions(language="en"), FULL_BATCH_OPTIONS)
    assert isinstance(job, sm_batch.JobConfig)
    sent = _plain(job.to_dict())
    assert sent == {
        "type": "transcription",
        "transcription_config": {"language": "en", "model": "enhanced"},
        **EXPECTED_JOB_SECTIONS,
    }


def test_job_config_survives_the_sdks_strict_parser() -> None:
    """The service echoes the config back and the SDK parses it strictly: it must round-trip."""
    sent = _plain(batch_job_config(TranscriptionOptions(), FULL_BATCH_OPTIONS).to_dict())
    assert _plain(sm_batch.JobConfig.from_dict(sent).to_dict()) == sent


def test_job_options_need_batch_transcription_options() -> None:
    with pytest.raises(ConfigurationError, match="enable_partials"):
        _to_job_config(TranscriptionOptions(enable_partials=True), BatchOptions(auto_chapters=True))


def test_empty_audio_event_types_ask_for_every_type() -> None:
    job = batch_job_config(TranscriptionOptions(), BatchOptions(audio_event_types=[]))
    assert job.to_dict()["audio_events_config"] == {}


@pytest.mark.parametrize(
    "bad",
    [
        {"translation_config": {"target_languages": []}},
        {"translation_config": {"target_languages": ["a", "b", "c", "d", "e", "f"]}},
        {"summarization_config": {"summary_length": "epic"}},
        {"notification_config": [{"url": "ftp://x"}]},
        {"notification_config": [{"url": "https://x", "contents": ["everything"]}]},
        {"fetch_data": {"url": "file:///etc/passwd"}},
        {"output_config": {"srt_max_lines": 0}},
        {"sentiment": True},
    ],
)
def test_invalid_batch_options_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BatchOptions(**bad)


@pytest.mark.parametrize(
    ("encoding", "sdk_encoding", "width"),
    [
        ("pcm_s16le", sm_rt.AudioEncoding.PCM_S16LE, 2),
        ("pcm_f32le", sm_rt.AudioEncoding.PCM_F32LE, 4),
        ("mulaw", sm_rt.AudioEncoding.MULAW, 1),
    ],
)
def test_audio_format_translates(encoding: Any, sdk_encoding: Any, width: int) -> None:
    audio = AudioFormat(encoding=encoding, sample_rate=8000, chunk_size=1600)
    sdk = realtime_audio_format(audio)
    assert (sdk.encoding, sdk.sample_rate, sdk.chunk_size) == (sdk_encoding, 8000, 1600)
    assert sdk.bytes_per_sample == audio.bytes_per_sample == width
    assert audio.bytes_per_second == 8000 * width
    assert sdk.to_dict()["type"] == "raw"


@pytest.mark.parametrize(
    "bad",
    [
        {"sample_rate": 100},
        {"sample_rate": 1_000_000},
        {"encoding": "mp3"},
        {"chunk_size": 0},
        {"encoding": "pcm_f32le", "chunk_size": 4098},
        {"encoding": "pcm_s16le", "chunk_size": 4097},
    ],
)
def test_invalid_audio_format_is_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AudioFormat(**bad)


def _to_batch(options: TranscriptionOptions) -> sm_batch.TranscriptionConfig:
    """What the batch backend sends: options checked at the door, then translated."""
    options.check_mode("batch")
    return batch_transcription_config(options)


def _to_realtime(options: TranscriptionOptions) -> sm_rt.TranscriptionConfig:
    options.check_mode("realtime")
    return realtime_transcription_config(options)


def _to_job_config(options: TranscriptionOptions, job: BatchOptions) -> sm_batch.JobConfig:
    options.check_mode("batch")
    return batch_job_config(options, job)


@pytest.mark.parametrize(
    ("call", "translated"),
    [
        (
            lambda: TranscriptionOptions(language="de").to_batch(),
            lambda: _to_batch(TranscriptionOptions(language="de")),
        ),
        (
            lambda: TranscriptionOptions(language="de").to_realtime(),
            lambda: _to_realtime(TranscriptionOptions(language="de")),
        ),
        (
            lambda: FULL_BATCH_OPTIONS.to_job_config(),
            lambda: _to_job_config(TranscriptionOptions(), FULL_BATCH_OPTIONS),
        ),
        (lambda: AudioFormat().to_realtime(), lambda: realtime_audio_format(AudioFormat())),
    ],
    ids=["to_batch", "to_realtime", "to_job_config", "AudioFormat.to_realtime"],
)
def test_the_sdk_returning_methods_are_deprecated_but_still_work(
    call: Any, translated: Any
) -> None:
    with pytest.warns(DeprecationWarning, match=r"SDK type and will be removed in 0\.2"):
        old = call()
    assert old == translated()


def test_the_deprecated_translation_still_checks_the_mode() -> None:
    with (
        pytest.warns(DeprecationWarning, match="to_batch"),
        pytest.raises(ConfigurationError, match="enable_partials"),
    ):
        TranscriptionOptions(enable_partials=True).to_batch()
