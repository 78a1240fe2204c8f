"""What the read-only role reads: every account at a glance, and the report from the store.

Why the report reuses core.accounting.report's rows and formatting: `perpdesk report --store` must say, per
engine, exactly what that engine's own `perpdesk report` says from its journal (same columns,
same cash basis: gross and liquidation penalty by close time, fees and volume by fill time,
funding by bill time, UTC days), plus the total over all engines.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from core.accounting.report import (
    MONEY_PLACES,
    TOTAL,
    ReportRow,
    Sums,
    fixed_width,
    for_reading,
    format_report,
    report_rows,
    select,
)
from core.money import ZERO, plain
from core.store.connect import SCHEMA

STOPPED = "stopped"  # core.store.status.STOPPED (not imported: this module reads only)
STALE_S = 5.0  # a heartbeat older than this is shown as stale (the engine writes one a second)
ALL_ENGINES = "ALL"

ACCOUNT_COLUMNS = ("engine", "venue", "account", "equity", "upnl", "today_net", "fees", "funding",
                   "positions", "state", "heartbeat_age_s")


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One engine's status row as read (the total line: engine TOTAL, numbers summed)."""

    engine: str
    venue: str
    account: str
    equity: Decimal | None
    upnl: Decimal | None
    today_net: Decimal | None
    fees: Decimal | None
    funding: Decimal | None
    positions: int
    state: str
    heartbeat_age_s: float | None  # float ok: a duration

    @property
    def stale(self) -> bool:
        if self.state == STOPPED:
            return False
        return self.heartbeat_age_s is None or self.heartbeat_age_s > STALE_S

    def cells(self, exact: bool = True) -> tuple[str, ...]:
        """The row as text: exact decimal strings (json), or USDT to the cent for the table
        (core.accounting.report's rounding, the same as `perpdesk report`'s table)."""
        def num(v: Decimal | None) -> str:
            return "" if v is None else plain(v) if exact else for_reading(v, MONEY_PLACES)

        age = "" if self.heartbeat_age_s is None else f"{self.heartbeat_age_s:.1f}"
        return (self.engine, self.venue, self.account, num(self.equity), num(self.upnl),
                num(self.today_net), num(self.fees), num(self.funding), str(self.positions),
                self.state, age)

    def as_json(self) -> dict[str, object]:
        d: dict[str, object] = dict(zip(ACCOUNT_COLUMNS, self.cells(), strict=True))
        d["positions"] = self.positions
        d["heartbeat_age_s"] = None if self.heartbeat_age_s is None else round(self.heartbeat_age_s, 3)
        d["stale"] = self.stale if self.engine != TOTAL else None
        return d


_ACCOUNTS_SQL = f"""
SELECT engine, venue, mode, account, equity, upnl, today_net, fees, funding, positions,
       strategy, risk_state, links, store_rows_behind, store_seconds_behind,
       extract(epoch FROM clock_timestamp() - heartbeat)::float8 AS age
FROM {SCHEMA}.engine_status ORDER BY engine
"""


def _state(r: Any, age: float | None) -> str:
    state = r["risk_state"] or "?"
    if state == STOPPED:
        return state  # its last row said so: not stale, stopped
    if age is None or age > STALE_S:
        return f"STALE ({state})"
    if r["store_rows_behind"]:
        return f"{state}, store behind {r['store_rows_behind']} rows"
    return str(state)


async def fetch_accounts(conn: Any) -> list[AccountRow]:
    """Every engine's status row, then the total line (sums over the engines)."""
    rows = []
    for r in await conn.fetch(_ACCOUNTS_SQL):
        age = r["age"]
        venue = r["venue"] + (" demo" if r["mode"] == "demo" else "")
        rows.append(AccountRow(r["engine"], venue, r["account"], r["equity"], r["upnl"],
                               r["today_net"], r["fees"], r["funding"], r["positions"] or 0,
                               _state(r, age), age))
    if rows:
        rows.append(total_row(rows))
    return rows


def total_row(rows: list[AccountRow]) -> AccountRow:
    def total(name: str) -> Decimal:
        return sum((getattr(r, name) or ZERO for r in rows), ZERO)

    stale = sum(1 for r in rows if r.stale)
    return AccountRow(TOTAL, "", f"{len(rows)} engines", total("equity"), total("upnl"),
                      total("today_net"), total("fees"), total("funding"),
                      sum(r.positions for r in rows), f"{stale} stale" if stale else "", None)


def format_accounts(rows: list[AccountRow]) -> list[str]:
    """A fixed-width table for reading, numbers right-aligned, USDT to the cent (``--format
    json`` carries the exact decimals)."""
    return fixed_width(ACCOUNT_COLUMNS, [r.cells(exact=False) for r in rows], {3, 4, 5, 6, 7, 8, 10})


# ---- the report --------------------------------------------------------------------------
def _day_sql(column: str) -> str:
    return f"(({column}) AT TIME ZONE 'UTC')::date"


def _days(column: str) -> str:
    """The UTC days from $1 to $2 (both included; NULL: open)."""
    return f"($1::date IS NULL OR {_day_sql(column)} >= $1) AND ($2::date IS NULL OR {_day_sql(column)} <= $2)"


_REPORT_SQL = {
    "closes": f"""SELECT engine, {_day_sql('closed_at')} AS day, symbol, count(*) AS n,
        coalesce(sum(gross_pnl), 0) AS gross, coalesce(sum(liq_penalty), 0) AS liq
        FROM {SCHEMA}.trades WHERE {_days('closed_at')}
        GROUP BY 1, 2, 3""",
    "fills": f"""SELECT engine, {_day_sql('ts')} AS day, symbol, count(*) AS n,
        coalesce(sum(fee), 0) AS fees, coalesce(sum(coins), 0) AS volume
        FROM {SCHEMA}.orders WHERE event = 'fill' AND {_days('ts')}
        GROUP BY 1, 2, 3""",
    "funding": f"""SELECT engine, {_day_sql('ts')} AS day, symbol, coalesce(sum(amount), 0) AS amount
        FROM {SCHEMA}.funding WHERE {_days('ts')}
        GROUP BY 1, 2, 3""",
}


@dataclass(frozen=True, slots=True)
class EngineReport:
    engine: str  # ALL_ENGINES for the total over every engine
    rows: list[ReportRow]


async def fetch_report(conn: Any, day: date | None = None, *, first: date | None = None,
                       last: date | None = None, symbol: str | None = None) -> list[EngineReport]:
    """Per engine (by name), the rows of its own `perpdesk report` with the same options; then
    the total over every engine (ALL). ``day`` is one UTC day, ``first``/``last`` a range (both
    included, either open), ``symbol`` a symbol or its coin, as core.accounting.report.select reads it."""
    if day is not None:
        first = last = day
    acc: dict[str, dict[tuple[date, str], Sums]] = defaultdict(lambda: defaultdict(Sums))
    for r in await conn.fetch(_REPORT_SQL["closes"], first, last):
        a = acc[r["engine"]][(r["day"], r["symbol"])]
        a.closes, a.gross, a.liq = r["n"], r["gross"], r["liq"]
    for r in await conn.fetch(_REPORT_SQL["fills"], first, last):
        a = acc[r["engine"]][(r["day"], r["symbol"])]
        a.fills, a.fees, a.volume = r["n"], r["fees"], r["volume"]
    for r in await conn.fetch(_REPORT_SQL["funding"], first, last):
        acc[r["engine"]][(r["day"], r["symbol"])].funding = r["amount"]
    out = [EngineReport(engine, select(report_rows(by_key), first, last, symbol))
           for engine, by_key in sorted(acc.items())]
    out = [r for r in out if r.rows]
    if out:
        total: dict[tuple[date, str], Sums] = defaultdict(Sums)
        for rep in out:
            for row in rep.rows:
                if row.day is not None:
                    total[(row.day, row.symbol)].add(Sums.of(row))
        out.append(EngineReport(ALL_ENGINES, report_rows(total)))
    return out


def flatten(reports: list[EngineReport]) -> tuple[list[ReportRow], list[str]]:
    """Every engine's rows, then ALL's, and the engine of each: what core.accounting.report prints."""
    return ([row for rep in reports for row in rep.rows],
            [rep.engine for rep in reports for _ in rep.rows])


def format_store_report(reports: list[EngineReport]) -> list[str]:
    """core.accounting.report's table with an ``engine`` column last (each engine's rows, then ALL)."""
    return format_report(*flatten(reports))
