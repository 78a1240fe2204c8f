"""Journal vs exchange, position by position (`perpdesk reconcile`, Engine.reconcile).

Why position by position: a journal can add up to the right daily total while one close carries
another position's fee or funding; only comparing each position life with the exchange's own
record of it (OKX positions-history, fills-history, funding bills) proves every row is right.

Bounded by the exchange's memory: OKX answers fills-history, positions-history and bills-archive
for three months (a venue's ``history_window``), so reconcile compares from there on and reads only
the journal day files from that day (and back to the opening of a life still open at it), never a
year of history it could not check anyway (``read_window``).

Layout: ``compare`` is pure (journal rows as the reader returns them + exchange domain objects in,
a ``ReconcileReport`` out), so it is tested on hand-built inputs; ``reconcile_with_venue`` does the
I/O; ``main`` is the command.

A position life is a journal ``position_id`` = ``symbol#pos_side#opened_ms`` (``.seq`` appended
for the second, third... life of a leg opened in the same millisecond). Its window runs from
``opened_ms`` to its last close row when fully closed, and stays open-ended while it is open; fills
and funding bills are attributed to the life whose window holds them, except that an exchange fill
(bill) the journal holds goes to the life that journaled it, and a fill a close row lists goes to
that row's life. Its exchange record is the positions-history item with the same symbol and posSide
whose cTime is ``opened_ms`` (the ``seq``-th of them in the order they happened: each record serves
one life), else the nearest of its direction within ``MATCH_TOLERANCE``; without one, an open life
is held against the open position's own realizedPnl and fee, and anything else against the
exchange's fills and bills in the window (``fillPnl``, fees, liquidation penalties, funding). A
fill that crosses zero in net mode counts with the life it closes (its close row lists it).

Checks per life: closed contracts, open contracts, net pnl (sum of net_pnl, plus funding and fees
booked after the last close row, vs realizedPnl, exactly), fee, liq penalty (when either side has
one), funding count and sum (journal rows vs bills in the window), fills (every exchange fill id
once in the journal, no journal fill unknown to the exchange), with a row per offending fill id.
"""
from __future__ import annotations

import asyncio
from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from loguru import logger

from core.confirm.history_match import HistoryMatcher
from core.events import FundingBill, PositionHistoryRecord, PositionPush
from core.ids import EPOCH, parse_position_id, position_id_for, split_position_id, utc_from_ms
from core.journal import schema
from core.journal.rows import file_rows
from core.journal.schema import FILL_EVENT, FILL_IDS_SEPARATOR, day_files
from core.model import Fill, OrderSide, PositionSide
from core.money import ZERO, dec, plain

MATCH_TOLERANCE = timedelta(seconds=5)  # journal opened_ms vs positions-history cTime
_NONE = "-"

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ReconcileRow:
    """One check: a field of one position life, journal value vs exchange value (as printed)."""

    symbol: str
    position_id: str  # "-" when a fact could not be tied to any position life
    field: str
    journal: str
    exchange: str
    ok: bool


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """Every check made; ``ok`` only when each of them matched (an empty journal and account
    match trivially)."""

    rows: tuple[ReconcileRow, ...] = field(default=())
    moving: bool = False  # the account changed during every attempt: differences may be timing

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))  # accept a list, stay immutable

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def differences(self) -> list[ReconcileRow]:
        return [r for r in self.rows if not r.ok]

    def lines(self) -> list[str]:
        """A printable table (one line per check) and a summary line."""
        head = ("symbol", "position", "field", "journal", "exchange", "")
        body = [
            (r.symbol, _short_position(r.symbol, r.position_id), r.field, r.journal, r.exchange,
             "ok" if r.ok else "DIFF")
            for r in self.rows
        ]
        widths = [max(len(c[i]) for c in [head, *body]) for i in range(len(head))]
        out = ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
               for cells in [head, *body]]
        n = len(self.differences)
        positions = len({(r.symbol, r.position_id) for r in self.rows if r.position_id != _NONE})
        out.append(
            f"{len(self.rows)} checks over {positions} positions: "
            + ("all match" if n == 0 else f"{n} difference{'s' if n != 1 else ''}")
        )
        if self.moving and n:
            out.append("the account kept changing while it was read (orders filling): run "
                       "reconcile again when it is quiet")
        return out


def _short_position(symbol: str, position_id: str) -> str:
    """``net#1700000000000`` (the symbol is already in its own column)."""
    prefix = symbol + "#"
    return position_id[len(prefix):] if position_id.startswith(prefix) else position_id


# ---------------------------------------------------------------- normalising inputs


def _ts(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _dec(value: Any) -> Decimal:
    return dec(value, default=ZERO)


def _life_order(life: _Life) -> tuple[datetime, int, str]:
    """Lives in the order they opened (several may share a millisecond: then by sequence)."""
    return life.opened, life.seq, life.position_id


def _direction(pos_side: str, side: OrderSide) -> PositionSide:
    """Direction a position takes when ``side`` opens it on leg ``pos_side``."""
    if pos_side in (PositionSide.LONG.value, PositionSide.SHORT.value):
        return PositionSide(pos_side)
    return PositionSide.LONG if side is OrderSide.BUY else PositionSide.SHORT


@dataclass(frozen=True, slots=True)
class _JFill:
    """A journal fill row, typed."""

    fill_id: str
    symbol: str
    pos_side: str
    side: OrderSide
    contracts: Decimal
    fee: Decimal
    ts: datetime

    @staticmethod
    def of(row: Row) -> _JFill:
        return _JFill(str(row["fill_id"]), str(row["symbol"]), str(row.get("pos_side") or "net"),
                      OrderSide(str(row["side"])), _dec(row["contracts"]), _dec(row.get("fee")),
                      _ts(row["ts"]))


@dataclass(eq=False)
class _Life:
    """Private accumulator for one journal position life while ``compare`` sorts facts into it."""

    position_id: str
    symbol: str
    pos_side: str
    opened: datetime
    direction: PositionSide | None = None
    rows: list[Row] = field(default_factory=list)
    funding: list[Row] = field(default_factory=list)
    jfills: list[_JFill] = field(default_factory=list)
    xfills: list[Fill] = field(default_factory=list)
    bills: list[FundingBill] = field(default_factory=list)
    history: PositionHistoryRecord | None = None
    open_push: PositionPush | None = None
    seq: int = 1  # among the lives of its leg opened in the same millisecond
    listed: set[str] = field(default_factory=set)  # fill ids its close rows name
    placed: set[str] = field(default_factory=set)  # of those, placed so far

    @cached_property
    def last_close(self) -> datetime | None:  # rows are complete before the first lookup
        return _ts(self.rows[-1]["closed_at"]) if self.rows else None

    @cached_property
    def closed(self) -> bool:
        return bool(self.rows) and _dec(self.rows[-1]["size_after"]) == 0

    def covers(self, symbol: str, pos_side: str | None, ts: datetime) -> bool:
        """Does this life's window hold a fact at ``ts``? (``pos_side`` None: any leg.)"""
        if symbol != self.symbol or (pos_side is not None and pos_side != self.pos_side):
            return False
        if ts < self.opened:
            return False
        end = self.last_close if self.closed else None
        return end is None or ts <= end

    def closes(self, side: OrderSide) -> bool:
        return self.direction is not None and side is self.direction.closing_order_side

    def pending(self, ts: datetime) -> bool:
        """After the last close row: not yet carried by any row's fee/funding."""
        last = self.last_close
        return last is None or ts > last

    def journal_open_contracts(self) -> Decimal:
        base = ZERO
        if self.rows:
            last = self.rows[-1]
            size_after, cs = _dec(last["size_after"]), _dec(last["contract_size"])
            base = size_after / cs if cs else ZERO
        for f in self.jfills:
            if self.pending(f.ts):
                base += -f.contracts if self.closes(f.side) else f.contracts
        return base


class _Index:
    """Lives per (symbol, pos_side) in opening order, so a fact finds its life by bisection.

    Lives of one leg follow each other; only the two latest opened before a timestamp can hold
    it (two: a fill crossing zero closes one life at the very time the next opens).
    """

    def __init__(self, lives: Iterable[_Life]) -> None:
        self._legs: dict[tuple[str, str], list[_Life]] = {}
        self._sides: dict[str, set[str]] = {}
        for life in lives:
            self.add(life)

    def add(self, life: _Life) -> None:
        insort(self._legs.setdefault((life.symbol, life.pos_side), []), life, key=_life_order)
        self._sides.setdefault(life.symbol, set()).add(life.pos_side)

    def holders(self, symbol: str, pos_side: str | None, ts: datetime) -> list[_Life]:
        """Lives whose window holds ``ts``, earliest first (``pos_side`` None: every leg)."""
        sides = [pos_side] if pos_side is not None else sorted(self._sides.get(symbol, ()))
        found: list[_Life] = []
        for side in sides:
            seq = self._legs.get((symbol, side), [])
            i = bisect_right(seq, ts, key=lambda lf: lf.opened)
            j = i - 2  # and every life opened in the same millisecond as those two
            while j > 0 and seq[j - 1].opened == seq[j].opened:
                j -= 1
            found += [lf for lf in seq[max(0, j):i] if lf.covers(symbol, side, ts)]
        return sorted(found, key=_life_order)


# ---------------------------------------------------------------- the pure comparison


def compare(
    journal_trades: Sequence[Row],
    journal_fills: Sequence[Row],
    journal_funding: Sequence[Row],
    history: list[PositionHistoryRecord],
    exchange_fills: list[Fill],
    bills: list[FundingBill],
    open_positions: list[PositionPush],
) -> ReconcileReport:
    """Compare the journal with the exchange over one window; both sides must cover the same one
    (``reconcile_with_venue`` takes care of that)."""
    lives: dict[str, _Life] = {}

    def life_for(position_id: str, symbol: str) -> _Life:
        if position_id not in lives:
            try:
                sym, pos_side, opened_ms, seq = split_position_id(position_id)
            except ValueError:
                raise ValueError(f"journal position_id {position_id!r} is not "
                                 "symbol#pos_side#opened_ms[.seq]") from None
            opened = utc_from_ms(opened_ms)
            lives[position_id] = _Life(position_id, sym or symbol, pos_side, opened, seq=seq)
        return lives[position_id]

    for row in sorted(journal_trades, key=lambda r: _ts(r["closed_at"])):
        life = life_for(str(row["position_id"]), str(row["symbol"]))
        life.rows.append(row)
        life.direction = PositionSide(str(row["side"]))
        life.listed.update(x for x in str(row.get("fill_ids") or "").split(FILL_IDS_SEPARATOR) if x)
    for row in journal_funding:
        life_for(str(row["position_id"]), str(row["symbol"])).funding.append(row)

    index = _Index(lives.values())

    # Journal fills (in journal order within a millisecond): a fill a close row lists goes to that
    # row's life; another one to the earliest life holding its time that is not complete yet (a
    # life whose listed fills were all placed is over: lives of one leg opened in one millisecond
    # follow each other); fills no life holds open a life of their own (never reduced yet).
    listed_by = {fid: lf for lf in lives.values() for fid in lf.listed}
    for jf in sorted((_JFill.of(r) for r in journal_fills), key=lambda f: f.ts):
        owner = listed_by.get(jf.fill_id)
        found = [owner] if owner is not None else [
            lf for lf in index.holders(jf.symbol, jf.pos_side, jf.ts)
            if not (lf.closed and lf.listed and lf.listed <= lf.placed)]
        if found:
            life = found[0]
        else:
            seq = 1
            pid = position_id_for(jf.symbol, jf.pos_side, jf.ts)
            while pid in lives:  # a life of this millisecond is over: this one is the next
                seq += 1
                pid = position_id_for(jf.symbol, jf.pos_side, jf.ts, seq)
            life = life_for(pid, jf.symbol)
            index.add(life)
        if life.direction is None:
            life.direction = _direction(life.pos_side, jf.side)
        life.jfills.append(jf)
        if jf.fill_id in life.listed:
            life.placed.add(jf.fill_id)

    # An exchange fill goes to the life that journaled the same fill id: the two sides may stamp
    # one fill a few ms apart, and two lives of a leg can follow each other within that (a close
    # and the next open). The window only places fills the journal does not have.
    out: list[ReconcileRow] = []
    _place_exchange_fills(lives, index, exchange_fills, out)
    _place_bills(lives, index, bills, out)
    _match_history(lives, history, out)
    _match_open(lives, open_positions, out)
    for life in sorted(lives.values(), key=_life_order):
        out.extend(_check_life(life))
    return ReconcileReport(tuple(_sorted_rows(out)))


def _place_exchange_fills(lives: dict[str, _Life], index: _Index, exchange_fills: list[Fill],
                          out: list[ReconcileRow]) -> None:
    """Each exchange fill to its life; a fill no life holds is a "missing" row."""
    journaled_fill_life = {jf.fill_id: lf for lf in lives.values() for jf in lf.jfills}
    for xf in sorted(exchange_fills, key=lambda f: f.ts):
        owner = journaled_fill_life.get(xf.fill_id)
        found = [owner] if owner is not None else index.holders(xf.symbol, xf.pos_side, xf.ts)
        if found:
            found[0].xfills.append(xf)
        else:
            out.append(ReconcileRow(xf.symbol, _NONE, f"fill {xf.fill_id}", "missing",
                                    f"{plain(xf.contracts)} @ {plain(xf.price)}", False))


def _place_bills(lives: dict[str, _Life], index: _Index, bills: list[FundingBill],
                 out: list[ReconcileRow]) -> None:
    """Each funding bill to the open life it was charged to (the journaled one when it is open)."""
    journaled_bill_life = {str(r["bill_id"]): lf for lf in lives.values() for r in lf.funding}
    for bill in sorted(bills, key=lambda b: b.ts):
        holders = index.holders(bill.symbol, None, bill.ts)
        if not holders:
            out.append(ReconcileRow(bill.symbol, _NONE, f"funding {bill.bill_id}", "missing",
                                    plain(bill.amount), False))
            continue
        preferred = journaled_bill_life.get(bill.bill_id)
        (preferred if preferred in holders else holders[0]).bills.append(bill)


def _sorted_rows(rows: list[ReconcileRow]) -> list[ReconcileRow]:
    """Position lives in opening order per symbol; facts tied to no life last for their symbol."""
    def key(r: ReconcileRow) -> tuple[str, int, int]:
        if r.position_id == _NONE:
            return (r.symbol, 1, 0)
        return (r.symbol, 0, split_position_id(r.position_id)[2])
    return sorted(rows, key=key)  # stable: field order within a life is kept


def _match_history(
    lives: dict[str, _Life], history: list[PositionHistoryRecord], out: list[ReconcileRow]
) -> None:
    """Give each life its own positions-history record (core/confirm/history_match.py: the rule).

    Every life opened by a fill has the exchange's cTime to the millisecond, so those take their
    records first; the lives whose opening time is approximate (adopted positions) then take the
    nearest free one. Left-over records are lives the journal does not have."""
    matcher = HistoryMatcher(history, MATCH_TOLERANCE)
    ordered = [lf for lf in sorted(lives.values(), key=_life_order) if lf.direction is not None]
    for life in ordered:
        assert life.direction is not None
        life.history = matcher.exact(life.symbol, life.pos_side, life.direction, life.opened,
                                     life.seq, owner=life.position_id)
    for life in ordered:
        assert life.direction is not None
        if life.history is None:
            life.history = matcher.near(life.symbol, life.pos_side, life.direction, life.opened,
                                        owner=life.position_id)
    for h in matcher.unmatched():
        pid = position_id_for(h.symbol, h.pos_side, h.created_at)
        out.append(ReconcileRow(h.symbol, pid, "closed contracts", "missing",
                                plain(h.closed_contracts), False))


def _match_open(
    lives: dict[str, _Life], open_positions: list[PositionPush], out: list[ReconcileRow]
) -> None:
    """Each exchange open position belongs to the newest journal life on its leg still open."""
    for push in open_positions:
        if push.contracts == 0:
            continue
        candidates = [lf for lf in lives.values() if lf.symbol == push.symbol
                      and lf.pos_side == push.pos_side and not lf.closed]
        if candidates:
            max(candidates, key=_life_order).open_push = push
        else:
            opened = push.created_at or EPOCH
            out.append(ReconcileRow(push.symbol, position_id_for(push.symbol, push.pos_side, opened),
                                    "open contracts", "0", plain(abs(push.contracts)), False))


def _check_life(life: _Life) -> list[ReconcileRow]:
    rows: list[ReconcileRow] = []

    def check(name: str, journal: Decimal | int | str, exchange: Decimal | int | str | None,
              ok: bool | None = None) -> None:
        j = plain(journal) if isinstance(journal, Decimal) else str(journal)
        x = "n/a" if exchange is None else (
            plain(exchange) if isinstance(exchange, Decimal) else str(exchange))
        rows.append(ReconcileRow(life.symbol, life.position_id, name, j, x,
                                 (journal == exchange) if ok is None else ok))

    h, push = life.history, life.open_push
    # Realized PnL and fees of the whole life: positions-history, else the open position's own
    # realizedPnl (OKX: pnl + fee + fundingFee so far), else rebuilt from the exchange's fills.
    from_push = h is None and push is not None and None not in (push.realized_pnl, push.fee)
    if life.rows or h is not None or from_push:
        closing_x = [f for f in life.xfills if life.closes(f.side)]
        if life.rows or h is not None:
            check("closed contracts", sum((_dec(r["contracts_closed"]) for r in life.rows), ZERO),
                  h.closed_contracts if h else sum((f.contracts for f in closing_x), ZERO))
        pending_funding = sum((_dec(r["amount"]) for r in life.funding
                               if life.pending(_ts(r["ts"]))), ZERO)
        pending_fee = sum((f.fee for f in life.jfills if life.pending(f.ts)), ZERO)
        j_fee = sum((_dec(r["fee"]) for r in life.rows), ZERO) + pending_fee
        j_liq = sum((_dec(r["liq_penalty"]) for r in life.rows), ZERO)
        j_net = sum((_dec(r["net_pnl"]) for r in life.rows), ZERO) + pending_funding - pending_fee
        x_net: Decimal | None
        if h is not None:
            x_fee, x_liq, x_net = -h.fee, -h.liq_penalty, h.realized_pnl
        elif from_push:
            assert push is not None and push.fee is not None
            x_fee, x_liq, x_net = -push.fee, ZERO, push.realized_pnl
        else:
            x_fee = sum((f.fee for f in life.xfills), ZERO)
            x_liq = sum((f.liq_penalty for f in life.xfills), ZERO)
            pnl = [f.fill_pnl for f in closing_x]
            x_net = None if any(p is None for p in pnl) else (
                sum((p for p in pnl if p is not None), ZERO) - x_fee - x_liq
                + sum((b.amount for b in life.bills), ZERO))
        check("net pnl", j_net, x_net)
        check("fee", j_fee, x_fee)
        if j_liq or x_liq:
            check("liq penalty", j_liq, x_liq)

    if not life.closed or life.open_push is not None:
        x_open = abs(life.open_push.contracts) if life.open_push is not None else ZERO
        check("open contracts", life.journal_open_contracts(), x_open)

    j_bills = Counter(str(r["bill_id"]) for r in life.funding)
    x_bills = {b.bill_id for b in life.bills}
    check("funding count", len(life.funding), len(life.bills),
          ok=len(life.funding) == len(life.bills) and set(j_bills) == x_bills
          and all(n == 1 for n in j_bills.values()))
    check("funding sum", sum((_dec(r["amount"]) for r in life.funding), ZERO),
          sum((b.amount for b in life.bills), ZERO))

    j_ids = Counter(f.fill_id for f in life.jfills)
    x_ids = {f.fill_id for f in life.xfills}
    check("fills", len(life.jfills), len(life.xfills),
          ok=set(j_ids) == x_ids and all(n == 1 for n in j_ids.values()))
    for fid in sorted(set(j_ids) | x_ids):
        n = j_ids.get(fid, 0)
        if n != 1 or fid not in x_ids:
            check(f"fill {fid}", {0: "missing", 1: "present"}.get(n, f"{n} rows"),
                  "present" if fid in x_ids else "missing", ok=False)
    return rows


# ---------------------------------------------------------------- the I/O shell


class ReconcileVenue(Protocol):
    """What reconcile needs from a venue (OkxVenue, or a test double)."""

    async def fetch_positions(self) -> list[PositionPush]: ...
    async def fetch_fills(self, since: datetime | None) -> list[Fill]: ...
    async def fetch_positions_history(self, since: datetime | None) -> list[PositionHistoryRecord]: ...
    async def fetch_funding_bills(self, since: datetime | None) -> list[FundingBill]: ...


def _opened(position_id: str) -> datetime | None:
    try:
        return parse_position_id(position_id)[2]
    except ValueError:
        return None


def window_start(
    trades: Sequence[Row], fills: Sequence[Row], funding: Sequence[Row], since: datetime | None,
    open_positions: Iterable[PositionPush] = (),
) -> datetime | None:
    """Where both sides of the comparison start, so neither holds half a position life.

    ``since`` None: the journal's first record (exchange history from before the journal existed
    is not the journal's business). Otherwise ``since`` moved back to the opening of every life
    still active at or after it, journal lives and open exchange positions alike, until stable.
    None: an empty journal and no ``since`` (compare everything the exchange returns).
    """
    if since is None:
        times = [_ts(r["ts"]) for r in [*fills, *funding]]
        times += [t for r in trades if (t := _opened(str(r["position_id"]))) is not None]
        if not times:
            return None
        start = min(times)
    else:
        start = since.astimezone(UTC)
    opens = [p.created_at for p in open_positions if p.contracts != 0 and p.created_at]
    while True:
        active = {str(r["position_id"]) for r in trades if _ts(r["closed_at"]) >= start}
        active |= {str(r["position_id"]) for r in funding if _ts(r["ts"]) >= start}
        earliest = [t for pid in active if (t := _opened(pid)) is not None] + opens
        new = min([start, *earliest])
        if new == start:
            return start
        start = new


def _sizes(positions: Iterable[PositionPush]) -> dict[tuple[str, str], Decimal]:
    return {(p.symbol, p.pos_side): p.contracts for p in positions if p.contracts != 0}


async def reconcile_with_venue(
    venue: ReconcileVenue, journal_dir: Path, since: datetime | None = None, *,
    settle: Callable[[], Awaitable[object]] | None = None, attempts: int = 3,
    pause_s: float = 1.0,
) -> ReconcileReport:
    """Read the journal, fetch the exchange's side over the same window, compare.

    Why the retry: the account can move while reconcile reads it (a TP/SL fires between the
    journal read and the positions-history fetch), and that shows as a difference that is only
    timing. When a comparison is not clean and the open positions differ before and after it,
    the comparison is made again after ``settle`` (which lets a running engine journal what it
    has received); the last report says if the account was still moving.

    Raises JournalError / the venue's errors; ``main`` turns them into exit code 2.
    """
    report = ReconcileReport()
    for attempt in range(1, attempts + 1):
        if settle is not None:
            await settle()
        before = await venue.fetch_positions()
        report = await _compare_once(venue, journal_dir, since, before)
        if report.ok:
            return report
        if _sizes(await venue.fetch_positions()) == _sizes(before):
            return report
        if attempt < attempts:
            logger.info(f"RECONCILE the account moved during attempt {attempt}; comparing again")
            await asyncio.sleep(pause_s)
    return replace(report, moving=True)


def history_horizon(venue: object, now: datetime | None = None) -> datetime | None:
    """The oldest time the venue's history endpoints still answer for; None: no limit known.

    Why: OKX keeps three months of fills-history, positions-history and bills-archive, so the
    journal before that cannot be compared with anything and is not read (a year of journal is
    ~1,000 day files). A venue says so with a ``history_window`` timedelta attribute.
    """
    window = getattr(venue, "history_window", None)
    if not isinstance(window, timedelta):
        return None
    return (now or datetime.now(UTC)) - window


def _file_day(path: Path) -> date:
    return date.fromisoformat(path.stem.rsplit("_", 1)[1])


class _WindowReader:
    """The journal's trades, fills and funding from a day on, read one day file at a time and
    kept, so that moving the window back reads only the older files it now needs."""

    def __init__(self, journal_dir: Path) -> None:
        wanted = {schema.TRADES: "trades", schema.ORDERS: "fills", schema.FUNDING: "funding"}
        self._files = [(wanted[fam], path) for fam, path in day_files(journal_dir)
                       if fam in wanted]
        self._family = {v: k for k, v in wanted.items()}
        self._rows: dict[Path, list[Row]] = {}
        self.opened: list[Path] = []  # the day files read, in the order read (tests)

    def rows(self, first: date | None) -> tuple[list[Row], list[Row], list[Row]]:
        """(trades, fills, funding) of the day files dated ``first`` or later (all if None)."""
        out: dict[str, list[Row]] = {"trades": [], "fills": [], "funding": []}
        for kind, path in self._files:
            if first is not None and _file_day(path) < first:
                continue
            if path not in self._rows:
                self.opened.append(path)
                rows: list[Row] = list(file_rows(self._family[kind], path, True))
                if kind == "fills":
                    rows = [r for r in rows if r["event"] == FILL_EVENT]
                self._rows[path] = rows
            out[kind].extend(self._rows[path])
        return out["trades"], out["fills"], out["funding"]

    def oldest_day(self) -> date | None:
        return min((_file_day(p) for _, p in self._files), default=None)


def read_window(
    journal_dir: Path, since: datetime | None, open_positions: Iterable[PositionPush] = (),
    reader: _WindowReader | None = None,
) -> tuple[list[Row], list[Row], list[Row], datetime | None]:
    """The journal rows a comparison from ``since`` needs, and the window's start.

    ``since`` None reads every day file. Otherwise the day files from ``since``'s day on, then,
    while ``window_start`` moves the start back to the opening of a life still active at
    ``since``, the older files down to that opening: never the history before it. A row is
    never in a file dated after its own time, and a day's margin covers the window's edge.
    """
    reader = reader or _WindowReader(journal_dir)
    opens = list(open_positions)
    first = None if since is None else (since.astimezone(UTC) - timedelta(days=1)).date()
    while True:
        trades, fills, funding = reader.rows(first)
        start = window_start(trades, fills, funding, since, opens)
        if first is None or start is None:
            return trades, fills, funding, start
        need = (start - timedelta(days=1)).date()
        if need >= first:
            return trades, fills, funding, start
        first = need


async def _compare_once(
    venue: ReconcileVenue, journal_dir: Path, since: datetime | None,
    positions: list[PositionPush],
) -> ReconcileReport:
    open_positions = [p for p in positions if p.contracts != 0]
    horizon = history_horizon(venue)
    reader = _WindowReader(journal_dir)
    if horizon is not None and (since is None or since < horizon):
        oldest = reader.oldest_day()
        if since is not None or (oldest is not None and oldest < horizon.date()):
            since = horizon  # the exchange cannot answer for anything older
    trades, fills, funding, start = read_window(journal_dir, since, open_positions, reader)

    def after(ts: datetime) -> bool:
        return start is None or ts >= start

    x_fills = [f for f in await venue.fetch_fills(start) if after(f.ts)]
    history = [h for h in await venue.fetch_positions_history(start) if after(h.updated_at)]
    bills = [b for b in await venue.fetch_funding_bills(start) if after(b.ts)]
    j_trades = [r for r in trades if after(_ts(r["closed_at"]))]
    kept = {str(r["position_id"]) for r in j_trades}
    j_trades = [r for r in trades if str(r["position_id"]) in kept]  # whole lives only
    j_fills = [r for r in fills if after(_ts(r["ts"]))]
    j_funding = [r for r in funding if after(_ts(r["ts"]))]
    return compare(j_trades, j_fills, j_funding, history, x_fills, bills, open_positions)
