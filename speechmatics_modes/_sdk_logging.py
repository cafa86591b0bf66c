"""What we do to the SDKs' loggers after creating a client: no key in any record, no handler pile.

* Keys. At DEBUG the ``websockets.client`` logger writes every handshake header, among them
  ``Authorization: Bearer <key>``; a URL can carry ``?jwt=<key>``. :class:`KeyRedactor`, a
  filter on every logger of the SDK and of the transports under it (websockets, httpx,
  httpcore), masks both before any handler sees the record, so ``Settings``' promise that the
  key never reaches a log holds at every level.
* Handlers. ``speechmatics.rt`` and ``speechmatics.batch`` call ``get_logger(name)`` in each
  client's constructor, and it adds a new ``NullHandler`` to that module's logger every time. A
  stream that opens a session per rollover or reconnect would keep every one of them, growing
  without bound and making every log call a little slower. We keep one.
"""

from __future__ import annotations

import logging
import re

__all__ = ["KeyRedactor", "tend_sdk_loggers"]

TRANSPORT_LOGGERS = ("websockets", "websockets.client", "httpx", "httpcore")
"""The libraries the SDKs talk through; their loggers see headers and URLs. Named loggers are
created if need be: a filter must be on the logger that emits, before its first record."""

_SECRETS = re.compile(r"(?i)(bearer\s+|jwt=|api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;)]+")
_REDACTED = "<redacted>"


class KeyRedactor(logging.Filter):
    """Masks ``Bearer <key>``, ``jwt=<key>`` and ``api_key: <key>`` in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _SECRETS.sub(lambda match: match.group(1) + _REDACTED, message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_REDACTOR = KeyRedactor()


def tend_sdk_loggers(prefix: str) -> None:
    """Call after creating an SDK client: redact keys and keep one ``NullHandler`` per logger.

    Args:
        prefix: The SDK's package (``"speechmatics.rt"``); its loggers and the transports'.
    """
    for logger in _loggers_under((prefix, *TRANSPORT_LOGGERS)):
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)
        nulls = [handler for handler in logger.handlers if type(handler) is logging.NullHandler]
        for extra in nulls[1:]:
            logger.removeHandler(extra)


def _loggers_under(prefixes: tuple[str, ...]) -> list[logging.Logger]:
    loggers = [logging.getLogger(prefix) for prefix in prefixes]
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.startswith(tuple(p + "." for p in prefixes)):
            loggers.append(logger)
    return loggers
