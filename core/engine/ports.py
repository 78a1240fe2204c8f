"""The shapes the engine's helpers share.

The exchange protocol the engine depends on is the venue boundary's ``core.venue.base.Venue``,
never a concrete venue class.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from core.events import EngineEvent
from core.model import PosSide

Subscriber = Callable[[EngineEvent], None]
Key = tuple[str, PosSide]  # (symbol, pos_side): one position life's slot


def now() -> datetime:
    return datetime.now(UTC)
