"""Reading the journal back (reconcile, report, the engine's replay, the history viewer).

Rows come back keyed by the file's own header, so a file whose columns a spreadsheet reordered
reads the same. A header that lacks a column, or a value that cannot be what its column holds (a
bad byte in ``side``, a number that is not one), is refused with one line naming the file, the
line number, the column and the value: a misread row would book the wrong money, and a bare
``KeyError: 'fill_id'`` would leave the trader hunting through every day file. A torn last line (a
crash while the writer is not running to repair it) is skipped rather than returned half-filled.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Generator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from core.journal import schema
from core.journal.dayfile import open_day_file
from core.journal.errors import JournalError
from core.journal.index import _checker
from core.journal.writer import day_files
from core.money import MoneyError, dec_or_none


def open_journal_text(path: Path) -> TextIO:
    """A day file opened for reading: no symlink followed, ours only (see core.safefile).

    ``utf-8-sig``: a spreadsheet saving "CSV UTF-8" puts a byte-order mark before the header.
    """
    return os.fdopen(open_day_file(path), "r", newline="", encoding="utf-8-sig", errors="replace")


def _check_row(family: str, path: Path, line: int, row: dict[str, str],
               typed: bool) -> dict[str, str | Decimal | None]:
    for column, allowed in schema.ENUM_COLUMNS[family].items():
        value = row[column]
        if value not in allowed:
            raise schema.row_error(path, line, column, value,
                                   "one of " + ", ".join(sorted(v for v in allowed if v)))
    for column in schema.TIME_COLUMNS[family]:
        value = row[column]
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise schema.row_error(path, line, column, value,
                                   "an ISO-8601 time such as 2026-01-31T12:00:00.000Z") from None
    out: dict[str, str | Decimal | None] = dict(row)
    for column in schema.DECIMAL_COLUMNS[family]:
        value = row[column]
        try:
            number = dec_or_none(value)
        except MoneyError:
            raise schema.row_error(path, line, column, value, "a finite decimal number") from None
        if typed:
            out[column] = number
    return out


def _file_rows(family: str, path: Path,
               typed: bool) -> Generator[dict[str, str | Decimal | None], None, None]:
    try:
        with open_journal_text(path) as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                return
            columns = schema.check_header(family, header, path)
            width = len(columns)
            ok = _checker(family, columns)  # a fast yes/no; on "no" the full check names it
            money = [c for c in columns if c in schema.DECIMAL_COLUMNS[family]] if typed else []
            for fields in reader:
                if len(fields) != width:
                    continue  # torn or foreign line: wrong field count
                row = dict(zip(columns, fields, strict=True))
                if not ok(fields):
                    yield _check_row(family, path, reader.line_num, row, typed)
                    continue
                out: dict[str, str | Decimal | None] = row  # type: ignore[assignment]
                for column in money:
                    value = row[column]
                    out[column] = Decimal(value) if value else None
                yield out
    except csv.Error as exc:
        raise JournalError(f"cannot read journal file {path}: {exc}") from exc
    except OSError as exc:
        raise JournalError(f"cannot read journal file {path}: {exc.strerror or exc}") from exc


def _read(directory: Path, family: str, day: date | None,
          typed: bool) -> list[dict[str, str | Decimal | None]]:
    if family not in schema.COLUMNS:
        raise ValueError(f"unknown journal family {family!r}; expected one of {schema.FAMILIES}")
    rows: list[dict[str, str | Decimal | None]] = []
    for fam, path in day_files(Path(directory)):
        if fam != family or (day is not None and path.name != schema.file_name(family, day)):
            continue
        rows.extend(_file_rows(family, path, typed))
    return rows


def read_rows(directory: Path, family: str, day: date | None = None) -> list[dict[str, str]]:
    """Every complete row of ``family``, oldest day file first; only ``day``'s file if given.

    JournalError (file, line, column, value) for a file that is not ours, a header that lacks a
    column, or a value that cannot be read.
    """
    return _read(directory, family, day, False)  # type: ignore[return-value]


def _typed(family: str, rows: list[dict[str, str]]) -> list[dict[str, str | Decimal | None]]:
    """Rows from ``read_rows`` (values already checked) with money and size columns as Decimal."""
    money = schema.DECIMAL_COLUMNS[family]
    return [{k: (dec_or_none(v) if k in money else v) for k, v in row.items()} for row in rows]


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
