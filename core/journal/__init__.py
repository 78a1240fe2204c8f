"""The CSV journal: fills, order events, closes, funding and open-position snapshots.

The names below are imported on first use (PEP 562): `perpdesk report` reads only the index
(``core.journal.index``), and importing this package must not drag in the reader and the writer.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.journal.errors import JournalError
from core.journal.schema import COLUMNS, FAMILIES, FUNDING, ORDERS, POSITIONS_OPEN, TRADES

if TYPE_CHECKING:
    from core.journal.reader import (
        read_fills,
        read_funding,
        read_orders,
        read_positions,
        read_rows,
        read_trades,
    )
    from core.journal.writer import Journal

__all__ = [
    "COLUMNS", "FAMILIES", "FUNDING", "ORDERS", "POSITIONS_OPEN", "TRADES",
    "Journal", "JournalError",
    "read_fills", "read_funding", "read_orders", "read_positions", "read_rows", "read_trades",
]

_READERS = frozenset({"read_fills", "read_funding", "read_orders", "read_positions", "read_rows",
                      "read_trades"})


def __getattr__(name: str) -> Any:
    if name in _READERS:
        from core.journal import reader

        return getattr(reader, name)
    if name == "Journal":
        from core.journal.writer import Journal

        return Journal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
