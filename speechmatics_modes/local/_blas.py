"""numpy's BLAS held to one thread while a Whisper engine runs.

numpy's BLAS (OpenBLAS in its wheels) keeps a thread per core, and after each call those
threads spin for a while, waiting for more work, on the cores the decoders need. faster-whisper
multiplies its mel filters with numpy once per decode, a product too small to gain anything
from threads, so every decode also burned about a tenth of a second of another core. On a
2-core machine an interim live decode of 3.4 s of speech took 0.42 s of CPU for 0.30 s of wall
time (0.25 s with one BLAS thread), and a paced live session cost 0.87 instead of 0.66 CPU
seconds per audio second. With two decode workers, each decode's spinning slowed the other.
The decoders themselves (CTranslate2) do not use numpy's BLAS.

BLAS libraries offer no per-thread limit that every build has, so the limit is the process's:
it holds while any engine runs and the limits from before come back when the last one stops.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

# numpy is loaded before any limit is set: threadpoolctl limits only the libraries it finds.
import numpy  # noqa: F401
from threadpoolctl import threadpool_limits

__all__ = ["one_blas_thread"]


class _SharedLimit:
    """One thread for BLAS while anyone holds it; the earlier limits back after the last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # engines may start and stop on different threads' loops
        self._holders = 0
        self._limits: threadpool_limits | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._limits = threadpool_limits(limits=1, user_api="blas")
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._limits is not None:
                    self._limits.restore_original_limits()
                    self._limits = None


_BLAS = _SharedLimit()


def one_blas_thread() -> AbstractContextManager[None]:
    """Hold numpy's BLAS to one thread inside the block (blocks may nest and overlap)."""
    return _BLAS.held()
