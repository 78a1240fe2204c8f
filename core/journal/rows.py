"""One journal day file's rows, read and checked: the code the reader, the index, the replay
and reconcile share.

A value that cannot be what its column holds (a bad byte in ``side``, a number that is not one) is
refused with one line naming the file, the line number, the column and the value: a misread row
would book the wrong money. The fast check (``row_checker``) answers yes or no per line; only on
"no" the full check (``check_row``) runs to name what is wrong.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Callable, Generator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from core.journal import schema
from core.journal.errors import JournalError
from core.money import MoneyError, dec_or_none
from core.support.safefile import UnsafeFileError, open_private


def open_day_file(path: Path) -> int:
    """A read-only fd of ``path``; JournalError naming the file when it cannot be ours to read."""
    try:
        return open_private(path, os.O_RDONLY)
    except UnsafeFileError as exc:
        raise JournalError(f"journal file {exc.message}") from None
    except OSError as exc:
        raise JournalError(f"cannot read journal file {path}: {exc.strerror or exc}") from exc


def open_journal_text(path: Path) -> TextIO:
    """A day file opened for reading: no symlink followed, ours only (see core.support.safefile).

    ``utf-8-sig``: a spreadsheet saving "CSV UTF-8" puts a byte-order mark before the header.
    """
    return os.fdopen(open_day_file(path), "r", newline="", encoding="utf-8-sig", errors="replace")


def check_row(family: str, path: Path, line: int, row: dict[str, str],
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


def file_rows(family: str, path: Path,
               typed: bool) -> Generator[dict[str, str | Decimal | None], None, None]:
    try:
        with open_journal_text(path) as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                return
            columns = schema.check_header(family, header, path)
            width = len(columns)
            ok = row_checker(family, columns)  # a fast yes/no; on "no" the full check names it
            money = [c for c in columns if c in schema.DECIMAL_COLUMNS[family]] if typed else []
            for fields in reader:
                if len(fields) != width:
                    continue  # torn or foreign line: wrong field count
                row = dict(zip(columns, fields, strict=True))
                if not ok(fields):
                    yield check_row(family, path, reader.line_num, row, typed)
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


def typed_rows(family: str, rows: list[dict[str, str]]) -> list[dict[str, str | Decimal | None]]:
    """Rows from ``read_rows`` (values already checked) with money and size columns as Decimal."""
    money = schema.DECIMAL_COLUMNS[family]
    return [{k: (dec_or_none(v) if k in money else v) for k, v in row.items()} for row in rows]


def row_checker(family: str, columns: tuple[str, ...]) -> Callable[[list[str]], bool]:
    """A fast yes/no on one row's values (the reader's checks: enums, times, finite decimals);
    on "no", ``check_row`` names the column and the value."""
    col = {name: i for i, name in enumerate(columns)}
    enums = [(col[c], allowed) for c, allowed in schema.ENUM_COLUMNS[family].items()]
    times = [col[c] for c in schema.TIME_COLUMNS[family]]
    decimals = [col[c] for c in schema.DECIMAL_COLUMNS[family]]
    fromiso = datetime.fromisoformat

    def ok(fields: list[str]) -> bool:
        try:
            for i, allowed in enums:
                if fields[i] not in allowed:
                    return False
            for i in times:
                fromiso(fields[i])
            for i in decimals:
                v = fields[i]
                if v and not Decimal(v).is_finite():
                    return False
        except (ValueError, ArithmeticError):
            return False
        return True

    return ok
