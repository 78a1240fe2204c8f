"""The shapes the engine's helpers share.

The exchange protocol the engine depends on is the venue boundary's ``core.venue.base.Venue``,
never a concrete venue class.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.events import EngineEvent
from core.model import PosSide

Subscriber = Callable[[EngineEvent], None]
Key = tuple[str, PosSide]  # (symbol, pos_side): one position life's slot


Clock = Callable[[], datetime]


def now() -> datetime:
    """The engine's default clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ResyncRequest:
    """Queued: run a resync for ``reason`` (after the events queued before it)."""

    reason: str


class ResyncSchedule:
    """When a delayed or retried resync is due (event-loop time): the sink and the coordinator set
    it, the timer queues the resync once it passes, and a resync that runs clears it."""

    def __init__(self) -> None:
        self.due: float | None = None

    def request_in(self, seconds: float) -> None:
        self.due = asyncio.get_running_loop().time() + seconds
