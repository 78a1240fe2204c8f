"""Journal rows back into domain objects: today's history when a viewer starts, older rows in pages.

Why here and not in the console: the journal owns its CSV format, and the console holds no
trading logic nor parses a CSV; it asks the engine, which hands back these objects.
Why pages: a busy day holds 100k fills while the panes keep a bounded window, so older rows are
read on demand, newest first, holding at most one day file's rows in memory at a time.

Both readers run in a worker thread (``asyncio.to_thread``): a large day file must never stall
the event loop the engine and the UI share.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from loguru import logger

from core.journal import schema
from core.journal.errors import JournalError
from core.journal.index import INDEX_NAME, SqliteJournalIndex
from core.journal.reader import read_rows
from core.journal.rows import file_rows, typed_rows
from core.journal.schema import day_files, parse_ts
from core.model import (
    CloseReason,
    CloseResult,
    Fill,
    FundingPayment,
    Liquidity,
    OrderSide,
    Origin,
    PositionSide,
    PosSide,
    RowSource,
)
from core.money import ZERO

HistoryKind = Literal["fills", "closes", "funding"]
_FAMILY: dict[str, str] = {"fills": schema.ORDERS, "closes": schema.TRADES,
                           "funding": schema.FUNDING}


def fill_from_row(row: dict[str, Any]) -> Fill:
    """A typed orders row (event fill) back into the Fill it was written from."""
    return Fill(
        fill_id=str(row["fill_id"]), order_id=str(row["order_id"]),
        client_order_id=str(row["client_order_id"]), symbol=str(row["symbol"]),
        side=OrderSide(row["side"]), contracts=row["contracts"],
        contract_size=row["contract_size"], price=row["price"],
        fee=row["fee"] if row["fee"] is not None else ZERO, fee_ccy=str(row["fee_ccy"]),
        ts=parse_ts(str(row["ts"])), reduce_only=row["reduce_only"] == "true",
        liquidity=Liquidity(row["liquidity"]) if row["liquidity"] else Liquidity.TAKER,
        origin=Origin(row["origin"]) if row["origin"] else Origin.EXTERNAL,
        pos_side=PosSide(str(row.get("pos_side") or "net")), category=str(row.get("category") or "normal"),
        algo_id=str(row.get("algo_id") or ""), fill_pnl=row.get("fill_pnl"),
        liq_penalty=row.get("liq_penalty") or ZERO,
    )


def close_from_row(row: dict[str, Any]) -> CloseResult:
    """A typed trades row back into the CloseResult it was written from."""
    return CloseResult(
        closed_at=parse_ts(str(row["closed_at"])), symbol=str(row["symbol"]),
        position_id=str(row["position_id"]), side=PositionSide(row["side"]),
        reason=CloseReason(row["reason"]), size_before=row["size_before"],
        size_closed=row["size_closed"], size_after=row["size_after"],
        contracts_closed=row["contracts_closed"], contract_size=row["contract_size"],
        entry_price=row["entry_price"], exit_price=row["exit_price"], gross_pnl=row["gross_pnl"],
        fee=row["fee"], liq_penalty=row["liq_penalty"], funding=row["funding"],
        opened_at=parse_ts(str(row["opened_at"])), source=RowSource(row["source"]),
        fill_ids=tuple(x for x in str(row.get("fill_ids") or "").split(schema.FILL_IDS_SEPARATOR)
                       if x),
    )


def funding_from_row(row: dict[str, Any]) -> FundingPayment:
    """A typed funding row back into the FundingPayment it was written from."""
    return FundingPayment(
        bill_id=str(row["bill_id"]), symbol=str(row["symbol"]),
        position_id=str(row["position_id"]), rate=row["rate"] if row["rate"] is not None else ZERO,
        position_contracts=row["position_contracts"], position_coins=row["position_coins"],
        mark_price=row["mark_price"], amount=row["amount"], ccy=str(row["ccy"]),
        ts=parse_ts(str(row["ts"])),
    )


@dataclass(frozen=True, slots=True)
class JournalClose:
    """A close row with the idempotency key it was written under (``close_id`` column).

    The key is carried as written, not recomputed: a row built from exchange history has no fill
    ids and its key holds a timestamp finer than the CSV's milliseconds."""

    close_id: str
    close: CloseResult


@dataclass(slots=True)
class DayHistory:
    """One UTC day of the journal, oldest first within each list."""

    day: date
    fills: list[Fill] = field(default_factory=list)
    closes: list[JournalClose] = field(default_factory=list)
    funding: list[FundingPayment] = field(default_factory=list)
    skipped: int = 0  # rows that did not convert (hand-edited or foreign lines)

    @property
    def realized(self) -> Decimal:
        return sum((c.close.net_pnl for c in self.closes), ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((f.fee for f in self.fills), ZERO)

    @property
    def funding_total(self) -> Decimal:
        return sum((p.amount for p in self.funding), ZERO)


def _convert(kind: str, row: dict[str, Any]) -> Fill | JournalClose | FundingPayment:
    if kind == "fills":
        return fill_from_row(row)
    if kind == "closes":
        return JournalClose(str(row.get("close_id") or ""), close_from_row(row))
    return funding_from_row(row)


def _rows(directory: Path, kind: str, day: date | None) -> list[dict[str, Any]]:
    family = _FAMILY[kind]
    raw = read_rows(directory, family, day)
    if kind == "fills":
        raw = [r for r in raw if r["event"] == schema.FILL_EVENT]
    return typed_rows(family, raw)


def _day_rows(directory: Path, kind: str, day: date,
              limit: int | None = None) -> list[dict[str, Any]]:
    """The typed rows of one day file, read by its name (no folder listing: a year has 1,000);
    only its first ``limit`` rows if given (the oldest page of a day needs no more of it)."""
    family = _FAMILY[kind]
    path = directory / schema.file_name(family, day)
    if not os.path.lexists(path):
        return []
    with contextlib.closing(file_rows(family, path, True)) as rows:
        wanted: Iterator[dict[str, Any]] = (
            (r for r in rows if r["event"] == schema.FILL_EVENT) if kind == "fills" else rows)
        return list(wanted if limit is None else itertools.islice(wanted, limit))


def _converted(kind: str, rows: list[dict[str, Any]]) -> tuple[list[Any], int]:
    out: list[Any] = []
    bad = 0
    for row in rows:
        try:
            out.append(_convert(kind, row))
        except (ValueError, TypeError, KeyError) as exc:
            bad += 1
            logger.warning(f"journal {kind} row skipped in history: {exc}")
    return out, bad


def read_day(directory: Path, day: date) -> DayHistory:
    """Every fill, close and funding row of ``day``'s files as domain objects (blocking I/O)."""
    history = DayHistory(day)
    for kind in ("fills", "closes", "funding"):
        items, bad = _converted(kind, _rows(Path(directory), kind, day))
        setattr(history, kind, items)
        history.skipped += bad
    return history


async def read_day_async(directory: Path, day: date) -> DayHistory:
    return await asyncio.to_thread(read_day, directory, day)


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page, newest first. ``items`` are Fill, JournalClose or FundingPayment by kind."""

    kind: str
    number: int  # 0 = the newest page
    items: list[Any]
    more: bool  # an older page exists


class HistoryPager:
    """Pages of one journal kind across every day file, newest first.

    A page position is (day file, rows from that file's start still to show): counted from the
    start, so rows appended to today's file while the trader pages never shift a later page.
    Pages are read in order (next/previous); the start of every page seen is remembered, so going
    back re-reads one file rather than everything. Blocking methods run in a worker thread via
    ``page``.
    """

    def __init__(self, directory: Path, kind: HistoryKind, page_size: int = 200) -> None:
        if kind not in _FAMILY:
            raise ValueError(f"unknown history kind {kind!r}; expected one of {tuple(_FAMILY)}")
        if page_size <= 0:
            raise ValueError("page_size must be > 0")
        self.directory = Path(directory)
        self.kind = kind
        self.page_size = page_size
        family = _FAMILY[kind]
        self._days: list[date] = [date.fromisoformat(p.stem.rsplit("_", 1)[1])
                                  for fam, p in reversed(day_files(self.directory)) if fam == family]
        self._starts: list[tuple[int, int | None]] = [(0, None)]  # None = from the file's end
        self._cached: tuple[int, list[dict[str, Any]], bool] | None = None  # (file, rows, whole)
        self._counts: list[int] | None = None  # rows per day file (self._days order), from the index
        self._counted = False

    def _load_counts(self) -> None:
        """Rows per day file from the journal index (caught up first), so a deep page is reached
        by arithmetic, reading only the files it shows; without an index, pages walk in order."""
        self._counted = True
        if not (self.directory / INDEX_NAME).exists():
            return
        try:
            index = SqliteJournalIndex(self.directory)
        except (JournalError, sqlite3.Error, OSError) as exc:
            logger.debug(f"history: journal index unavailable ({exc})")
            return
        try:
            family = _FAMILY[self.kind]
            index.catch_up([schema.file_name(family, day) for day in self._days])
            by_day = dict(index.day_rows(family))
        except (JournalError, sqlite3.Error, OSError) as exc:
            logger.debug(f"history: journal index unavailable ({exc})")
            return
        finally:
            index.close()
        if all(day in by_day for day in self._days):
            self._counts = [by_day[day] for day in self._days]

    def _start_of(self, number: int) -> tuple[int, int | None] | None:
        """Where page ``number`` starts by the index's counts; None beyond the oldest row."""
        assert self._counts is not None
        skip = number * self.page_size
        for i, count in enumerate(self._counts):
            if skip < count:
                return (i, count - skip if skip else None)
            skip -= count
        return None

    def _file_rows(self, index: int, need: int | None = None) -> list[dict[str, Any]]:
        """Day file ``index``'s rows: its first ``need`` (or all, if it has fewer), every one when
        ``need`` is None. A page that ends inside a file needs only the rows before its end."""
        cached = self._cached
        if cached is not None and cached[0] == index and (
                cached[2] or (need is not None and len(cached[1]) >= need)):
            return cached[1]
        rows = _day_rows(self.directory, self.kind, self._days[index], need)
        self._cached = (index, rows, need is None or len(rows) < need)
        return rows

    def read_page(self, number: int) -> HistoryPage:
        """Page ``number`` (0 newest). Pages beyond the last known one are reached in order."""
        if number < 0:
            raise ValueError("page number must be >= 0")
        if not self._counted:
            self._load_counts()
        if self._counts is not None and len(self._starts) <= number:
            total = sum(self._counts)
            number = min(number, max(0, (total - 1) // self.page_size))
            start = self._start_of(number)
            if start is not None:
                return self._read_from(number, start)
        while len(self._starts) <= number:
            last = self._read(len(self._starts) - 1)
            if not last.more:
                return last  # clamped to the oldest page
        return self._read(number)

    def _read(self, number: int) -> HistoryPage:
        if self._counts is not None and number > 0:
            start = self._start_of(number)
            if start is not None:
                return self._read_from(number, start)
        page, after = self._read_page_at(number, self._starts[number])
        if len(self._starts) == number + 1 and page.more:
            self._starts.append(after)
        return page

    def _read_from(self, number: int, start: tuple[int, int | None]) -> HistoryPage:
        return self._read_page_at(number, start)[0]

    def _read_page_at(self, number: int,
                      start: tuple[int, int | None]) -> tuple[HistoryPage, tuple[int, int | None]]:
        file_index, end = start
        picked: list[dict[str, Any]] = []
        while file_index < len(self._days) and len(picked) < self.page_size:
            rows = self._file_rows(file_index, end)
            stop = len(rows) if end is None else min(end, len(rows))
            take = min(self.page_size - len(picked), stop)
            picked.extend(reversed(rows[stop - take:stop]))
            end = stop - take
            if end == 0:
                file_index, end = file_index + 1, None
        more = file_index < len(self._days) and self._has_rows_from(file_index, end)
        items, _ = _converted(self.kind, picked)
        return HistoryPage(self.kind, number, items, more), (file_index, end)

    def _has_rows_from(self, file_index: int, end: int | None) -> bool:
        if end is not None and end > 0:
            return True
        if self._counts is not None:
            return any(self._counts[file_index:])
        for i in range(file_index, len(self._days)):
            if self._file_rows(i):
                return True
        return False

    async def page(self, number: int) -> HistoryPage:
        return await asyncio.to_thread(self.read_page, number)
