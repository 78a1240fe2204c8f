"""The state file's change log: what changed since the previous line, on disk before an answer leaves.

Why: a full save rewrites the whole exchange (megabytes with a long history: tens of ms), too slow
to do before every answer, and without one a SIGKILL lost orders whose fills the client had been
told. So after a request that changed the state, and before an account's push leaves, one line is
appended to ``<state file>.log`` and fsynced: each account's small parts whole (cash, positions,
open-order ids, leverage...), its records (orders, algos, fills, bills, positions-history) only
when new or changed since the previous line, and the market figures a client saw (prices, funding,
volume, the id counter). Its cost is that of the change, not of the history.

The full save (``core.sim.server``) still runs in the background; each one records the last line
it holds (``log_seq``) and the log is cut back to the lines written after it. At load the lines
after the snapshot's ``log_seq`` are applied to it in order (records are keyed, so applying one the
snapshot already holds changes nothing); a torn last line is a write a crash interrupted, whose
answer never left, and is ignored. Not in the log: the candles and the random walk's state (market
data, not anything a client was told about an order), which the full save keeps.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from loguru import logger

from core.sim import persist
from core.sim.state import Account
from core.support.safefile import UnsafeFileError, open_private, read_private, write_atomic

if TYPE_CHECKING:
    from core.sim.server import SimServer

WHOLE = ("uid", "api_key", "secret", "passphrase", "cash", "pos_mode", "u_time", "levers", "positions",
         "open_orders", "pos_ids")  # an account's parts every line holds whole (all small)
MARKET = ("prices", "funding_rates", "next_funding", "volume", "stats")


def log_path(state: Path) -> Path:
    return state.with_name(state.name + ".log")


@dataclass
class _Marks:
    """What of one account the previous line (or the load) already holds."""

    fills: int = 0
    bills: int = 0
    history: int = 0
    last_ord: str | None = None  # the newest order and algo (dicts keep insertion order)
    last_algo: str | None = None
    open_orders: set[str] = field(default_factory=set)
    live_algos: set[str] = field(default_factory=set)
    open_lives: set[int] = field(default_factory=set)
    hist_index: dict[int, int] = field(default_factory=dict)  # id(PositionHistory) -> its index


class ChangeLog:
    """The log of one state file. ``append`` before an answer; ``cut`` after a full save."""

    def __init__(self, state: Path) -> None:
        self.path = log_path(state)
        self.seq = last_seq(state)  # the last line written (or loaded)
        self._fd: int | None = None
        self._size = 0  # bytes in the file
        self._written = 0  # bytes appended in this run, and how many of them are on disk
        self._synced = 0
        self._syncing: asyncio.Future[None] | None = None
        self._marks: dict[str, _Marks] = {}
        self._funding = 0
        self._last_counts: tuple[tuple[str, int, int, int, int], ...] = ()

    def reset(self, srv: SimServer) -> None:
        """Everything ``srv`` holds now is on disk (loaded, or a fresh exchange about to be saved)."""
        self._funding = len(srv.funding_history)
        self._last_counts = self._counts(srv.exchange.accounts.values())
        self._marks = {}
        for acct in srv.exchange.accounts.values():
            m = _Marks(fills=len(acct.fills), bills=len(acct.bills), history=len(acct.pos_history),
                       last_ord=next(reversed(acct.orders), None), last_algo=next(reversed(acct.algos), None),
                       open_orders=set(acct.open_orders),
                       live_algos={i for i, a in acct.algos.items() if a.state == "live"},
                       hist_index={id(h): i for i, h in enumerate(acct.pos_history)})
            m.open_lives = self._lives(acct, m)
            self._marks[acct.uid] = m

    def moved(self, accounts: Iterable[Account]) -> bool:
        """Whether an account booked, placed or lost an order since the last line (cheap: counts)."""
        return self._counts(accounts) != self._last_counts

    @staticmethod
    def _counts(accounts: Iterable[Account]) -> tuple[tuple[str, int, int, int, int], ...]:
        return tuple((a.uid, len(a.bills), len(a.orders), len(a.open_orders), len(a.algos)) for a in accounts)

    # ------------------------------------------------------------------ writing

    def append(self, srv: SimServer) -> None:
        """One line with what changed since the previous one, written and on disk when this returns."""
        self.write(srv)
        self.sync()

    def write(self, srv: SimServer) -> int:
        """One line with what changed since the previous one, written (not yet synced); returns
        what ``durable`` must reach for it to be on disk."""
        line = self._line(srv)
        if self._fd is None:
            self._fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            self._size = os.fstat(self._fd).st_size
            dfd = os.open(self.path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(dfd)  # the new file's name is durable too
            finally:
                os.close(dfd)
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view):]
        self._size += len(line)
        self._written += len(line)
        return self._written

    @property
    def written(self) -> int:
        return self._written

    @property
    def unsynced(self) -> bool:
        return self._synced < self._written

    def sync(self) -> None:
        """Everything written is on disk when this returns (in the caller's thread)."""
        if self._fd is not None and self._synced < self._written:
            os.fdatasync(self._fd)  # the data and the file's new length: all a reader needs
        self._synced = self._written

    async def durable(self, upto: int) -> None:
        """Return once the first ``upto`` bytes written are on disk. One fdatasync, in a thread,
        serves every request whose line was written before it started (group commit): the loop
        goes on answering meanwhile, and concurrent clients share the disk's latency."""
        while self._synced < upto:
            if self._syncing is None:
                self._syncing = asyncio.ensure_future(self._sync_in_thread())
            await asyncio.shield(self._syncing)

    async def idle(self) -> None:
        """Wait for a sync in a thread to end (the file must stay open under it)."""
        while self._syncing is not None:
            await asyncio.shield(self._syncing)

    async def _sync_in_thread(self) -> None:
        target, fd = self._written, self._fd
        try:
            if fd is not None and self._synced < target:
                await asyncio.to_thread(os.fdatasync, fd)
        except OSError as exc:  # the answer still goes; the full save that follows retries
            logger.error("SIM state change not synced to {}: {}", self.path, exc.strerror or exc)
        finally:
            self._synced = max(self._synced, target)
            self._syncing = None

    def mark(self) -> tuple[int, int]:
        """(seq, bytes) of the log now: what a full save encoded at this moment holds."""
        return self.seq, self._size

    def cut(self, size: int) -> None:
        """A full save holding the first ``size`` bytes' lines is on disk: keep only the lines after."""
        assert self._syncing is None, "cut while a sync runs on the file (await idle() first)"
        if self._fd is None:  # nothing written since the last cut: any line on disk is older than the save
            self.path.unlink(missing_ok=True)
            return
        tail = b""
        if self._size > size:
            raw = read_private(self.path) or b""
            tail = raw[size:]
        os.close(self._fd)
        self._fd = None
        if tail:
            write_atomic(self.path, tail)
        else:
            self.path.unlink(missing_ok=True)
        self._size = len(tail)
        self._synced = self._written  # the tail is fsynced by write_atomic, the rest is in the save

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _line(self, srv: SimServer) -> bytes:
        self.seq += 1
        ex = srv.exchange
        new_funding = srv.funding_history[self._funding:]
        self._funding = len(srv.funding_history)
        market = persist.dump_market(srv)
        line: dict[str, Any] = {"seq": self.seq, "ids": ex.ids.last, **{k: market[k] for k in MARKET},
                                "funding_history": new_funding,
                                "accounts": [self._account(a) for a in ex.accounts.values()]}
        self._last_counts = self._counts(ex.accounts.values())
        return orjson.dumps(line, default=persist.encode_value) + b"\n"

    @staticmethod
    def _lives(acct: Account, m: _Marks) -> set[int]:
        return {m.hist_index[id(p.history)] for p in acct.positions.values()
                if p.history is not None and id(p.history) in m.hist_index}

    def _account(self, acct: Account) -> dict[str, Any]:
        m = self._marks.setdefault(acct.uid, _Marks())
        for i in range(m.history, len(acct.pos_history)):
            m.hist_index[id(acct.pos_history[i])] = i
        lives = self._lives(acct, m)
        hist = sorted(set(range(m.history, len(acct.pos_history))) | lives | m.open_lives)
        m.history, m.open_lives = len(acct.pos_history), lives

        new_orders = _since(acct.orders, m.last_ord)
        order_ids = {i for i in (*acct.open_orders, *m.open_orders, *new_orders) if i in acct.orders}
        m.last_ord = next(reversed(acct.orders), None)
        m.open_orders = set(acct.open_orders)

        new_algos = _since(acct.algos, m.last_algo)
        algo_ids = {i for i in (*m.live_algos, *new_algos) if i in acct.algos}
        m.last_algo = next(reversed(acct.algos), None)
        m.live_algos = {i for i in algo_ids if acct.algos[i].state == "live"}

        whole = persist.account_whole(acct, m.hist_index)
        # changed ones first, then the new ones in the order they came (a load appends them so)
        orders = [acct.orders[i] for i in _ordered(order_ids, new_orders)]
        out = {k: whole[k] for k in WHOLE}
        out.update({
            "orders": [persist.record(o) for o in orders],
            "orders_by_cl": {o.cl_ord_id: o.ord_id for o in orders
                             if o.cl_ord_id and acct.orders_by_cl.get(o.cl_ord_id) == o.ord_id},
            "algos": [persist.record(acct.algos[i]) for i in _ordered(algo_ids, new_algos)],
            "fills": [persist.record(f) for f in acct.fills[m.fills:]],
            "bills": [persist.record(b) for b in acct.bills[m.bills:]],
            "pos_history": [[i, persist.record(acct.pos_history[i])] for i in hist],
        })
        m.fills, m.bills = len(acct.fills), len(acct.bills)
        return out


def _since(records: dict[str, Any], last: str | None) -> list[str]:
    """The keys added to ``records`` after ``last`` (all of them when ``last`` is gone)."""
    out = []
    for key in reversed(records):
        if key == last:
            break
        out.append(key)
    return out


def _ordered(changed: set[str], new_newest_first: list[str]) -> list[str]:
    new = set(new_newest_first)
    return [i for i in changed if i not in new] + [i for i in reversed(new_newest_first) if i in changed]


# ---------------------------------------------------------------------- reading


def load(state: Path) -> dict[str, Any] | None:
    """The saved state with its log applied (None when there is no state file yet)."""
    data = persist.read(state)
    if data is None:
        return None
    path = log_path(state)
    try:
        raw = read_private(path)
    except UnsafeFileError as exc:
        raise persist.SimStateError(exc.message) from None
    except OSError as exc:
        raise persist.SimStateError(f"cannot read the simulator state log {path}: {exc.strerror or exc}") from None
    if raw:
        try:
            apply(data, raw, str(path))
        except persist.SimStateError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise persist.SimStateError(f"{path}: not a change log this version can read ({type(exc).__name__}: "
                                        f"{exc}); restore it, or move it away to start from the last full save "
                                        f"{state}") from None
    return data


def last_seq(state: Path) -> int:
    """The last line's number in the log of ``state`` (0 without one): a new exchange numbers its
    lines after it, so that no old line is ever taken for one of its own."""
    try:
        raw = read_private(log_path(state)) or b""
    except (OSError, UnsafeFileError):
        return 0
    for text in reversed(raw.split(b"\n")):
        try:
            return int(orjson.loads(text)["seq"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return 0


def apply(data: dict[str, Any], raw: bytes, source: str) -> None:
    """Apply the log's lines after the snapshot's ``log_seq`` to the snapshot ``data`` (in place)."""
    lines = raw.split(b"\n")
    base = int(data.get("log_seq", 0))
    seq = base
    merger = _Merger(data)
    for k, text in enumerate(lines):
        if not text:
            continue
        try:
            line = orjson.loads(text)
        except orjson.JSONDecodeError:
            if k == len(lines) - 1:  # the last line, no newline: torn by a crash, its answer never left
                break
            raise persist.SimStateError(f"{source}: line {k + 1} is not a change record; restore the file, or move "
                                        "it away to start from the last full save") from None
        if int(line["seq"]) <= base:
            continue
        merger.apply(line)
        seq = int(line["seq"])
    data["log_seq"] = seq


class _Merger:
    """Applies log lines to a snapshot's JSON, keeping per-account indexes of its records."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.accounts = {str(a["uid"]): a for a in data["accounts"]}
        self.index: dict[tuple[str, str], dict[Any, int]] = {}
        self.funding = {(r["instId"], r["fundingTime"]) for r in data["funding_history"]}

    def _ix(self, uid: str, kind: str, key: str) -> dict[Any, int]:
        ix = self.index.get((uid, kind))
        if ix is None:
            ix = {r[key]: i for i, r in enumerate(self.accounts[uid][kind])}
            self.index[(uid, kind)] = ix
        return ix

    def apply(self, line: dict[str, Any]) -> None:
        d = self.data
        d["ids"] = max(int(d["ids"]), int(line["ids"]))
        for k in MARKET:
            d[k].update(line[k])
        for r in line["funding_history"]:
            if (r["instId"], r["fundingTime"]) not in self.funding:
                self.funding.add((r["instId"], r["fundingTime"]))
                d["funding_history"].append(r)
        for la in line["accounts"]:
            self._account(la)

    def _account(self, la: dict[str, Any]) -> None:
        uid = str(la["uid"])
        if uid not in self.accounts:
            fresh: dict[str, Any] = {"orders": [], "orders_by_cl": {}, "algos": [], "fills": [], "bills": [],
                                     "pos_history": []}
            self.data["accounts"].append(fresh)
            self.accounts[uid] = fresh
        a = self.accounts[uid]
        a.update({k: la[k] for k in WHOLE})
        a["orders_by_cl"].update(la["orders_by_cl"])
        for kind, key in (("orders", "ord_id"), ("algos", "algo_id"), ("fills", "bill_id"), ("bills", "bill_id")):
            ix = self._ix(uid, kind, key)
            for r in la[kind]:
                if r[key] not in ix:
                    ix[r[key]] = len(a[kind])
                    a[kind].append(r)
                elif kind in ("orders", "algos"):  # a newer version of it (fills and bills never change)
                    a[kind][ix[r[key]]] = r
        for i, h in la["pos_history"]:
            if i < len(a["pos_history"]):
                a["pos_history"][i] = h
            elif i == len(a["pos_history"]):
                a["pos_history"].append(h)
            else:
                raise ValueError(f"positions-history index {i} after {len(a['pos_history'])}")
