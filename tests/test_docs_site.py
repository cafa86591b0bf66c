"""The documentation site that ``nox -s docs`` builds documents every public name."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from types import ModuleType

import pytest

import speechmatics_modes
import speechmatics_modes.local
import speechmatics_modes.testing

SITE = os.environ.get("DOCS_SITE_DIR")

pytestmark = pytest.mark.skipif(SITE is None, reason="checks the site nox -s docs builds")


def _documented() -> set[str]:
    """Every object in the site's inventory (objects.inv: 4 header lines, then zlib text)."""
    assert SITE is not None
    header_and_body = (Path(SITE) / "objects.inv").read_bytes().split(b"\n", 4)
    return {line.split()[0] for line in zlib.decompress(header_and_body[4]).decode().splitlines()}


@pytest.mark.parametrize(
    "module", [speechmatics_modes, speechmatics_modes.local, speechmatics_modes.testing]
)
def test_api_reference_covers_every_public_name(module: ModuleType) -> None:
    documented = _documented()
    missing = [name for name in module.__all__ if f"{module.__name__}.{name}" not in documented]
    assert not missing, f"not in the API reference: {missing}"
