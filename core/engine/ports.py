"""What the engine needs from the exchange adapter, and the shapes its helpers share.

Kept apart from the engine's logic so the exchange boundary is one small, replaceable module:
the engine depends on this protocol, never on a concrete venue class.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from core.events import (
    AccountSnapshot,
    EngineEvent,
    FundingBill,
    PlaceOrder,
    PositionHistoryRecord,
    PositionPush,
)
from core.model import Fill, Instrument, Origin, PosSide

Subscriber = Callable[[EngineEvent], None]
Key = tuple[str, PosSide]  # (symbol, pos_side): one position life's slot


class VenueLike(Protocol):
    """What the engine needs from ``core.venue.OkxVenue`` (a protocol so tests can read it)."""

    instruments: dict[str, Instrument]
    symbols: tuple[str, ...]

    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def fetch_balance(self) -> AccountSnapshot: ...
    async def fetch_positions(self) -> list[PositionPush]: ...
    async def fetch_fills(self, since: datetime | None) -> list[Fill]: ...
    async def fetch_positions_history(self, since: datetime | None) -> list[PositionHistoryRecord]: ...
    async def fetch_funding_bills(self, since: datetime | None) -> list[FundingBill]: ...
    async def place_order(self, cmd: PlaceOrder, origin: Origin) -> str: ...
    async def cancel_order(self, symbol: str, order_id: str) -> None: ...
    async def close_position(self, symbol: str, pos_side: str = "net",
                             contracts: Decimal | None = None,
                             origin: Origin = Origin.CONSOLE) -> str: ...
    async def run_streams(self, sink: Callable[[object], None],
                          symbols: list[str] | None = None) -> None: ...


def now() -> datetime:
    return datetime.now(UTC)
