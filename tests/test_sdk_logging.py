"""Creating SDK clients over and over (one per session) must not pile handlers onto loggers."""

from __future__ import annotations

import logging

import speechmatics.rt as sm_rt

from speechmatics_modes._sdk_logging import prune_duplicate_null_handlers


def _null_handlers() -> int:
    loggers = [
        logger
        for name, logger in logging.Logger.manager.loggerDict.items()
        if name.startswith("speechmatics.rt") and isinstance(logger, logging.Logger)
    ]
    return sum(type(h) is logging.NullHandler for logger in loggers for h in logger.handlers)


def test_the_sdk_adds_handlers_per_client_and_pruning_keeps_one_each() -> None:
    sm_rt.AsyncClient(api_key="k", url="ws://127.0.0.1:1/v2")
    prune_duplicate_null_handlers("speechmatics.rt")
    settled = _null_handlers()
    for _ in range(5):
        sm_rt.AsyncClient(api_key="k", url="ws://127.0.0.1:1/v2")
    assert _null_handlers() > settled  # the SDK's own behaviour, which we work around
    prune_duplicate_null_handlers("speechmatics.rt")
    assert _null_handlers() == settled


def test_other_handlers_are_left_alone() -> None:
    logger = logging.getLogger("speechmatics.rt.test_probe")
    mine = logging.StreamHandler()
    logger.addHandler(mine)
    logger.addHandler(logging.NullHandler())
    logger.addHandler(logging.NullHandler())
    try:
        prune_duplicate_null_handlers("speechmatics.rt")
        assert mine in logger.handlers
        assert sum(type(h) is logging.NullHandler for h in logger.handlers) == 1
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
