"""The book: marks, the exchange's position pushes, and revaluing/publishing position lives.

Why batched: a socket read can hold dozens of pushes; the positions pane and the positions_open
rows only need the state after them, and revaluing per push was a large share of the stream
pipeline's cost (bench/stream.py). So marks and fills only mark lives as changed, and one call per
event-loop pass publishes them.
"""
from __future__ import annotations

import asyncio
from decimal import Context, Decimal, localcontext
from typing import TYPE_CHECKING

from loguru import logger

from core.accounting.ledger import LedgerPosition
from core.engine.ports import Key
from core.events import PositionGone, PositionPush
from core.model import MarginMode, PositionSnapshot, PosSide
from core.money import ZERO
from core.venue.pass_end import at_pass_end

if TYPE_CHECKING:
    from core.engine.context import EngineContext

MISMATCH_GRACE_S = 2.0  # a position push that disagrees with the ledger, re-checked after this
_POS_SIDES = tuple(PosSide)  # iterating the enum itself costs more than the rest of a pass's look-ups


class Book:
    """Latest marks and position pushes; turns ledger lives into published snapshots."""

    def __init__(self, ctx: EngineContext) -> None:
        self._ctx = ctx
        self.marks: dict[str, Decimal] = {}
        self.pushes: dict[Key, PositionPush] = {}
        self.mismatch_due: dict[Key, float] = {}  # loop time a disagreeing push is re-checked at
        self._marked: set[str] = set()  # symbols whose mark moved, revalued once per loop pass
        self._changed: set[Key] = set()  # lives a fill moved, published once per loop pass
        self._revalue_scheduled = False
        self._shown: dict[Key, str] = {}

    # ---- valuation ----------------------------------------------------------------------

    def mark_for(self, symbol: str, pos: LedgerPosition | None = None) -> Decimal:
        """The stream's mark, else a push's, else the life's entry (0 when nothing is known)."""
        mark = self.marks.get(symbol)
        if mark is not None:
            return mark
        for key, push in self.pushes.items():
            if key[0] == symbol and push.mark_price is not None:
                return push.mark_price
        return pos.entry_price if pos is not None else ZERO

    def snapshot(self, key: Key) -> PositionSnapshot | None:
        ledger = self._ctx.ledger
        mark = self.marks.get(key[0])
        if mark is None:
            if not ledger.holds(*key):
                return None
            mark = self.mark_for(key[0], ledger.position(*key))
        push = self.pushes.get(key)
        if push is None:  # ledger.snapshot answers None itself for a life not open
            return ledger.snapshot(key[0], key[1], mark, self._ctx.clock(), ZERO, MarginMode.CROSS, None)
        return ledger.snapshot(
            key[0], key[1], mark, self._ctx.clock(),
            push.leverage if push.leverage is not None else ZERO,
            MarginMode.of(push.margin_mode), push.liq_price)

    def positions(self) -> list[PositionSnapshot]:
        out = []
        for pos in self._ctx.ledger.positions():
            snap = self.snapshot((pos.symbol, pos.pos_side))
            if snap is not None:
                out.append(snap)
        return out

    def estimate_close_pnl(self, symbol: str, pos_side: PosSide, contracts: Decimal) -> Decimal:
        pos = self._ctx.ledger.position(symbol, pos_side)
        if pos is None or pos.contracts == 0:
            return ZERO
        part = min(abs(contracts), pos.contracts)
        mark = self.mark_for(symbol, pos)
        with localcontext(Context(prec=60)):
            return pos.unrealized(mark) * part / pos.contracts

    def open_contracts(self, symbol: str, pos_side: PosSide) -> Decimal:
        """Contracts open at (symbol, pos_side): the ledger's, else the exchange's last push."""
        pos = self._ctx.ledger.position(symbol, pos_side)
        if pos is not None:
            return pos.contracts
        push = self.pushes.get((symbol, pos_side))
        return abs(push.contracts) if push is not None else ZERO

    # ---- publishing ---------------------------------------------------------------------

    def record_position(self, snap: PositionSnapshot) -> None:
        try:
            self._ctx.journal.record_position(snap)
        except Exception as exc:  # noqa: BLE001
            logger.error(f"journal refused a position snapshot: {exc}")

    def position_changed(self, key: Key, *, record: bool = True) -> None:
        """Publish (and journal on change) the life at ``key``, or PositionGone when it went flat."""
        snap = self.snapshot(key)
        shown = self._shown.get(key)
        if shown is not None and (snap is None or snap.position_id != shown):
            self._ctx.publish(PositionGone(key[0], key[1], shown))
            del self._shown[key]
        if snap is None:
            return
        self._shown[key] = snap.position_id
        if record:
            self.record_position(snap)
        self._ctx.publish(snap)

    def fill_moved(self, key: Key) -> None:
        """A fill changed the life at ``key``: journaled and published with this pass's changes."""
        self._changed.add(key)
        self.revalue_soon(key[0])

    def on_mark(self, symbol: str, price: Decimal) -> None:
        """A mark push. Hot path: a burst of ticks read from the socket in one go revalues each
        symbol's lives once, after the burst (last write wins), not once per tick; a tick that
        repeats the mark, or of an instrument no life is open on, revalues nothing."""
        marks = self.marks
        if marks.get(symbol) == price:
            return
        marks[symbol] = price
        if self._ctx.ledger.holds_symbol(symbol):
            self.revalue_soon(symbol)

    def revalue_soon(self, symbol: str) -> None:
        self._marked.add(symbol)
        if not self._revalue_scheduled:
            self._revalue_scheduled = True
            at_pass_end(self._revalue_marked)

    def _revalue_marked(self) -> None:
        """Publish (and for fills, journal) the lives that changed since the last call."""
        self._revalue_scheduled = False
        marked, self._marked = self._marked, set()
        changed, self._changed = self._changed, set()
        for key in changed:  # fills moved these lives: journal a row, publish (or PositionGone)
            self.position_changed(key)
        holds = self._ctx.ledger.holds
        for symbol in marked:  # marks moved these: publish their new valuation, no row
            for pos_side in _POS_SIDES:
                if holds(symbol, pos_side) and (symbol, pos_side) not in changed:
                    self.position_changed((symbol, pos_side), record=False)

    # ---- the exchange's view ------------------------------------------------------------

    def on_position_push(self, push: PositionPush) -> None:
        key = (push.symbol, push.pos_side)
        self.pushes[key] = push
        if push.mark_price is not None and push.symbol not in self.marks:
            self.marks[push.symbol] = push.mark_price
        # Only the push's leverage / liq price can have changed (the ledger moves on fills, which
        # publish their own change): revalue with the next mark batch rather than per push.
        self.revalue_soon(push.symbol)
        if self.disagrees(key):
            loop = asyncio.get_running_loop()
            self.mismatch_due.setdefault(key, loop.time() + MISMATCH_GRACE_S)
        else:
            self.mismatch_due.pop(key, None)

    def disagrees(self, key: Key) -> bool:
        push = self.pushes.get(key)
        exch = push.contracts if push is not None else ZERO
        return exch != self._ctx.ledger.signed_contracts(*key)

    def due_mismatches(self, loop_now: float) -> list[Key]:
        """Lives whose disagreeing push is past its grace and still disagrees (resync them)."""
        out = []
        for key, due in list(self.mismatch_due.items()):
            if loop_now >= due:
                del self.mismatch_due[key]
                if self.disagrees(key):
                    out.append(key)
        return out
