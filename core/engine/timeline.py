"""The one time-ordered merge of fills and funding, shared by the resync backfill and the replay.

Why one function: the order decides which position life a funding flow lands on (a bill booked
at the settlement instant belongs to the life open then, before a fill of the same millisecond
closes it), and two copies of that rule drifted before.

Fills of the same instant are put in exchange order: OKX trade ids grow with each execution of
an instrument, so they break the tie numerically (as text "10" would sort before "9").
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from core.model import Fill

B = TypeVar("B")
FillKey = tuple[datetime, int, int, str]


def exchange_order(fill: Fill) -> FillKey:
    """Sort key of a fill in exchange order: fill time, then trade id numerically (an id that is
    not a number, such as a resync's synthetic close, after the numeric ones of its instant)."""
    fid = fill.fill_id
    if fid.isdigit():
        return (fill.ts, 0, int(fid), fid)
    return (fill.ts, 1, 0, fid)


def in_time_order(fills: Iterable[Fill], bills: Iterable[B],
                  bill_ts: Callable[[B], datetime]) -> list[Fill | B]:
    """``fills`` and ``bills`` by time, a bill before a fill of the same instant, fills of one
    instant by trade id; stable otherwise."""
    items: list[tuple[datetime, int, int, Fill | B]] = []
    for f in fills:
        _, text, number, _ = exchange_order(f)
        items.append((f.ts, 1 + text, number, f))
    items += [(bill_ts(b), 0, 0, b) for b in bills]
    items.sort(key=lambda t: (t[0], t[1], t[2]))
    return [item for _, _, _, item in items]
