"""The CSV journal: fills, order events, closes, funding and open-position snapshots."""
from core.journal.errors import JournalError
from core.journal.reader import (
    read_fills,
    read_funding,
    read_orders,
    read_positions,
    read_rows,
    read_trades,
)
from core.journal.schema import COLUMNS, FAMILIES, FUNDING, ORDERS, POSITIONS_OPEN, TRADES
from core.journal.writer import Journal

__all__ = [
    "COLUMNS", "FAMILIES", "FUNDING", "ORDERS", "POSITIONS_OPEN", "TRADES",
    "Journal", "JournalError",
    "read_fills", "read_funding", "read_orders", "read_positions", "read_rows", "read_trades",
]
