"""Sending a write (place, cancel, amend) to an exchange, whichever the exchange.

A write the exchange refused for its rate limit (OKX 50011, Bybit 10006: ``VenueErrorKind.
RATE_LIMIT``) was not executed, so it is sent again after a short pause; any other failure is the
caller's to judge (an outcome that is unknown is looked up by the order's client id there).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from core.venue.base import VenueError, VenueErrorKind

RATE_LIMIT_RETRY_DELAYS = (0.5, 1.0)  # a write refused for the rate limit was not executed: retry it


async def send_write(call: Callable[[str, Callable[[], Any]], Awaitable[Any]], what: str,
                     send: Callable[[], Any]) -> Any:
    """``call(what, send)``'s reply; re-sent after each of RATE_LIMIT_RETRY_DELAYS while it is
    refused for the rate limit; the last refusal, or any other VenueError, is raised."""
    for attempt in range(len(RATE_LIMIT_RETRY_DELAYS) + 1):
        try:
            return await call(what, send)
        except VenueError as error:
            if error.kind is not VenueErrorKind.RATE_LIMIT or attempt >= len(RATE_LIMIT_RETRY_DELAYS):
                raise
            delay = RATE_LIMIT_RETRY_DELAYS[attempt]
            logger.warning(f"REST RETRY {what}: rate limited, nothing executed; re-sending in {delay:g} s")
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
