"""Writing audio that arrives over the network to disk, within the server's limits.

Uploads and ``fetch_data`` downloads both arrive as chunks of unknown total size, so both go
through :func:`save_chunks`: it stops at the per-file limit (:class:`TooLarge`) and before the
disk holding the server's files runs low (:class:`DiskLow`), however many uploads run at once.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

import anyio

__all__ = ["DiskGuard", "DiskLow", "TooLarge", "save_chunks"]


class TooLarge(Exception):
    """The file is larger than the server accepts."""


class DiskLow(Exception):
    """Writing more would leave the disk with less free space than the server keeps."""


@dataclass(frozen=True)
class DiskGuard:
    """Keeps ``min_free`` bytes free on the disk holding ``directory``."""

    directory: Path
    min_free: int

    def check(self, more: int) -> None:
        """Raise :class:`DiskLow` if writing ``more`` bytes would cross the floor."""
        if shutil.disk_usage(self.directory).free - more < self.min_free:
            raise DiskLow


async def save_chunks(
    chunks: AsyncIterable[bytes], destination: Path, *, limit: int | None, disk: DiskGuard
) -> None:
    """Write ``chunks`` to ``destination``, never past ``limit`` bytes or the disk's floor.

    Raises:
        TooLarge: more than ``limit`` bytes arrived (what was written stays; the caller
            removes it with the job's directory).
        DiskLow: see :class:`DiskGuard`.
    """
    written = 0
    # A plain file, closed however this ends: an async file's close is itself awaited, and
    # would be skipped when the request is cancelled (a client gone mid-upload).
    with destination.open("wb") as out:
        async for chunk in chunks:
            written += len(chunk)
            if limit is not None and written > limit:
                raise TooLarge
            disk.check(len(chunk))
            await anyio.to_thread.run_sync(out.write, chunk)
