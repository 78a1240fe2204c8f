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

Which append-only kinds it keeps is not written here: each ``Rows`` below says how one kind is
recognised, de-duplicated and counted, and console/panes.py hands the kinds of its panes to the
buffer, so a new pane of a new kind of event is one registry entry there.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from core.events import (
    Notice,
    PositionGone,
    RiskEvent,
)
from core.model import CloseResult, Fill, FundingPayment, OrderState, PositionSnapshot
from core.money import ZERO
from core.service.state_keys import StateKey, state_key

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


@dataclass(slots=True)
class DayTotals:
    """One UTC day's realized net PnL, fees paid and funding received (header).

    Summed at push time from every event, not from the bounded windows, so a burst larger than
    the window between two drains still counts in full.
    """

    realized: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO


def _same(item: Any) -> Any:
    return item


@dataclass(frozen=True, slots=True)
class Rows:
    """One append-only kind of event the buffer keeps for a pane.

    ``name`` is the list it arrives in (Batch, and the journal's DayHistory); ``live_id`` /
    ``journal_id`` key the same row live and on disk (seed de-duplication); ``count`` adds it to
    its day's totals; ``journal_event`` turns a journal item into the event the pane shows."""

    name: str
    event: type
    live_id: Callable[[Any], str]
    day: Callable[[Any], date]
    count: Callable[[DayTotals, Any], None]
    journal_id: Callable[[Any], str] | None = None  # default: live_id
    journal_event: Callable[[Any], Any] = _same


def _add_fee(totals: DayTotals, fill: Fill) -> None:
    totals.fees += fill.fee


def _add_realized(totals: DayTotals, close: CloseResult) -> None:
    totals.realized += close.net_pnl


def _add_funding(totals: DayTotals, payment: FundingPayment) -> None:
    totals.funding += payment.amount


FILLS = Rows("fills", Fill, lambda f: "f|" + f.fill_id, lambda f: f.ts.date(), _add_fee)
CLOSES = Rows("closes", CloseResult, lambda c: "c|" + c.close_key, lambda c: c.closed_at.date(),
              _add_realized, journal_id=lambda j: "c|" + j.close_id,
              journal_event=lambda j: j.close)
FUNDING = Rows("funding", FundingPayment, lambda b: "b|" + b.bill_id, lambda b: b.ts.date(),
               _add_funding)
DEFAULT_ROWS = (FILLS, CLOSES, FUNDING)


@dataclass(slots=True)
class Batch:
    """Everything that arrived since the previous drain, oldest first within each list."""

    states: dict[StateKey, object] = field(default_factory=dict)
    rows: dict[str, list[Any]] = field(default_factory=dict)  # Rows.name -> new events
    notices: list[Notice] = field(default_factory=list)

    @property
    def fills(self) -> list[Fill]:
        return self.rows.get("fills", [])

    @property
    def closes(self) -> list[CloseResult]:
        return self.rows.get("closes", [])

    @property
    def funding(self) -> list[FundingPayment]:
        return self.rows.get("funding", [])

    def __bool__(self) -> bool:
        return bool(self.states or any(self.rows.values()) or self.notices)


class FeedBuffer:
    """Last-write-wins states plus bounded append-only windows; see the module docstring."""

    def __init__(self, window: int = DEFAULT_WINDOW, kinds: Sequence[Rows] = DEFAULT_ROWS) -> None:
        self.window = window
        self.kinds = tuple(kinds)
        self._states: dict[StateKey, object] = {}
        self._windows: dict[str, deque[Any]] = {k.name: deque(maxlen=window) for k in self.kinds}
        self._notices: deque[Notice] = deque(maxlen=20)  # a storm of notices shows the latest
        # risk events wait apart: a halt must ring even while a dialog holds the panes' drain
        self._risk_events: deque[RiskEvent] = deque(maxlen=50)
        self.received = 0  # events pushed since start (tests, diagnostics)
        self.totals: dict[date, DayTotals] = {}
        # ids of live fills / closes / bills, kept only until the journal history is seeded
        self._live_ids: set[str] | None = set()
        # Set by the app: called by the first push after ``sleep()``, so the drawing timer runs
        # only while there is something to draw (an idle console costs no CPU).
        self.wake: Callable[[], None] | None = None
        self._asleep = False

    def sleep(self) -> None:
        """The app stopped draining: the next push calls ``wake`` (once)."""
        self._asleep = True

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
        if self._asleep:
            self._asleep = False
            if self.wake is not None:
                self.wake()
        key = state_key(event)
        if key is not None:
            self._states[key] = event
            return
        for kind in self.kinds:
            if isinstance(event, kind.event):
                self._windows[kind.name].append(event)
                kind.count(self._totals(kind.day(event)), event)
                if self._live_ids is not None:
                    self._live_ids.add(kind.live_id(event))
                return
        if isinstance(event, Notice):
            self._notices.append(event)
        elif isinstance(event, RiskEvent):
            self._risk_events.append(event)

    def take_risk_events(self) -> list[RiskEvent]:
        """Risk events received since the last call, oldest first (the app takes them on every
        tick, dialog or not: a halt rings the bell at once)."""
        out = list(self._risk_events)
        self._risk_events.clear()
        return out

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
        for kind in self.kinds:
            items: Iterable[Any] = getattr(history, kind.name, ())
            batch.rows[kind.name] = self._unseen(kind, items, seen)
        return batch

    def _unseen(self, kind: Rows, items: Iterable[Any], seen: set[str]) -> list[Any]:
        """The journal items of one kind not received live, counted into the day totals."""
        key = kind.journal_id or kind.live_id
        out = []
        for item in items:
            row_id = key(item)
            if row_id not in seen:
                seen.add(row_id)
                event = kind.journal_event(item)
                out.append(event)
                kind.count(self._totals(kind.day(event)), event)
        return out

    def pending(self) -> bool:
        return bool(self._states or any(self._windows.values()) or self._notices
                    or self._risk_events)

    def drain(self) -> Batch:
        """Hand over everything buffered and start empty (called on the UI timer)."""
        batch = Batch(self._states, {name: list(w) for name, w in self._windows.items()},
                      list(self._notices))
        self._states = {}
        for window in self._windows.values():
            window.clear()
        self._notices.clear()
        return batch
