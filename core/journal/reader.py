"""Reading the journal back (reconcile, report, tests).

Rows come back keyed by the file's own header, so files written by an older version with fewer
extra columns still read. A torn last line (a crash while the writer is not running to repair it)
is skipped rather than returned half-filled.
"""
from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

from core.journal import schema
from core.journal.writer import JournalError, day_files
from core.money import dec_or_none


def read_rows(directory: Path, family: str, day: date | None = None) -> list[dict[str, str]]:
    """Every complete row of ``family``, oldest day file first; only ``day``'s file if given."""
    if family not in schema.COLUMNS:
        raise ValueError(f"unknown journal family {family!r}; expected one of {schema.FAMILIES}")
    rows: list[dict[str, str]] = []
    for fam, path in day_files(Path(directory)):
        if fam != family or (day is not None and path.name != schema.file_name(family, day)):
            continue
        try:
            with open(path, newline="", encoding="utf-8", errors="replace") as f:
                for row in csv.DictReader(f):
                    if None in row or any(v is None for v in row.values()):
                        continue  # torn or foreign line: wrong field count
                    rows.append(row)
        except (OSError, csv.Error) as exc:
            raise JournalError(f"cannot read journal file {path}: {exc}") from exc
    return rows


def _typed(family: str, rows: list[dict[str, str]]) -> list[dict[str, str | Decimal | None]]:
    money = schema.DECIMAL_COLUMNS[family]
    return [{k: (dec_or_none(v) if k in money else v) for k, v in row.items()} for row in rows]


def read_trades(directory: Path, day: date | None = None) -> list[dict[str, str | Decimal | None]]:
    """Close rows; money and size columns as Decimal ("" -> None), times as ISO strings."""
    return _typed(schema.TRADES, read_rows(directory, schema.TRADES, day))


def read_fills(directory: Path, day: date | None = None) -> list[dict[str, str | Decimal | None]]:
    """Orders rows with event ``fill`` only."""
    rows = [r for r in read_rows(directory, schema.ORDERS, day) if r["event"] == schema.FILL_EVENT]
    return _typed(schema.ORDERS, rows)


def read_orders(directory: Path, day: date | None = None) -> list[dict[str, str | Decimal | None]]:
    """Every orders row: fills and order state changes."""
    return _typed(schema.ORDERS, read_rows(directory, schema.ORDERS, day))


def read_funding(directory: Path, day: date | None = None) -> list[dict[str, str | Decimal | None]]:
    return _typed(schema.FUNDING, read_rows(directory, schema.FUNDING, day))


def read_positions(
    directory: Path, day: date | None = None
) -> list[dict[str, str | Decimal | None]]:
    return _typed(schema.POSITIONS_OPEN, read_rows(directory, schema.POSITIONS_OPEN, day))
