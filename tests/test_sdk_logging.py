"""Creating SDK clients over and over (one per session) must not pile handlers onto loggers."""

from __future__ import annotations

import logging

import pytest
import speechmatics.rt as sm_rt

from speechmatics_modes._sdk_logging import tend_sdk_loggers


def _null_handlers() -> int:
    loggers = [
        logger
        for name, logger in logging.Logger.manager.loggerDict.items()
        if name.startswith("speechmatics.rt") and isinstance(logger, logging.Logger)
    ]
    return sum(type(h) is logging.NullHandler for logger in loggers for h in logger.handlers)


def test_the_sdk_adds_handlers_per_client_and_pruning_keeps_one_each() -> None:
    sm_rt.AsyncClient(api_key="k", url="ws://127.0.0.1:1/v2")
    tend_sdk_loggers("speechmatics.rt")
    settled = _null_handlers()
    for _ in range(5):
        sm_rt.AsyncClient(api_key="k", url="ws://127.0.0.1:1/v2")
    assert _null_handlers() > settled  # the SDK's own behaviour, which we work around
    tend_sdk_loggers("speechmatics.rt")
    assert _null_handlers() == settled


def test_other_handlers_are_left_alone() -> None:
    logger = logging.getLogger("speechmatics.rt.test_probe")
    mine = logging.StreamHandler()
    logger.addHandler(mine)
    logger.addHandler(logging.NullHandler())
    logger.addHandler(logging.NullHandler())
    try:
        tend_sdk_loggers("speechmatics.rt")
        assert mine in logger.handlers
        assert sum(type(h) is logging.NullHandler for h in logger.handlers) == 1
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


def test_keys_are_masked_in_every_form_the_transports_log_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sm_rt.AsyncClient(api_key="k", url="ws://127.0.0.1:1/v2")  # creates the SDK's loggers
    tend_sdk_loggers("speechmatics.rt")
    caplog.set_level(logging.DEBUG)
    lines = {
        "websockets.client": ("> Authorization: Bearer %s", "s3cr3t-one"),
        "speechmatics.rt.async_client": ("connecting to wss://h/v2?jwt=%s&x=1", "s3cr3t-two"),
        "httpx": ('{"api_key": "%s"}', "s3cr3t-three"),
    }
    for name, (template, secret) in lines.items():
        logging.getLogger(name).debug(template, secret)
    for secret in ("s3cr3t-one", "s3cr3t-two", "s3cr3t-three"):
        assert secret not in caplog.text
    assert caplog.text.count("<redacted>") == 3
    assert "&x=1" in caplog.text
