"""`perpdesk report`: PnL, fees and funding per symbol and UTC day, from the journal alone.

Why from the journal and not the exchange: the report must work offline and on any past day the
exchange no longer serves (OKX keeps three months of history); the journal matches the exchange to
the last decimal, which ``perpdesk reconcile`` proves.

Every column is what was booked on that day, on one cash basis so a row adds up on its own:
- gross PnL and liquidation penalties: the day's close rows (trades CSV, by ``closed_at``);
- fees: the day's fills (orders CSV, by fill ``ts``), so an opening fee counts on the day it was
  paid; the trades CSV instead carries it on the position's next close row;
- funding: the day's funding cash flows (funding CSV, by ``ts``), likewise;
- net PnL = gross - fees - liq penalties + funding.
Over a history of fully closed positions the net column sums to the trades rows' net_pnl, i.e.
to the exchange's realizedPnl; only its split across days differs.
"""
from __future__ import annotations

import csv
import io
import sqlite3
import sys
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Protocol

from core.journal.errors import JournalError
from core.journal.index import open_index
from core.journal.schema import parse_ts
from core.money import ZERO, dec, plain

TOTAL = "TOTAL"
FORMATS = ("table", "csv", "json")


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One symbol on one UTC day, or the total line (``day`` None, ``symbol`` TOTAL)."""

    day: date | None
    symbol: str
    closes: int
    gross_pnl: Decimal
    fees: Decimal  # cost, >= 0 paid
    liq_penalty: Decimal  # cost
    funding: Decimal  # cash flow, + received
    net_pnl: Decimal
    fills: int
    volume: Decimal | None  # coins; None on the total line (coins of different assets)


@dataclass
class Sums:
    """Running sums for one (day, symbol): of one journal, or of one engine or all in the store."""

    closes: int = 0
    gross: Decimal = ZERO
    fees: Decimal = ZERO
    liq: Decimal = ZERO
    funding: Decimal = ZERO
    fills: int = 0
    volume: Decimal = ZERO

    @classmethod
    def of(cls, r: ReportRow) -> Sums:
        return cls(r.closes, r.gross_pnl, r.fees, r.liq_penalty, r.funding, r.fills, r.volume or ZERO)

    def add(self, o: Sums) -> None:
        self.closes += o.closes
        self.gross += o.gross
        self.fees += o.fees
        self.liq += o.liq
        self.funding += o.funding
        self.fills += o.fills
        self.volume += o.volume


def _day(value: Any) -> date:
    return (value if isinstance(value, datetime) else parse_ts(str(value))).date()


def _d(value: Any) -> Decimal:
    return dec(value, default=ZERO)


def build_report(journal_dir: Path, day: date | None = None) -> list[ReportRow]:
    """Rows per (day, symbol) in day then symbol order, then the total line; [] when the journal
    holds nothing for ``day`` (or at all).

    From the journal index's day totals (core.journal.index), brought up to date first with the
    bytes it has not seen: a year of history costs what a day costs. Without an index that can be
    opened (a read-only folder), from the CSV files as ``build_report_from_csv``.
    """
    directory = Path(journal_dir)
    try:
        index = open_index(directory)
    except (sqlite3.Error, PermissionError):
        # a folder this user may read but not write: the CSV files give the same rows. Nothing is
        # said: the report's output is the report (and no log is set up for it)
        return build_report_from_csv(directory, day)
    except JournalError as exc:
        if "journal index" not in exc.message:
            raise
        return build_report_from_csv(directory, day)
    try:
        totals = index.totals(day)
    finally:
        index.close()
    acc = {key: Sums(t.closes, t.gross, t.fees, t.liq, t.funding, t.fills, t.volume)
           for key, t in totals.items()}
    return report_rows(acc, day)


def build_report_from_csv(journal_dir: Path, day: date | None = None) -> list[ReportRow]:
    """``build_report`` reading every row of the CSV files (the record the index is built from)."""
    from core.journal.reader import read_fills, read_funding, read_trades

    directory = Path(journal_dir)
    acc: dict[tuple[date, str], Sums] = defaultdict(Sums)
    for row in read_trades(directory, day):
        a = acc[(_day(row["closed_at"]), str(row["symbol"]))]
        a.closes += 1
        a.gross += _d(row["gross_pnl"])
        a.liq += _d(row["liq_penalty"])
    for row in read_fills(directory, day):
        a = acc[(_day(row["ts"]), str(row["symbol"]))]
        a.fills += 1
        a.fees += _d(row["fee"])
        a.volume += _d(row["coins"])
    for row in read_funding(directory, day):
        acc[(_day(row["ts"]), str(row["symbol"]))].funding += _d(row["amount"])
    return report_rows(acc, day)


def report_rows(acc: dict[tuple[date, str], Sums], day: date | None = None) -> list[ReportRow]:
    """Rows per (day, symbol) in day then symbol order, then the TOTAL line; [] for none."""
    rows = [
        ReportRow(d, sym, a.closes, a.gross, a.fees, a.liq, a.funding,
                  a.gross - a.fees - a.liq + a.funding, a.fills, a.volume)
        for (d, sym), a in sorted(acc.items())
        if day is None or d == day
    ]
    if not rows:
        return []
    total = ReportRow(
        None, TOTAL, sum(r.closes for r in rows), sum((r.gross_pnl for r in rows), ZERO),
        sum((r.fees for r in rows), ZERO), sum((r.liq_penalty for r in rows), ZERO),
        sum((r.funding for r in rows), ZERO), sum((r.net_pnl for r in rows), ZERO),
        sum(r.fills for r in rows), None,
    )
    return [*rows, total]


def select(rows: list[ReportRow], first: date | None = None, last: date | None = None,
           symbol: str | None = None) -> list[ReportRow]:
    """The rows from ``first`` to ``last`` (both included, either open) of ``symbol`` (the
    unified symbol, or its base coin in any case: ``BTC``), with the total line made anew for
    what is left; [] when nothing is left."""
    def wanted(r: ReportRow) -> bool:
        if r.day is None:
            return False
        if (first is not None and r.day < first) or (last is not None and r.day > last):
            return False
        return symbol is None or r.symbol == symbol or r.symbol.split("/")[0].upper() == symbol.upper()

    return report_rows({(r.day, r.symbol): Sums.of(r) for r in rows if wanted(r) and r.day is not None})


_HEAD = ("day", "symbol", "closes", "gross_pnl", "fees", "liq_penalty", "funding", "net_pnl",
         "fills", "volume")
ENGINE = "engine"  # the store's extra column, last: which engine a row is (ALL: every engine)
_NUMERIC = frozenset(range(2, len(_HEAD)))


MONEY_PLACES = Decimal("0.01")  # the table's USDT columns: cents, as on a statement
VOLUME_PLACES = Decimal("0.0001")  # coins: the simulator's smallest BTC lot is 0.0001 BTC


def for_reading(value: Decimal, places: Decimal = MONEY_PLACES) -> str:
    """``value`` to ``places`` for a table (USDT: to the cent); never ``-0.00``. The one rounding
    rule of every table perpdesk prints (this report, the store's report and accounts)."""
    q = value.quantize(places, rounding=ROUND_HALF_UP)
    return f"{q:f}" if q else f"{abs(q):f}"


def _cells(r: ReportRow, exact: bool) -> tuple[str, ...]:
    """One row as text: exact decimal strings, or rounded per column for the table."""
    def money(v: Decimal) -> str:
        return plain(v) if exact else for_reading(v, MONEY_PLACES)

    volume = "" if r.volume is None else plain(r.volume) if exact else for_reading(r.volume, VOLUME_PLACES)
    return (r.day.isoformat() if r.day else "", r.symbol, str(r.closes), money(r.gross_pnl),
            money(r.fees), money(r.liq_penalty), money(r.funding), money(r.net_pnl), str(r.fills),
            volume)


def _check_engines(rows: list[ReportRow], engines: list[str] | None) -> None:
    if engines is not None and len(engines) != len(rows):
        raise ValueError(f"{len(rows)} report rows but {len(engines)} engine names")


def format_csv(rows: list[ReportRow], engines: list[str] | None = None) -> str:
    """CSV with a header row and the exact decimals (the total line: empty day, symbol TOTAL).

    ``engines`` (the store): the engine of each row, in an ``engine`` column last."""
    _check_engines(rows, engines)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_HEAD if engines is None else (*_HEAD, ENGINE))
    for i, r in enumerate(rows):
        cells = _cells(r, exact=True)
        writer.writerow(cells if engines is None else (*cells, engines[i]))
    return out.getvalue()


def _json_obj(r: ReportRow) -> dict[str, Any]:
    cells = dict(zip(_HEAD, _cells(r, exact=True), strict=True))
    item: dict[str, Any] = {**cells, "closes": r.closes, "fills": r.fills}
    item["day"] = r.day.isoformat() if r.day else None
    item["volume"] = None if r.volume is None else cells["volume"]
    if r.day is None:
        del item["day"]
    return item


def _json_body(rows: list[ReportRow]) -> dict[str, Any]:
    return {"rows": [_json_obj(r) for r in rows if r.day is not None],
            "total": next((_json_obj(r) for r in rows if r.day is None), None)}


def format_json(rows: list[ReportRow], engines: list[str] | None = None) -> str:
    """``{"rows": [...], "total": {...} | null}``; every decimal a string, so it stays exact
    (a JSON number is read back as a float by most tools).

    ``engines`` (the store): ``{"engines": [{"engine": E, "rows": [...], "total": {...}}, ...]}``,
    one such object per engine in the order given (each row also carries ``"engine"``), so each
    engine's part reads exactly as that engine's own report."""
    import json

    _check_engines(rows, engines)
    if engines is None:
        return json.dumps(_json_body(rows), indent=2) + "\n"
    parts: list[dict[str, Any]] = []
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or engines[i] != engines[start]:
            body = _json_body(rows[start:i])
            for item in [*body["rows"], *([body["total"]] if body["total"] else [])]:
                item[ENGINE] = engines[start]
            parts.append({ENGINE: engines[start], **body})
            start = i
    return json.dumps({"engines": parts}, indent=2) + "\n"


def format_report(rows: list[ReportRow], engines: list[str] | None = None) -> list[str]:
    """A fixed-width table for reading: numbers right-aligned, USDT columns to the cent, volume
    to 4 decimals (``--format csv`` or ``json`` for the exact values). ``engines`` (the store):
    the engine of each row, in an ``engine`` column last."""
    _check_engines(rows, engines)
    body = [_cells(r, exact=False) for r in rows]
    head: tuple[str, ...] = _HEAD
    if engines is not None:
        head = (*_HEAD, ENGINE)
        body = [(*cells, engines[i]) for i, cells in enumerate(body)]
    return fixed_width(head, body, _NUMERIC)


def fixed_width(head: tuple[str, ...], body: list[tuple[str, ...]], numeric: Collection[int]) -> list[str]:
    """A table as lines: each column as wide as its widest cell, the ``numeric`` columns
    right-aligned, two spaces between columns (every table perpdesk prints)."""
    widths = [max(len(c[i]) for c in [head, *body]) for i in range(len(head))]
    return [
        "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                  for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()
        for cells in [head, *body]
    ]


def print_report(rows: list[ReportRow], fmt: str, nothing: str,
                 engines: list[str] | None = None) -> None:
    """Print ``rows`` as ``fmt`` (one of ``FORMATS``): the journal's report and the store's alike.
    ``nothing``: the table's line when there are no rows (csv and json print an empty document)."""
    if fmt == "csv":
        sys.stdout.write(format_csv(rows, engines))
    elif fmt == "json":
        sys.stdout.write(format_json(rows, engines))
    elif not rows:
        print(nothing)
    else:
        print("\n".join(format_report(rows, engines)))


def scope_text(day: date | None = None, first: date | None = None, last: date | None = None,
               symbol: str | None = None) -> str:
    """`` for 2024-05-01 from ... to ... for symbol BTC``: what a report was asked for."""
    return ((f" for {day.isoformat()}" if day else "") + (f" from {first.isoformat()}" if first else "")
            + (f" to {last.isoformat()}" if last else "") + (f" for symbol {symbol}" if symbol else ""))


class _JournalSettings(Protocol):
    dir: Any


class _Settings(Protocol):
    journal: _JournalSettings


def main(settings: _Settings, day: date | None = None, *, first: date | None = None,
         last: date | None = None, symbol: str | None = None, fmt: str = "table") -> int:
    """Print the report; 0, or 2 with one plain line when the journal cannot be read.

    ``day`` is one UTC day; ``first``/``last`` a range (both included, either may be open);
    ``symbol`` one symbol; ``fmt`` one of ``FORMATS``.
    """
    directory = Path(settings.journal.dir)
    if not directory.is_dir():
        print(f"perpdesk report: journal directory {directory} does not exist "
              "(set [journal] dir in the config)", file=sys.stderr)
        return 2
    try:
        rows = build_report(directory, day)
    except (JournalError, ValueError, KeyError) as exc:
        print(f"perpdesk report: cannot read the journal in {directory}: {exc}", file=sys.stderr)
        return 2
    if first is not None or last is not None or symbol is not None:
        rows = select(rows, first, last, symbol)
    print_report(rows, fmt, f"no journal rows in {directory}{scope_text(day, first, last, symbol)}")
    return 0
