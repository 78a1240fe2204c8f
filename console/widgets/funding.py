"""Funding pane: each settlement on each position (+ received, - paid)."""
from __future__ import annotations

from typing import ClassVar

from console.widgets.fmt import COST_PLACES, fmt_num, hms, short_symbol, tone
from console.widgets.table import Column, Row
from console.widgets.window import WindowPane
from core.model import FundingPayment


class FundingPane(WindowPane):
    COLUMNS: ClassVar[tuple[Column, ...]] = (
        Column("Time", 8, "left"),
        Column("Symbol", 10, "left"),
        Column("Rate", 9),
        Column("Contracts", 9, drop=2),
        Column("Coins", 10, drop=3),
        Column("Mark", 11, drop=1),
        Column("Amount", 10),
    )

    def add(self, payments: list[FundingPayment], *, older: bool = False) -> int:
        """Oldest first; ``older`` puts them below the rows shown (journal history)."""
        if older:
            return self.add_older(self._row(f) for f in reversed(payments))
        return self.add_rows(self._row(f) for f in payments)

    def _row(self, f: FundingPayment) -> Row:
        p = self.precision(f.symbol)
        return Row(f.symbol, (
            (hms(f.ts), "dim"),
            (short_symbol(f.symbol), ""),
            (fmt_num(f.rate * 100, 4, sign=True) + "%", "dim"),
            (p.ct(f.position_contracts), ""),
            (p.coin(f.position_coins), ""),
            (p.px(f.mark_price), ""),
            (fmt_num(f.amount, COST_PLACES, sign=True), tone(f.amount)),
        ))
