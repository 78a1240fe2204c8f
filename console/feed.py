"""The buffer between the engine's event callback and the screen.

Why a buffer and not one Textual Message per event: a message per tick measured ~110 ms p95 key
latency under a live feed (issue 5). The engine calls ``FeedBuffer.push`` synchronously; it only
stores the event (last write wins per key for states, a bounded deque for append-only facts), so it
is O(1) and never touches a widget. The app drains it on a timer (``[ui] refresh_hz``) and renders
only what changed since the previous drain.

Restarts: events published before the console subscribed are gone, so the app asks the engine for
today's journal (``Engine.today_history``) in a worker and hands it to ``seed``. Until then the
buffer remembers the ids of the fills, closes and funding bills it saw live, and ``seed`` skips
those, so a row both published live and already on disk is counted once.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol

from core.events import AccountSnapshot, MarkPrice, Notice, PositionGone, StreamStatus
from core.model import CloseResult, Fill, FundingPayment, OrderState, OrderUpdate, PositionSnapshot
from core.money import ZERO

DEFAULT_WINDOW = 500  # rows kept by the fills / closes / funding panes (the CSV keeps everything)
OPEN_STATES = (OrderState.PLACED, OrderState.PARTIALLY_FILLED)



class JournalCloseLike(Protocol):
    """core.journal.history.JournalClose: a journaled close with the key it was written under."""

    close_id: str
    close: CloseResult


class HistoryLike(Protocol):
    """core.journal.history.DayHistory (duck-typed: the console reads, never parses)."""

    fills: list[Fill]
    closes: list[JournalCloseLike]
    funding: list[FundingPayment]


StateKey = tuple[str, Hashable]  # ("pos", (symbol, pos_side)) | ("mark", symbol) | ("account", "")
#                                  | ("status", stream) | ("order", order_id)


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
    if isinstance(event, OrderUpdate):
        return ("order", event.order_id)
    return None


@dataclass(slots=True)
class Batch:
    """Everything that arrived since the previous drain, oldest first within each list."""

    states: dict[StateKey, object] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    closes: list[CloseResult] = field(default_factory=list)
    funding: list[FundingPayment] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.states or self.fills or self.closes or self.funding or self.notices)


@dataclass(slots=True)
class DayTotals:
    """One UTC day's realized net PnL, fees paid and funding received (header).

    Summed at push time from every event, not from the bounded windows, so a burst larger than
    the window between two drains still counts in full.
    """

    realized: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO


class FeedBuffer:
    """Last-write-wins states plus bounded append-only windows; see the module docstring."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self.window = window
        self._states: dict[StateKey, object] = {}
        self._fills: deque[Fill] = deque(maxlen=window)
        self._closes: deque[CloseResult] = deque(maxlen=window)
        self._funding: deque[FundingPayment] = deque(maxlen=window)
        self._notices: deque[Notice] = deque(maxlen=20)  # a storm of notices shows the latest
        self.received = 0  # events pushed since start (tests, diagnostics)
        self.totals: dict[date, DayTotals] = {}
        # ids of live fills / closes / bills, kept only until the journal history is seeded
        self._live_ids: set[str] | None = set()

    def day(self, day: date) -> DayTotals:
        """Totals of one UTC day (zeros when nothing happened that day)."""
        return self.totals.get(day) or DayTotals()

    def _totals(self, day: date) -> DayTotals:
        got = self.totals.get(day)
        if got is None:
            got = self.totals[day] = DayTotals()
        return got

    def push(self, event: object) -> None:
        """The engine subscriber: classify and store, nothing else (runs inside the engine)."""
        self.received += 1
        key = state_key(event)
        if key is not None:
            self._states[key] = event
        elif isinstance(event, Fill):
            self._fills.append(event)
            self._count(event.ts.date(), "f|" + event.fill_id).fees += event.fee
        elif isinstance(event, CloseResult):
            self._closes.append(event)
            self._count(event.closed_at.date(), "c|" + event.close_key).realized += event.net_pnl
        elif isinstance(event, FundingPayment):
            self._funding.append(event)
            self._count(event.ts.date(), "b|" + event.bill_id).funding += event.amount
        elif isinstance(event, Notice):
            self._notices.append(event)

    def _count(self, day: date, live_id: str) -> DayTotals:
        """The totals of ``day``, remembering ``live_id`` until the journal is seeded."""
        if self._live_ids is not None:
            self._live_ids.add(live_id)
        return self._totals(day)

    def pending_positions(self) -> dict[tuple[str, str], PositionSnapshot | PositionGone]:
        """Position states received and not drained yet, by (symbol, pos_side): what a dialog
        open over the panes (which do not flush under a modal) must compare itself with."""
        return {(event.symbol, event.pos_side): event for event in self._states.values()
                if isinstance(event, (PositionSnapshot, PositionGone))}

    @property
    def seeded(self) -> bool:
        return self._live_ids is None

    def seed(self, history: HistoryLike) -> Batch:
        """Count the journal's rows of the day that were not received live, once; returns them
        (oldest first) for the panes, which put them below the live rows. Later calls do nothing:
        once seeded, every live event is newer than what the journal held at the read."""
        seen = self._live_ids
        if seen is None:
            return Batch()
        self._live_ids = None
        batch = Batch()
        for fill in history.fills:
            if "f|" + fill.fill_id not in seen:
                seen.add("f|" + fill.fill_id)
                batch.fills.append(fill)
                self._totals(fill.ts.date()).fees += fill.fee
        for journaled in history.closes:
            if "c|" + journaled.close_id not in seen:
                seen.add("c|" + journaled.close_id)
                batch.closes.append(journaled.close)
                self._totals(journaled.close.closed_at.date()).realized += journaled.close.net_pnl
        for payment in history.funding:
            if "b|" + payment.bill_id not in seen:
                seen.add("b|" + payment.bill_id)
                batch.funding.append(payment)
                self._totals(payment.ts.date()).funding += payment.amount
        return batch

    def pending(self) -> bool:
        return bool(self._states or self._fills or self._closes or self._funding or self._notices)

    def drain(self) -> Batch:
        """Hand over everything buffered and start empty (called on the UI timer)."""
        batch = Batch(self._states, list(self._fills), list(self._closes), list(self._funding),
                      list(self._notices))
        self._states = {}
        self._fills.clear()
        self._closes.clear()
        self._funding.clear()
        self._notices.clear()
        return batch
