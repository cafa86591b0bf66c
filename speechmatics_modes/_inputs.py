"""The inputs of a bulk run: each one an id (the journal's key) and where its audio is.

A source is a local path (uploaded by the worker) or an ``http(s)://`` URL (handed to the
service as ``fetch_data``, so the worker moves no audio). Large runs list their inputs in a
manifest file instead of on a command line: one path or URL per line, or a CSV file whose
header has an ``id`` column and a ``source`` (or ``path``/``url``) column.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from speechmatics_modes._exceptions import ConfigurationError
from speechmatics_modes._sources import classify

__all__ = ["BulkInput", "inputs_of", "is_url", "read_manifest"]


def is_url(source: str | os.PathLike[str]) -> bool:
    """An ``http(s)://`` source: the service fetches it (see :func:`classify`)."""
    return classify(source).kind == "url"


_SOURCE_COLUMNS = ("source", "path", "url")


@dataclass(frozen=True)
class BulkInput:
    """One input of a bulk run."""

    id: str
    """The journal's key: the absolute path, the URL, or a manifest's ``id`` column."""
    source: str
    """The absolute path or the URL of the audio."""

    @property
    def is_url(self) -> bool:
        """The service fetches this input itself (``fetch_data``)."""
        return is_url(self.source)

    def origin(self) -> Path | str:
        """The source as :class:`~speechmatics_modes.BulkResult` reports it: a path or a URL."""
        return self.source if self.is_url else Path(self.source)


def inputs_of(sources: Iterable[str | os.PathLike[str] | BulkInput]) -> list[BulkInput]:
    """Give every source its id: a path is keyed by its absolute form, a URL by itself."""
    return [source if isinstance(source, BulkInput) else _keyed(source) for source in sources]


def _keyed(source: str | os.PathLike[str]) -> BulkInput:
    if is_url(source):
        return BulkInput(str(source), str(source))
    absolute = str(Path(source).resolve())
    return BulkInput(absolute, absolute)


def read_manifest(path: str | os.PathLike[str]) -> list[BulkInput]:
    """The inputs a manifest file lists; relative paths are relative to the manifest.

    Raises:
        ConfigurationError: the file is unreadable, a CSV lacks its columns, or an id repeats.
    """
    manifest = Path(path)
    try:
        text = manifest.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the manifest {manifest}: {exc.strerror}") from exc
    lines = text.splitlines()
    first = lines[0].strip().lower() if lines else ""
    rows = _csv_rows(manifest, lines) if first.startswith("id,") or ",id" in first else None
    inputs = list(rows) if rows is not None else list(_plain_rows(manifest.parent, lines))
    _check_unique(manifest, inputs)
    return inputs


def _plain_rows(base: Path, lines: list[str]) -> Iterator[BulkInput]:
    for line in lines:
        source = line.strip()
        if source and not source.startswith("#"):
            yield _keyed(source if is_url(source) else base / source)


def _csv_rows(manifest: Path, lines: list[str]) -> Iterator[BulkInput]:
    reader = csv.DictReader(lines)
    fields = [name.strip().lower() for name in reader.fieldnames or ()]
    column = next((name for name in _SOURCE_COLUMNS if name in fields), None)
    if column is None:
        raise ConfigurationError(
            f"the manifest {manifest} has an id column but no source column "
            f"(one of: {', '.join(_SOURCE_COLUMNS)})"
        )
    for row in reader:
        cells = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
        if not cells.get("id") or not cells.get(column):
            continue
        source = cells[column]
        located = source if is_url(source) else str((manifest.parent / source).resolve())
        yield BulkInput(cells["id"], located)


def _check_unique(manifest: Path, inputs: list[BulkInput]) -> None:
    seen: set[str] = set()
    for item in inputs:
        if item.id in seen:
            raise ConfigurationError(f"the manifest {manifest} lists the id {item.id!r} twice")
        seen.add(item.id)
