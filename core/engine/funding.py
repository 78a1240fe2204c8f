"""Funding: settlement times, funding bills, and attributing each bill to the life it paid.

The venue signals a settlement (balance_and_position funding_fee) or a settlement time passes;
the engine fetches the funding bills (type 8), records each bill once (keyed by bill id) and
attributes it to the position life open at the bill's time.

Why a sync also backfills the bills' instruments' fills: the life open at a bill's time is only
known once every fill before the bill is applied, and a live fill can still be on its way (a
stop-loss waiting for its algo look-up, pushes piled up behind a stalled event loop). So new
bills are applied merged in time order with the fills-history since the last fill applied on
their instrument; the live copies of those fills, when they arrive, are already applied.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import TYPE_CHECKING

from loguru import logger

from core.engine.fills import LifeWindow
from core.engine.timeline import in_time_order
from core.events import FundingBill
from core.model import Fill, FundingPayment, PositionSide
from core.money import ZERO, plain
from core.support.logs import log_funding

if TYPE_CHECKING:
    from core.engine.book import Book
    from core.engine.context import EngineContext
    from core.engine.fills import FillPath

BACKFILL_SLACK = timedelta(seconds=2)  # fills-history overlap behind the journal's last fill
FUNDING_SLACK = timedelta(seconds=120)  # bills overlap behind the previous funding sync
FUNDING_GRACE = timedelta(seconds=3.0)  # bills are fetched this long after a settlement time passes
FILLS_LOOKBACK = timedelta(days=1)  # a bill's fills backfill reaches this far back at most
RATE_QUANTUM = Decimal("1e-12")


class Funding:
    """Funding bills in, FundingPayment rows out; knows when the next settlement is due."""

    def __init__(self, ctx: EngineContext, fills: FillPath, book: Book) -> None:
        self._ctx = ctx
        self._fills = fills
        self._book = book
        self.bills_seen: set[str] = set()
        self.next_funding: dict[str, datetime] = {}
        self.synced_at: datetime | None = None
        self._done: dict[str, datetime] = {}  # settlement time already handled, per symbol

    def since(self, floor: datetime | None = None) -> datetime:
        """Where a bills fetch starts: the last funding sync, else the oldest open life or fill."""
        if self.synced_at is not None:
            start = self.synced_at - FUNDING_SLACK
        else:
            opens = [p.opened_at for p in self._ctx.ledger.positions()]
            last = self._ctx.journal.last_fill_time()
            start = min(opens + ([last] if last else []) + [self._ctx.clock()]) - BACKFILL_SLACK
        return min(start, floor) if floor is not None else start

    async def sync(self) -> None:
        started = self._ctx.clock()
        e = self._ctx
        bills = await e.venue.fetch_funding_bills(self.since())
        new = [b for b in bills if b.bill_id not in self.bills_seen and not e.journal.has_bill(b.bill_id)]
        if new:
            symbols = {b.symbol for b in new}
            fills = await e.venue.fetch_fills(self._fills_since(new))
            self.apply_merged([f for f in fills if f.symbol in symbols], new)
        self.synced_at = started

    def apply_merged(self, fills: list[Fill], bills: list[FundingBill]) -> tuple[int, int]:
        """Apply backfilled fills and bills in time order (a bill before a fill of the same ms)."""
        new_fills = [f for f in fills if f.fill_id not in self._fills.applied
                     and not self._ctx.journal.has_fill(f.fill_id)]
        new_bills = [b for b in bills if b.bill_id not in self.bills_seen
                     and not self._ctx.journal.has_bill(b.bill_id)]
        for item in in_time_order(new_fills, new_bills, lambda b: b.ts):
            if isinstance(item, Fill):
                self._fills.on_fill(item)
            else:
                self.on_bill(item)
        return len(new_fills), len(new_bills)

    def _fills_since(self, bills: list[FundingBill]) -> datetime:
        """Where the fills before ``bills`` start: the last fill applied on their instruments."""
        starts = []
        for bill in bills:
            last = self._fills.last.get(bill.symbol)
            start = last[0] if last is not None else (self._ctx.journal.last_fill_time() or bill.ts)
            starts.append(max(min(start, bill.ts), bill.ts - FILLS_LOOKBACK))
        return min(starts) - BACKFILL_SLACK

    def due(self, wall: datetime) -> list[str]:
        """Symbols whose settlement passed (plus grace), not yet synced, with a life open."""
        out = []
        for symbol, when in list(self.next_funding.items()):
            if wall >= when + FUNDING_GRACE and self._done.get(symbol) != when:
                self._done[symbol] = when
                if (self.synced_at is None or self.synced_at < when) and \
                        any(p.symbol == symbol for p in self._ctx.ledger.positions()):
                    out.append(symbol)
        return out

    def replay_row(self, bill_id: str, position_id: str, amount: Decimal) -> None:
        """A funding row from the journal at start: book it on its life if that life is open."""
        self.bills_seen.add(bill_id)
        window = self._fills.windows.get(position_id)
        if window is not None:
            live = self._ctx.ledger.position(window.symbol, window.pos_side)
            if live is not None and live.position_id == position_id:
                self._ctx.ledger.apply_funding(window.symbol, window.pos_side, amount)

    def on_bill(self, bill: FundingBill) -> None:
        """Record one funding bill once, attributed to the life open when it was booked."""
        if bill.bill_id in self.bills_seen or self._ctx.journal.has_bill(bill.bill_id):
            self.bills_seen.add(bill.bill_id)
            return
        self.bills_seen.add(bill.bill_id)
        inst = self._ctx.venue.instruments.get(bill.symbol)
        contract_size = inst.contract_size if inst is not None else Decimal(1)
        window = self._window_for(bill, contract_size)
        position_id = ""
        side = PositionSide.LONG
        if window is not None:
            position_id, side = window.position_id, window.side
            live = self._ctx.ledger.position(window.symbol, window.pos_side)
            if live is not None and live.position_id == window.position_id:
                self._ctx.ledger.apply_funding(window.symbol, window.pos_side, bill.amount)
                self._book.position_changed((window.symbol, window.pos_side), record=False)
        else:
            logger.warning(f"funding bill {bill.bill_id} {bill.symbol} {plain(bill.amount)} at "
                           f"{bill.ts.isoformat()} matches no known position life")
        coins = bill.position_contracts * contract_size
        payment = FundingPayment(
            bill_id=bill.bill_id, symbol=bill.symbol, position_id=position_id,
            rate=bill.rate if bill.rate is not None else self._rate_of(bill, coins, side),
            position_contracts=bill.position_contracts, position_coins=coins,
            mark_price=bill.mark_price, amount=bill.amount, ccy=bill.ccy, ts=bill.ts)
        if self._ctx.journal.record_funding(payment):
            log_funding(payment)
            self._ctx.publish(payment)

    def _window_for(self, bill: FundingBill, contract_size: Decimal) -> LifeWindow | None:
        """The life of ``bill.symbol`` open at the bill's time; the one of matching size wins."""
        ledger = self._ctx.ledger
        found = [w for w in reversed(self._fills.windows.values())
                 if w.symbol == bill.symbol and w.covers(bill.ts)]
        if len(found) > 1:
            sized = [w for w in found if (p := ledger.position(w.symbol, w.pos_side))
                     is not None and p.position_id == w.position_id
                     and p.contracts == bill.position_contracts]
            if sized:
                return sized[0]
            paying = [w for w in found if (bill.amount < 0) == (w.side is PositionSide.LONG)]
            found = paying or found
        return found[0] if found else None

    @staticmethod
    def _rate_of(bill: FundingBill, coins: Decimal, side: PositionSide) -> Decimal:
        """OKX bills carry no rate: amount = -direction x coins x mark x rate, solved for rate."""
        base = coins * bill.mark_price * side.sign
        if base == 0:
            return ZERO
        with localcontext(Context(prec=40)):
            return (-bill.amount / base).quantize(RATE_QUANTUM, ROUND_HALF_EVEN).normalize()
