"""Where the library connects and with which key, read from the environment like the SDKs do.

:class:`Settings` reads the environment itself rather than through pydantic-settings: importing
that (its sources for dotenv files, cloud secret stores, command lines) took about 20 ms of CPU,
more than a short batch job spends in our own code. The rules are the ones pydantic-settings
applied to these six fields (see the class docstring).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_core import Url

from speechmatics_modes._frozen import FrozenModel

__all__ = ["DEFAULT_BATCH_URL", "DEFAULT_MANAGEMENT_URL", "DEFAULT_RT_URL", "Backend", "Settings"]

DEFAULT_BATCH_URL = "https://asr.api.speechmatics.com/v2"
"""The batch SDK's own default (``speechmatics.batch.AsyncClient``)."""
DEFAULT_RT_URL = "wss://eu2.rt.speechmatics.com/v2"
"""The real-time SDK's own default (``speechmatics.rt.AsyncClient``)."""
DEFAULT_MANAGEMENT_URL = "https://mp.speechmatics.com"
"""Where the SDKs' ``JWTAuth`` mints temporary keys by default."""

Backend = Literal["cloud", "local"]
"""``cloud``: the Speechmatics service. ``local``: an embedded server started on demand."""


_ENV_PREFIX = "SPEECHMATICS_"


class Settings(FrozenModel):
    """Connection settings, from arguments or the same environment variables the SDKs read.

    ``SPEECHMATICS_API_KEY``, ``SPEECHMATICS_BATCH_URL`` and ``SPEECHMATICS_RT_URL`` mean here
    exactly what they mean to the official SDKs, so an environment that works with them works
    with us. The key is a :class:`~pydantic.SecretStr`: it never appears in a repr, a log line
    or an exception message.

    A field not given as an argument is read from the environment, whatever the case of the
    variable's name: from its alias (``SPEECHMATICS_MODES_BACKEND``) if it has one, else from
    ``SPEECHMATICS_`` and its name. Arguments win over the environment.
    """

    model_config = ConfigDict(populate_by_name=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**_with_environment(values))

    api_key: SecretStr | None = Field(
        default=None,
        description="Speechmatics API key (env SPEECHMATICS_API_KEY).",
    )
    batch_url: str = Field(
        default=DEFAULT_BATCH_URL,
        description="Base URL of the batch REST API, ending in /v2 (env SPEECHMATICS_BATCH_URL).",
    )
    rt_url: str = Field(
        default=DEFAULT_RT_URL,
        description="URL of the real-time WebSocket API (env SPEECHMATICS_RT_URL).",
    )
    backend: Backend = Field(
        default="cloud",
        validation_alias="SPEECHMATICS_MODES_BACKEND",
        description=(
            "'cloud' uses the Speechmatics service; 'local' starts the embedded offline server "
            "on demand (env SPEECHMATICS_MODES_BACKEND)."
        ),
    )

    temporary_keys: bool = Field(
        default=False,
        validation_alias="SPEECHMATICS_MODES_TEMPORARY_KEYS",
        description=(
            "Connect each real-time session with a temporary key minted for it (60 s), so the "
            "long-lived key goes only to the key endpoint, never over a WebSocket (env "
            "SPEECHMATICS_MODES_TEMPORARY_KEYS)."
        ),
    )
    management_url: str = Field(
        default=DEFAULT_MANAGEMENT_URL,
        validation_alias="SM_MANAGEMENT_PLATFORM_URL",
        description=(
            "Base URL temporary keys are minted at (/v1/api_keys), as the SDKs read it "
            "(env SM_MANAGEMENT_PLATFORM_URL)."
        ),
    )

    @model_validator(mode="after")
    def _check_temporary_keys(self) -> Settings:
        if self.temporary_keys and self.api_key is None:
            raise ValueError("temporary_keys needs an api_key to mint the temporary keys with")
        return self

    @field_validator("batch_url")
    @classmethod
    def _check_batch_url(cls, value: str) -> str:
        return _checked_url(value, ("http", "https"), "batch_url")

    @field_validator("rt_url")
    @classmethod
    def _check_rt_url(cls, value: str) -> str:
        return _checked_url(value, ("ws", "wss"), "rt_url")

    @field_validator("management_url")
    @classmethod
    def _check_management_url(cls, value: str) -> str:
        return _checked_url(value, ("http", "https"), "management_url")


def _checked_url(value: str, schemes: tuple[str, ...], name: str) -> str:
    url = Url(value)  # pydantic's AnyUrl, without importing pydantic.networks (2-3 ms)
    if url.scheme not in schemes:
        raise ValueError(f"{name} must use {' or '.join(schemes)}, got {url.scheme!r}")
    return value.rstrip("/")


def _with_environment(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` plus, for each field they leave out, its environment variable if set.

    A value from the environment goes in under the field's alias where it has one, so that a
    validation error names the variable the user set.
    """
    environment = {name.upper(): value for name, value in os.environ.items()}
    found = dict(values)
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        if name in values or alias in values:
            continue
        for variable in (alias, _ENV_PREFIX + name.upper()):
            if variable is not None and variable.upper() in environment:
                found[alias or name] = environment[variable.upper()]
                break
    return found
