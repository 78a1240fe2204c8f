"""Reading the journal back (reconcile, report, the engine's replay, the history viewer).

Rows come back keyed by the file's own header, so a file whose columns a spreadsheet reordered
reads the same. A header that lacks a column, or a value that cannot be what its column holds (a
bad byte in ``side``, a number that is not one), is refused with one line naming the file, the
line number, the column and the value: a misread row would book the wrong money, and a bare
``KeyError: 'fill_id'`` would leave the trader hunting through every day file. A torn last line (a
crash while the writer is not running to repair it) is skipped rather than returned half-filled.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from core.journal import schema
from core.journal.rows import file_rows
from core.journal.schema import day_files


def _read(directory: Path, family: str, day: date | None,
          typed: bool) -> list[dict[str, str | Decimal | None]]:
    if family not in schema.COLUMNS:
        raise ValueError(f"unknown journal family {family!r}; expected one of {schema.FAMILIES}")
    rows: list[dict[str, str | Decimal | None]] = []
    for fam, path in day_files(Path(directory)):
        if fam != family or (day is not None and path.name != schema.file_name(family, day)):
            continue
        rows.extend(file_rows(family, path, typed))
    return rows


def read_rows(directory: Path, family: str, day: date | None = None) -> list[dict[str, str]]:
    """Every complete row of ``family``, oldest day file first; only ``day``'s file if given.

    JournalError (file, line, column, value) for a file that is not ours, a header that lacks a
    column, or a value that cannot be read.
    """
    return _read(directory, family, day, False)  # type: ignore[return-value]


def read_trades(directory: Path, day: date | None = None) -> list[dict[str, str | Decimal | None]]:
    """Close rows; money and size columns as Decimal ("" -> None), times as ISO strings."""
    return _read(directory, schema.TRADES, day, True)


def read_fills(directory: Path, day: date | None = None) -> list[dict[str, str | Decimal | None]]:
    """Orders rows with event ``fill`` only."""
    return [r for r in _read(directory, schema.ORDERS, day, True)
            if r["event"] == schema.FILL_EVENT]


def read_orders(directory: Path, day: date | None = None) -> list[dict[str, str | Decimal | None]]:
    """Every orders row: fills and order state changes."""
    return _read(directory, schema.ORDERS, day, True)


def read_funding(directory: Path, day: date | None = None) -> list[dict[str, str | Decimal | None]]:
    return _read(directory, schema.FUNDING, day, True)


def read_positions(
    directory: Path, day: date | None = None
) -> list[dict[str, str | Decimal | None]]:
    return _read(directory, schema.POSITIONS_OPEN, day, True)
