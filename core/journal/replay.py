"""The journal rows a restart must replay: the lives still open at the last stop, not the history.

Why this is enough: the ledger is a function of the fills in time order, and a (symbol, pos_side)
that was flat after some fill carries nothing from before it. So, per key, the replay starts after
its newest journaled full close (a trades row with size_after 0 whose single fill closed exactly
what was open, i.e. did not also open the other way) and reads only the day files from there on.

Why a margin before the newest fill: a close row can be missing after a crash (its fills are
journaled, the confirmation was not), and the replay writes it again; funding bills booked just
after a close need the closed life's time window. Starting at least ``REPLAY_MARGIN`` before the
newest fill keeps both within the replay, as a full replay did, at a bounded cost.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from core.ids import ms_from_iso, pos_side_of, utc_from_ms
from core.journal import schema
from core.journal.index import FlatPoint, JournalIndex
from core.journal.rows import file_rows
from core.journal.schema import day_files

REPLAY_MARGIN = timedelta(days=1)

Row = dict[str, str | Decimal | None]


@dataclass
class ReplayRows:
    """Typed rows in day-file order: fills (orders rows of event fill), funding and trades."""

    fills: list[Row] = field(default_factory=list)
    funding: list[Row] = field(default_factory=list)
    trades: list[Row] = field(default_factory=list)
    starts: dict[tuple[str, str], FlatPoint | None] = field(default_factory=dict)
    first_day: date | None = None  # the oldest day file read (None: none needed)


def _key_of(position_id: str, symbol: str) -> tuple[str, str]:
    return (symbol, pos_side_of(position_id))


def replay_rows(directory: Path, index: JournalIndex,
                margin: timedelta = REPLAY_MARGIN) -> ReplayRows:
    """What the engine's restart replay needs, read from the day files it must read only."""
    out = ReplayRows()
    last = index.last_fill_ms()
    if last is None:
        return out
    cutoff = last - int(margin.total_seconds() * 1000)
    for symbol, pos_side in index.fill_keys():
        out.starts[(symbol, pos_side)] = index.flat_point(symbol, pos_side, cutoff)
    if any(s is None for s in out.starts.values()):
        first: date | None = None  # a key never flat: its whole history is its open life
    else:
        first = min(utc_from_ms(s.ts_ms).date()
                    for s in out.starts.values() if s is not None)
    window = _Window(out.starts)
    for family, path in day_files(Path(directory)):
        if family not in (schema.ORDERS, schema.FUNDING, schema.TRADES):
            continue
        day = date.fromisoformat(path.stem.rsplit("_", 1)[1])
        if first is not None and day < first:
            continue
        if out.first_day is None or day < out.first_day:
            out.first_day = day
        keep, into = {schema.ORDERS: (window.fill, out.fills),
                      schema.FUNDING: (window.funding, out.funding),
                      schema.TRADES: (window.trade, out.trades)}[family]
        into.extend(row for row in file_rows(family, path, True) if keep(row))
    return out


class _Window:
    """Which rows belong to the lives after each key's flat point."""

    def __init__(self, starts: dict[tuple[str, str], FlatPoint | None]) -> None:
        self.starts = starts
        self.symbol_start: dict[str, int] = {}
        for (symbol, _), start in starts.items():
            ms = start.ts_ms if start is not None else -1
            self.symbol_start[symbol] = min(self.symbol_start.get(symbol, ms), ms)
        self.passed: set[tuple[str, str]] = set()  # keys whose flat fill was met (same-ms ties)

    def fill(self, row: Row) -> bool:
        if row["event"] != schema.FILL_EVENT:
            return False
        key = (str(row["symbol"]), str(row.get("pos_side") or "net"))
        start = self.starts.get(key)
        if start is None:
            return True
        ms = ms_from_iso(str(row["ts"]))
        if ms > start.ts_ms or (ms == start.ts_ms and key in self.passed):
            return True
        if ms == start.ts_ms and row["fill_id"] == start.fill_id:
            self.passed.add(key)
        return False

    def funding(self, row: Row) -> bool:
        return ms_from_iso(str(row["ts"])) >= self.symbol_start.get(str(row["symbol"]), -1)

    def trade(self, row: Row) -> bool:
        start = self.starts.get(_key_of(str(row["position_id"]), str(row["symbol"])))
        return start is None or ms_from_iso(str(row["opened_at"])) >= start.ts_ms
