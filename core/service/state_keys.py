"""The last-write-wins rule of state events: which events replace an older one of the same key.

A state event (a position, a mark, the account, a stream's status, the risk status, a swap's
funding rate, an order's latest state) says what something is now, so a newer one makes the older
one worthless; whoever queues events for a slower reader (the service's per-console queue, the
console's feed buffer) keeps only the latest per key. Every other event (fills, closes, funding
payments, notices, risk events) is an append-only fact: ``state_key`` returns None and it is kept
in order, never dropped. The rule lives here once so the engine's server and the console's buffer
cannot disagree about what may be coalesced.
"""
from __future__ import annotations

from collections.abc import Hashable

from core.events import (
    AccountSnapshot,
    FundingRate,
    MarkPrice,
    PositionGone,
    RiskStatus,
    StreamStatus,
)
from core.model import OrderUpdate, PositionSnapshot

StateKey = tuple[str, Hashable]
"""("pos", (symbol, pos_side)) | ("mark", symbol) | ("account", "") | ("status", stream)
| ("risk", "") | ("rate", symbol) | ("order", order_id)"""


def state_key(event: object) -> StateKey | None:
    """The last-write-wins key of a state event; None for append-only facts and notices."""
    if isinstance(event, (PositionSnapshot, PositionGone)):
        return ("pos", (event.symbol, event.pos_side))
    if isinstance(event, MarkPrice):
        return ("mark", event.symbol)
    if isinstance(event, AccountSnapshot):
        return ("account", "")
    if isinstance(event, StreamStatus):
        return ("status", event.stream)
    if isinstance(event, RiskStatus):
        return ("risk", "")
    if isinstance(event, FundingRate):
        return ("rate", event.symbol)
    if isinstance(event, OrderUpdate):
        return ("order", event.order_id)
    return None
