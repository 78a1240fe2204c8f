"""The simulator's state file: the whole exchange written to disk and read back at the next start.

Why: a real exchange never resets. Without this, every restart of the embedded simulator began
from the starting cash with no positions, and the engine wrote the journal's open positions as
``external`` closes at the new simulator's price with a made-up PnL. So everything the exchange
would still know after a restart is kept: accounts (uid, keys, cash, position mode, leverage),
positions (posIds included), orders, algos, fills, bills, positions-history, the funding schedule,
the price paths (prices, funding rates and each path's RNG state, so the walk goes on rather than
replaying from the seed), the candles kept, the 24 h stats and the id counter.

Format: one JSON object (``FORMAT``); every Decimal is written as ``str(d)``, which ``Decimal()``
reads back to the same sign, digits and exponent, so money round-trips exactly. Records older than
OKX's longest history window (three months) are dropped at load, so the file does not grow with
the years. Written crash-safely: a temporary file beside it, fsync, rename over, fsync the folder;
a crash leaves either the previous file or the new one, never a torn one.
"""
from __future__ import annotations

import random
import re
from dataclasses import fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from core.sim.state import Account, AlgoOrder, Bill, FillRecord, Order, Position, PositionHistory
from core.support.safefile import UnsafeFileError, read_private, write_atomic

SIM_STATE_FILE = "sim-state.json"  # the embedded simulator's exchange, beside the journal

if TYPE_CHECKING:
    from core.sim.server import SimServer

FORMAT = 1
_NUMBER_RE = re.compile(r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")  # what str(Decimal) writes
HISTORY_MS = 92 * 24 * 3600 * 1000  # OKX's longest history window (fills, bills-archive, orders)

T = TypeVar("T")


class SimStateError(ValueError):
    """The state file cannot be used; the message names it, why, and what to do."""


class _NotANumber(ValueError):
    """A money field of the state file that is no finite number (``where`` names it)."""

    def __init__(self, where: str, value: Any) -> None:
        super().__init__(where)
        self.where, self.value = where, value


MAX_SAVED_EXPONENT = 1000  # |adjusted exponent| of a saved number: anything near Decimal's limits would overflow


def _num(v: Any, where: str) -> Decimal:
    """A saved number (``str(d)`` of a Decimal) as a finite Decimal, or _NotANumber naming the field.

    Why: ``Decimal("NaN")`` loads, and then every request that touches it fails; a state file
    that was edited or damaged is refused at the start instead, naming what is wrong.
    """
    if isinstance(v, str) and _NUMBER_RE.match(v):
        d = Decimal(v)
        if not d or abs(d.adjusted()) <= MAX_SAVED_EXPONENT:
            return d
    raise _NotANumber(where, v)


# ---------------------------------------------------------------------- records


_NAMES: dict[type, tuple[tuple[str, ...], frozenset[str]]] = {}


def _spec(cls: type) -> tuple[tuple[str, ...], frozenset[str]]:
    """The field names of a record class and which of them hold Decimals (cached: saves run often)."""
    spec = _NAMES.get(cls)
    if spec is None:
        fs = fields(cls)
        spec = (tuple(f.name for f in fs), frozenset(f.name for f in fs if "Decimal" in str(f.type)))
        _NAMES[cls] = spec
    return spec


def _enc(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record as a dict; Decimals stay Decimals here and become ``str(d)`` in ``encode``."""
    names, _ = _spec(type(obj))
    return {n: getattr(obj, n) for n in names if n not in skip}


def _dec(cls: type[T], d: dict[str, Any], where: str) -> T:
    """A record from its dict: fields typed Decimal (or Decimal | None) come back as finite Decimals."""
    names, decimals = _spec(cls)
    kwargs = {n: (_num(d[n], f"{where}.{n}") if n in decimals and d[n] is not None else d[n])
              for n in names if n in d}
    return cls(**kwargs)


def _default(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)  # Decimal(str(d)) == d with the same exponent: an exact round trip
    raise TypeError(f"cannot save {type(v).__name__}")


class Encoder:
    """Turns the simulator into the state file's bytes, fast enough to run every second or two.

    Why a cache: a busy account holds tens of thousands of fills, bills and finished orders, and
    encoding each of them again at every save took most of a second. A fill or a bill never
    changes once booked, nor does a finished order or algo, so each is encoded once (an
    ``orjson.Fragment``) and reused while it is kept; what can still change is encoded each time.
    """

    def __init__(self) -> None:
        self._cache: dict[Any, orjson.Fragment] = {}
        self._next: dict[Any, orjson.Fragment] = {}

    def rec(self, key: Any, obj: Any) -> Any:
        """``obj`` encoded; ``key`` None = may still change, else what identifies this version."""
        if key is None:
            return _enc(obj)
        frag = self._cache.get(key)
        if frag is None:
            frag = orjson.Fragment(orjson.dumps(_enc(obj), default=_default))
        self._next[key] = frag
        return frag

    def encode(self, srv: SimServer) -> bytes:
        self._next = {}
        payload = orjson.dumps(dump(srv, self.rec), default=_default)
        self._cache, self._next = self._next, {}
        return payload


def _plain(key: Any, obj: Any) -> Any:
    return _enc(obj)


def record(obj: Any) -> dict[str, Any]:
    """One record (order, algo, fill, bill, position, positions-history) as saved."""
    return _enc(obj)


def encode_value(v: Any) -> Any:
    """orjson's ``default`` for saved values (Decimals)."""
    return _default(v)


def account_whole(a: Account, hist_index: dict[int, int]) -> dict[str, Any]:
    """The small parts of an account (everything but its record lists); ``hist_index`` maps a
    positions-history record (by ``id``) to its index, which a position refers to."""
    positions = []
    for p in a.positions.values():
        item = _enc(p, skip=("history",))
        item["history"] = hist_index.get(id(p.history)) if p.history is not None else None
        positions.append(item)
    return {
        "uid": a.uid, "api_key": a.api_key, "secret": a.secret, "passphrase": a.passphrase,
        "cash": str(a.cash), "pos_mode": a.pos_mode, "u_time": a.u_time,
        "levers": [[i, m, str(lv)] for (i, m), lv in a.levers.items()],
        "positions": positions,
        "open_orders": list(a.open_orders),
        "pos_ids": [[i, m, s, pid] for (i, m, s), pid in a.pos_ids.items()],
    }


def _account(a: Account, rec: Any = _plain) -> dict[str, Any]:
    hist_index = {id(h): i for i, h in enumerate(a.pos_history)}
    open_lives = {id(p.history) for p in a.positions.values() if p.history is not None}
    return {
        **account_whole(a, hist_index),
        "orders": [rec(None if o.is_open else ("o", a.uid, o.ord_id, o.state, o.u_time), o) for o in a.orders.values()],
        "orders_by_cl": dict(a.orders_by_cl),
        "algos": [rec(None if x.state == "live" else ("a", a.uid, x.algo_id, x.state, x.u_time), x)
                  for x in a.algos.values()],
        "fills": [rec(("f", a.uid, f.bill_id, f.trade_id), f) for f in a.fills],
        "bills": [rec(("b", a.uid, b.bill_id), b) for b in a.bills],
        # a life still open can change; a finished one (no position points at it) cannot
        # (the list only grows while the simulator runs, so its index tells two lives apart)
        "pos_history": [rec(None if id(h) in open_lives else ("h", a.uid, i), h) for i, h in enumerate(a.pos_history)],
    }


def _restore_account(d: dict[str, Any], cutoff: int, at: str) -> Account:
    a = Account(uid=str(d["uid"]), api_key=d["api_key"], secret=d["secret"], passphrase=d["passphrase"],
                cash=_num(d["cash"], f"{at}.cash"), pos_mode=d["pos_mode"], u_time=int(d["u_time"]))
    a.levers = {(i, m): _num(lv, f"{at}.levers[{i} {m}]") for i, m, lv in d["levers"]}
    history = [_dec(PositionHistory, h, f"{at}.pos_history[{k}]") for k, h in enumerate(d["pos_history"])]
    for k, item in enumerate(d["positions"]):
        p = _dec(Position, {k: v for k, v in item.items() if k != "history"}, f"{at}.positions[{k}]")
        idx = item.get("history")
        p.history = history[idx] if idx is not None else None
        a.positions[(p.inst_id, p.mgn_mode, p.pos_side)] = p
    open_ids = set(d["open_orders"])
    for k, item in enumerate(d["orders"]):
        o = _dec(Order, item, f"{at}.orders[{k}]")
        if o.ord_id in open_ids or o.u_time >= cutoff:
            a.orders[o.ord_id] = o
    a.open_orders = {oid: a.orders[oid] for oid in d["open_orders"]}
    a.orders_by_cl = {cl: oid for cl, oid in d["orders_by_cl"].items() if oid in a.orders}
    for k, item in enumerate(d["algos"]):
        x = _dec(AlgoOrder, item, f"{at}.algos[{k}]")
        if x.state == "live" or x.u_time >= cutoff:
            a.algos[x.algo_id] = x
    fills = (_dec(FillRecord, x, f"{at}.fills[{k}]") for k, x in enumerate(d["fills"]))
    a.fills = [f for f in fills if f.ts >= cutoff]
    bills = (_dec(Bill, x, f"{at}.bills[{k}]") for k, x in enumerate(d["bills"]))
    a.bills = [b for b in bills if b.ts >= cutoff]
    kept = {id(p.history) for p in a.positions.values()}
    a.pos_history = [h for h in history if h.u_time >= cutoff or id(h) in kept]
    a.pos_ids = {(i, m, s): pid for i, m, s, pid in d["pos_ids"]}
    return a


def _check_candles(d: dict[str, Any]) -> None:
    """The candles' numbers are finite (``CandleBook.restore`` reads them)."""
    for inst, rows in d["minutes"].items():
        for k, row in enumerate(rows):
            for n, v in zip(("o", "h", "l", "c", "vol"), row[1:], strict=False):
                _num(v, f"candles.minutes.{inst}[{k}].{n}")
    for inst, pending in d["pending"].items():
        _num(pending[0], f"candles.pending.{inst}.px")
    for inst, v in d["volume_seen"].items():
        _num(v, f"candles.volume_seen.{inst}")


# ---------------------------------------------------------------------- the whole simulator


def dump(srv: SimServer, rec: Any = _plain) -> dict[str, Any]:
    """Everything of ``srv`` that a restart must keep, as JSON values (Decimals as ``str(d)``
    once encoded; ``rec`` encodes one record, see ``Encoder``)."""
    ex, market, candles = srv.exchange, srv.market, srv.candles
    rng = {inst: [st[0], list(st[1]), st[2]] for inst, st in
           ((inst, r.getstate()) for inst, r in market.rng.items())}
    changes = getattr(srv, "changes", None)
    return {
        "format": FORMAT, "seed": srv.seed,
        "log_seq": changes.seq if changes is not None else 0,  # the change-log lines this holds
        **dump_market(srv),
        "rng": rng,
        "ids": ex.ids.last, "list_time": ex.list_time,
        "funding_history": list(srv.funding_history),
        "candles": candles.dump(),
        "accounts": [_account(a, rec) for a in ex.accounts.values()],
    }


def dump_market(srv: SimServer) -> dict[str, Any]:
    """The market figures a client sees (prices, funding, volume, 24 h stats) as saved."""
    ex, market = srv.exchange, srv.market
    return {
        "prices": {i: str(p) for i, p in market.prices.items()},
        "funding_rates": {i: str(r) for i, r in market.funding_rates.items()},
        "next_funding": dict(ex.next_funding),
        "volume": {i: str(v) for i, v in ex.volume.items()},
        "stats": {i: {k: str(v) for k, v in st.items()} for i, st in srv.stats.items()},
    }


def restore(srv: SimServer, data: dict[str, Any], source: str) -> None:
    """Put the saved exchange into ``srv`` (built fresh, not started). SimStateError if unusable."""
    try:
        if data.get("format") != FORMAT:
            raise SimStateError(f"{source}: state format {data.get('format')!r}, this version reads {FORMAT}")
        _restore(srv, data)
    except SimStateError:
        raise
    except _NotANumber as exc:
        raise SimStateError(f"{source}: field {exc.where} is {exc.value!r}, not a finite number; restore the file "
                            "from a copy, or move it away to start the exchange anew (a new account)") from None
    except (KeyError, TypeError, ValueError, IndexError, InvalidOperation, AttributeError) as exc:
        raise SimStateError(f"{source}: not a simulator state this version can read "
                            f"({type(exc).__name__}: {exc})") from None


def _restore(srv: SimServer, data: dict[str, Any]) -> None:
    ex, market = srv.exchange, srv.market
    unknown = sorted(set(data["prices"]) - set(ex.specs))
    if unknown:
        raise SimStateError(f"the state holds instruments this simulator does not list: {', '.join(unknown)}")
    cutoff = ex.clock() - HISTORY_MS
    accounts = [_restore_account(a, cutoff, f"accounts[{k}]") for k, a in enumerate(data["accounts"])]
    _check_candles(data["candles"])
    # the dicts below are shared with the price process, the hub and the REST layer: fill in place
    market.prices.update({i: _num(p, f"prices.{i}") for i, p in data["prices"].items()})
    market.funding_rates.update({i: _num(r, f"funding_rates.{i}") for i, r in data["funding_rates"].items()})
    for inst, (version, internal, gauss) in data["rng"].items():
        if inst in market.rng:
            market.rng[inst] = random.Random()
            market.rng[inst].setstate((version, tuple(internal), gauss))
    ex.ids.resume(int(data["ids"]))
    ex.list_time = int(data["list_time"])
    ex.next_funding.update({i: int(t) for i, t in data["next_funding"].items() if i in ex.specs})
    ex.volume.update({i: _num(v, f"volume.{i}") for i, v in data["volume"].items() if i in ex.specs})
    for inst, st in data["stats"].items():
        if inst in srv.stats:
            srv.stats[inst] = {k: _num(v, f"stats.{inst}.{k}") for k, v in st.items()}
    srv.funding_history[:] = [dict(r) for r in data["funding_history"] if int(r["fundingTime"]) >= cutoff]
    srv.candles.restore(data["candles"])
    ex.accounts.clear()
    ex.accounts.update({a.api_key: a for a in accounts})
    srv.last_rates = dict(market.funding_rates)


# ---------------------------------------------------------------------- the file


def read(path: Path) -> dict[str, Any] | None:
    """The saved state, None when there is no file yet; SimStateError if it cannot be used."""
    try:
        raw = read_private(path)
    except UnsafeFileError as exc:
        raise SimStateError(exc.message) from None
    except OSError as exc:
        raise SimStateError(f"cannot read the simulator state {path}: {exc.strerror or exc}") from None
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SimStateError(f"{path} is not a simulator state (invalid JSON: {exc}); restore it, or move "
                            "it away to start the exchange anew (`perpdesk sim --fresh`)") from None
    if not isinstance(data, dict):
        raise SimStateError(f"{path} is not a simulator state (not a JSON object)")
    return data


def write(path: Path, payload: bytes) -> None:
    """Replace the state file crash-safely (see ``core.support.safefile.write_atomic``)."""
    write_atomic(path, payload)


def encode(srv: SimServer) -> bytes:
    """The state file's bytes without a cache (tests, one-off saves)."""
    return orjson.dumps(dump(srv), default=_default)
