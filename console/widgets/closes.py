"""Closes pane: every close, partial or full, as the trades CSV records it."""
from __future__ import annotations

from typing import ClassVar

from console.widgets.fmt import COST_PLACES, MONEY_PLACES, fmt_num, hms, short_symbol, tone
from console.widgets.table import Column, Row
from console.widgets.window import WindowPane
from core.model import CloseResult


class ClosesPane(WindowPane):
    COLUMNS: ClassVar[tuple[Column, ...]] = (
        Column("Time", 8, "left"),
        Column("Symbol", 10, "left"),
        Column("Reason", 8, "left", drop=3),
        Column("Size before>after", 17),
        Column("Gross", 10, drop=2),
        Column("Fee", 9, drop=4),
        Column("Funding", 9, drop=5),
        Column("Net", 10),
    )

    def add(self, closes: list[CloseResult], *, older: bool = False) -> int:
        """Oldest first; ``older`` puts them below the rows shown (journal history)."""
        if older:
            return self.add_older(self._row(c) for c in reversed(closes))
        return self.add_rows(self._row(c) for c in closes)

    def _row(self, c: CloseResult) -> Row:
        p = self.precision(c.symbol)
        return Row(c.symbol, (
            (hms(c.closed_at), "dim"),
            (short_symbol(c.symbol), ""),
            (c.reason.value, "dim"),
            (f"{p.coin(c.size_before)}>{p.coin(c.size_after)}", ""),
            (fmt_num(c.gross_pnl, MONEY_PLACES, sign=True), tone(c.gross_pnl)),
            (fmt_num(c.fee, COST_PLACES), "dim"),
            (fmt_num(c.funding, COST_PLACES, sign=True), tone(c.funding)),
            (fmt_num(c.net_pnl, MONEY_PLACES, sign=True), tone(c.net_pnl)),
        ))
