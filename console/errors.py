"""The one place the console turns an exception into words for the trader (and the log).

Why one place: the app, its workers and `perpdesk`'s start-up each caught their own list of error
classes and printed them their own way. Expected failures (bad config, unreachable exchange,
journal or strategy problem) carry a plain one-line ``message``; anything else is a bug, shown as
one line too and logged with its traceback. Every expected failure derives from core's
``PerpdeskError``, so a new error class needs no change here.
"""
from __future__ import annotations

from core.support.errors import PerpdeskError


def expected_errors() -> tuple[type[Exception], ...]:
    """The error classes whose message is meant for the trader: core's one base."""
    return (PerpdeskError,)


def describe(exc: BaseException) -> str:
    """One plain line: the error's own ``message`` when it has one, else its text or its type."""
    message = getattr(exc, "message", None)
    return str(message or exc or type(exc).__name__)


def log_line(level: str, text: str, exc: BaseException | None = None) -> None:
    """Write to perpdesk's log file when it is set up (never to the terminal the TUI owns)."""
    from core.support.logs import logging_active

    if not logging_active():
        return
    from loguru import logger

    if exc is not None and not isinstance(exc, expected_errors()):
        logger.opt(exception=exc).log(level, text)
    else:
        logger.log(level, text)
