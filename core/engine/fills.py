"""The fill path: one way a fill enters the ledger, whether streamed, backfilled or replayed.

Data flow for a fill: journal.add_fill (+ FILL log line, from the row's texts) -> ledger.apply_fill -> each
CloseResult goes to the ``CloseConfirmer`` (core/confirm/closes.py), which confirms it against the
exchange's positions-history and hands back the final row -> journal.add_close (+ POSITION
CLOSED log line) -> subscribers. A fill id is applied at most once (``applied``).

The journal replay at start takes the same path with ``replay=True``: the fill is already in the
journal and is old news (no record, no publish), and a close row is only re-submitted when the
journal lacks it (a crash between the fill and its close row).

Fills must be applied per instrument in exchange order (fill time, then trade id): a stop-loss
fill applied after the fills of the next life merges two lives. The venue's push routing, the
resync backfill and the replay each keep that order; ``last`` is the guard behind them. A live
fill older than the last one applied on its instrument is still booked (it happened, and the
contracts must add up), but loudly, and a resync follows that realigns the instrument's lives
with the exchange's positions instead of leaving a merged life in place.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from loguru import logger

from core.accounting.ledger import LedgerPosition
from core.confirm.closes import PendingClose
from core.engine.ports import ResyncRequest
from core.engine.timeline import FillKey, exchange_order
from core.events import Notice, NoticeLevel
from core.journal.schema import CLOSE_LOG_TEXTS, FILL_LOG_TEXTS
from core.model import CloseResult, Fill, OrderUpdate, PositionSide, PosSide
from core.support.logs import log_close, log_fill

if TYPE_CHECKING:
    from core.confirm.closes import CloseConfirmer
    from core.engine.book import Book
    from core.engine.context import EngineContext

MAX_WINDOWS = 5000  # life windows kept for funding attribution (oldest dropped first)


@dataclass(frozen=True, slots=True)
class LifeWindow:
    """When a position life was open: funding bills are attributed by time to the right life."""

    position_id: str
    symbol: str
    pos_side: PosSide
    side: PositionSide
    opened_at: datetime
    closed_at: datetime | None = None

    def covers(self, ts: datetime) -> bool:
        return self.opened_at <= ts and (self.closed_at is None or ts <= self.closed_at)


class FillPath:
    """Fills and order updates into the journal, the ledger and the close confirmer."""

    def __init__(self, ctx: EngineContext, book: Book, confirmer: CloseConfirmer) -> None:
        self._ctx = ctx
        self._book = book
        self._confirmer = confirmer
        self.applied: set[str] = set()
        self.windows: OrderedDict[str, LifeWindow] = OrderedDict()
        self._fill_counts: dict[str, int] = {}
        self.last: dict[str, FillKey] = {}  # per symbol: the newest fill applied, in exchange order

    def on_order(self, update: OrderUpdate) -> None:
        self._ctx.journal.record_order(update)
        self._ctx.publish(update)
        if update.state.value == "rejected":
            self._ctx.notice(NoticeLevel.ERROR, f"order {update.order_id} on {update.symbol} "
                                               f"rejected: {update.message or 'no reason given'}")

    def on_fill(self, fill: Fill, *, replay: bool = False) -> int:
        """Journal, book and close one execution; returns the close rows handed on."""
        if fill.fill_id in self.applied:
            return 0
        if not replay and self._ctx.journal.has_fill(fill.fill_id, fill.ts):
            return 0  # journaled before this run, in a life the replay did not need: booked already
        self.applied.add(fill.fill_id)
        self._check_order(fill, replay)
        if not replay:
            row = self._ctx.journal.add_fill(fill, asked=True)  # has_fill asked just above
            if row is not None:
                log_fill(fill, FILL_LOG_TEXTS(row.values))
            self._ctx.publish(fill)
        before = self._ctx.ledger.position(fill.symbol, fill.pos_side)
        try:
            closes = self._ctx.ledger.apply_fill(fill)
        except ValueError as exc:
            if replay:
                logger.warning(f"journal replay: fill {fill.fill_id} skipped ({exc})")
            else:
                self._ctx.notice(NoticeLevel.WARNING, f"fill {fill.fill_id} does not fit the ledger "
                                                     f"({exc}); resyncing positions from the exchange")
                self._ctx.enqueue(ResyncRequest("fill did not fit the ledger"))
            return 0
        return self.after_fill(fill, before, closes, replay=replay)

    def _check_order(self, fill: Fill, replay: bool) -> None:
        """Track the newest fill per symbol; an older one arriving live is out of order."""
        key = exchange_order(fill)
        last = self.last.get(fill.symbol)
        if last is None or key >= last:
            self.last[fill.symbol] = key
            return
        if replay:
            return
        self._ctx.notice(NoticeLevel.WARNING,
                        f"fill {fill.fill_id} on {fill.symbol} at {fill.ts.isoformat()} arrived after "
                        f"a later fill ({last[3]} at {last[0].isoformat()}); resyncing its positions "
                        "from the exchange")
        self._ctx.enqueue(ResyncRequest(f"fill {fill.fill_id} out of order"))

    def after_fill(self, fill: Fill, before: LedgerPosition | None, closes: list[CloseResult],
                   *, replay: bool = False) -> int:
        """Life windows, fill counts and close rows after the ledger applied ``fill``."""
        key = (fill.symbol, fill.pos_side)
        after = self._ctx.ledger.position(*key)
        if before is not None:
            self._count_fill(before.position_id)
        submitted = 0
        for close in closes:
            window = self.windows.get(close.position_id)
            if close.is_full and window is not None:
                self.windows[close.position_id] = dataclasses.replace(window, closed_at=fill.ts)
            if replay and self._ctx.journal.has_close(close.close_key):
                continue  # replayed: its row is on disk already
            self._submit_close(close, fill.pos_side)
            submitted += 1
        if after is not None:
            if after.position_id not in self.windows:
                self.add_window(after)
            if before is None or before.position_id != after.position_id:
                self._count_fill(after.position_id)
        if not replay:  # at start the resync's alignment publishes every life once
            self._book.fill_moved(key)
        return submitted

    def _count_fill(self, position_id: str) -> None:
        self._fill_counts[position_id] = self._fill_counts.get(position_id, 0) + 1

    def _submit_close(self, close: CloseResult, pos_side: PosSide) -> None:
        pid = close.position_id
        counts = self._fill_counts
        seen = counts.get(pid, 0)
        self._confirmer.submit(PendingClose(
            close, pos_side, later_fills=lambda: counts.get(pid, 0) > seen))

    def add_window(self, pos: LedgerPosition) -> None:
        self.windows[pos.position_id] = LifeWindow(pos.position_id, pos.symbol, pos.pos_side,
                                                   pos.side, pos.opened_at)
        while len(self.windows) > MAX_WINDOWS:
            old, _ = self.windows.popitem(last=False)
            self._fill_counts.pop(old, None)

    def emit_close(self, close: CloseResult) -> None:
        """A final close row from the confirmer: journal it once, log it, publish it."""
        try:
            row = self._ctx.journal.add_close(close)
            if row is not None:
                log_close(close, CLOSE_LOG_TEXTS(row.values))
                self._ctx.publish(close)
        except Exception as exc:  # noqa: BLE001
            logger.exception("journal refused a close row")
            self._ctx.publish(Notice(NoticeLevel.ERROR, f"journal error on a close row: {exc}",
                                    self._ctx.clock()))
