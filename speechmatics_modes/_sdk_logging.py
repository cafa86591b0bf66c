"""A workaround for the SDKs' loggers, which gain a handler with every client created.

``speechmatics.rt`` and ``speechmatics.batch`` call ``get_logger(name)`` in each client's
constructor, and it adds a new ``NullHandler`` to that module's logger every time. A stream
that opens a session per rollover or reconnect would keep every one of them, growing without
bound and making every log call a little slower. After creating a client we keep one.
"""

from __future__ import annotations

import logging

__all__ = ["prune_duplicate_null_handlers"]


def prune_duplicate_null_handlers(prefix: str) -> None:
    """Leave at most one ``NullHandler`` on each logger named ``prefix`` or below it."""
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        if name != prefix and not name.startswith(prefix + "."):
            continue
        nulls = [handler for handler in logger.handlers if type(handler) is logging.NullHandler]
        for extra in nulls[1:]:
            logger.removeHandler(extra)
