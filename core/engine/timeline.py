"""The one time-ordered merge of fills and funding, shared by the resync backfill and the replay.

Why one function: the order decides which position life a funding flow lands on (a bill booked
at the settlement instant belongs to the life open then, before a fill of the same millisecond
closes it), and two copies of that rule drifted before.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from core.model import Fill

B = TypeVar("B")


def in_time_order(fills: Iterable[Fill], bills: Iterable[B],
                  bill_ts: Callable[[B], datetime]) -> list[Fill | B]:
    """``fills`` and ``bills`` by time, a bill before a fill of the same instant; stable otherwise."""
    items: list[tuple[datetime, int, Fill | B]] = [(f.ts, 1, f) for f in fills]
    items += [(bill_ts(b), 0, b) for b in bills]
    items.sort(key=lambda t: (t[0], t[1]))
    return [item for _, _, item in items]
