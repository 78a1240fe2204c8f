"""Positions pane: one row per open position life, updated in place as marks move."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from decimal import Decimal
from typing import ClassVar

from console.widgets.fmt import COST_PLACES, MONEY_PLACES, Precision, fmt_num, short_symbol, tone
from console.widgets.table import Cell, Column, LinePane, Row
from core.model import Instrument, PositionSide, PositionSnapshot

PosKey = tuple[str, str]  # (symbol, pos_side)


def upnl_pct(snap: PositionSnapshot) -> Decimal | None:
    """uPnL as a percentage of the initial margin (entry notional / leverage), as OKX shows it;
    of the entry notional when the leverage is unknown (0)."""
    basis = snap.entry_price * snap.coins
    if snap.leverage > 0:
        basis = basis / snap.leverage
    return None if basis == 0 else snap.unrealized_pnl / basis * 100


class PositionsPane(LinePane):
    COLUMNS: ClassVar[tuple[Column, ...]] = (
        Column("Symbol", 10, "left"),
        Column("Side", 5, "left"),
        Column("Contracts", 9, drop=2),
        Column("Coins", 10),
        Column("Entry", 11, drop=3),
        Column("Mark", 11),
        Column("uPnL", 10),
        Column("uPnL%", 8, drop=1),
        Column("Liq", 11, drop=4),
        Column("Funding", 9, drop=5),
    )

    def __init__(self, instruments: Callable[[], Mapping[str, Instrument]], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._instruments = instruments
        self.snapshots: dict[PosKey, PositionSnapshot] = {}
        # per row: (instrument, snapshot, precision, row) it was last formatted from
        self._made: dict[PosKey, tuple[Instrument | None, PositionSnapshot, Precision, Row]] = {}

    def all_keys(self) -> list[Hashable]:
        return list(sorted(self.snapshots))

    @property
    def selected(self) -> PositionSnapshot | None:
        key = self.selected_key
        return self.snapshots.get(key) if isinstance(key, tuple) else None  # type: ignore[arg-type]

    def update(self, snap: PositionSnapshot) -> bool:
        """Store or refresh one position; True when a new row appeared (caller reorders)."""
        key: PosKey = (snap.symbol, snap.pos_side)
        self.snapshots[key] = snap
        if self.row(key) is not None and self.is_offscreen(key):
            self.mark_stale(key)  # formatted when it scrolls into view
            return False
        return self.set_row(key, self._row(snap))

    def fresh_row(self, key: Hashable) -> Row | None:
        snap = self.snapshots.get(key)  # type: ignore[call-overload]
        return self._row(snap) if snap is not None else None

    def remove_position(self, key: PosKey) -> bool:
        self._made.pop(key, None)
        if self.snapshots.pop(key, None) is None:
            return False
        self.remove_row(key)
        return True

    def _row(self, s: PositionSnapshot) -> Row:
        """The row's cells. A push that moved only the mark (and with it the uPnL) formats those
        three cells and keeps the other seven as they were: the mark-price stream is most of
        what reaches this pane, and each cell is a Decimal quantize and a format."""
        key: PosKey = (s.symbol, s.pos_side)
        instrument = self._instruments().get(s.symbol)
        made = self._made.get(key)
        if made is not None and made[0] is instrument and _mark_only(made[1], s):
            old, p, row = made[1], made[2], made[3]
            if old.mark_price != s.mark_price or old.unrealized_pnl != s.unrealized_pnl:
                cells = row.cells
                row = Row(s.symbol, (*cells[:5], *_moving(s, p), *cells[8:]))
        else:
            p = Precision.of(instrument)
            side_tone = "up" if s.side is PositionSide.LONG else "down"
            row = Row(s.symbol, (
                (short_symbol(s.symbol), ""),
                (s.side.value, side_tone),
                (p.ct(s.contracts), ""),
                (p.coin(s.coins), ""),
                (p.px(s.entry_price), ""),
                *_moving(s, p),
                (p.px(s.liq_price), "dim"),
                (fmt_num(s.funding_accrued, COST_PLACES, sign=True), tone(s.funding_accrued)),
            ))
        self._made[key] = (instrument, s, p, row)
        return row


def _moving(s: PositionSnapshot, p: Precision) -> tuple[Cell, Cell, Cell]:
    """Mark, uPnL and uPnL%: the cells a mark move changes."""
    pct = upnl_pct(s)
    pnl_tone = tone(s.unrealized_pnl)
    return ((p.px(s.mark_price), ""),
            (fmt_num(s.unrealized_pnl, MONEY_PLACES, sign=True), pnl_tone),
            ("-" if pct is None else fmt_num(pct, 2, sign=True) + "%", pnl_tone))


def _mark_only(old: PositionSnapshot, new: PositionSnapshot) -> bool:
    """True when every field but the mark and the uPnL is the same (the other cells hold)."""
    return (old.symbol == new.symbol and old.side is new.side and old.contracts == new.contracts
            and old.contract_size == new.contract_size and old.entry_price == new.entry_price
            and old.leverage == new.leverage and old.liq_price == new.liq_price
            and old.funding_accrued == new.funding_accrued)
