"""Fills pane: the latest executions, newest on top, over a bounded window."""
from __future__ import annotations

from typing import ClassVar

from console.widgets.fmt import COST_PLACES, fmt_num, hms, short_symbol
from console.widgets.table import Column, Row
from console.widgets.window import WindowPane
from core.model import Fill


class FillsPane(WindowPane):
    COLUMNS: ClassVar[tuple[Column, ...]] = (
        Column("Time", 8, "left"),
        Column("Symbol", 10, "left"),
        Column("Side", 4, "left"),
        Column("Contracts", 9, drop=2),
        Column("Coins", 10),
        Column("Price", 11),
        Column("Fee", 9, drop=1),
        Column("Origin", 8, "left", drop=3),
    )

    def add(self, fills: list[Fill], *, older: bool = False) -> int:
        """Oldest first; ``older`` puts them below the rows shown (journal history)."""
        if older:
            return self.add_older(self._row(f) for f in reversed(fills))
        return self.add_rows(self._row(f) for f in fills)

    def _row(self, f: Fill) -> Row:
        p = self.precision(f.symbol)
        return Row(f.symbol, (
            (hms(f.ts), "dim"),
            (short_symbol(f.symbol), ""),
            (f.side.value, "up" if f.side.value == "buy" else "down"),
            (p.ct(f.contracts), ""),
            (p.coin(f.coins), ""),
            (p.px(f.price), ""),
            (fmt_num(f.fee, COST_PLACES), "dim"),
            (f.origin.value, "dim"),
        ))
