"""What every route family of the simulator's Bybit v5 face shares: symbols, categories, paging.

The face translates Bybit's requests into the exchange core's (symbol BTCUSDT -> BTC-USDT-SWAP,
coins -> contracts). Lists page with an opaque ``nextPageCursor`` (here: the offset of the next
row); the history endpoints keep Bybit's time windows (7 days by default and at most, 24 hours for
the transaction log). ``BybitFace`` holds the translation every family needs (the symbol map, the
category rule, the closed-PnL replay, the wallet and position items the REST answers and the
private stream both send); the families (bybit_market, bybit_account, bybit_positions,
bybit_orders) add their routes, and bybit_rest serves them.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from core.money import ZERO
from core.sim import bybit_shapes as by
from core.sim.candles import CandleBook
from core.sim.exchange import Exchange
from core.sim.market import PriceProcess
from core.sim.params import SimError
from core.sim.state import Account

DAY_MS = 24 * 3600 * 1000
WEEK_MS = 7 * DAY_MS


class SimHost(Protocol):
    """What the families read of the SimServer that serves them (the server itself)."""

    @property
    def exchange(self) -> Exchange: ...
    @property
    def market(self) -> PriceProcess: ...
    @property
    def candles(self) -> CandleBook: ...
    @property
    def funding_history(self) -> list[dict[str, str]]: ...
    @property
    def hub(self) -> object: ...
    def ticker_item(self, inst: str) -> dict[str, str]: ...


@runtime_checkable
class Teller(Protocol):
    """The Bybit stream hub's ``told``: an item pushed on a private topic at the next fan-out."""

    def told(self, uid: str, topic: str, item: dict[str, Any]) -> None: ...


def int_param(q: dict[str, str], name: str, default: int | None = None) -> int | None:
    v = q.get(name)
    if v in (None, ""):
        return default
    try:
        return int(str(v))
    except ValueError:
        raise SimError("10001", f"params error: {name} invalid") from None


def cursor_page(rows: list[Any], q: dict[str, str], default: int, most: int) -> tuple[list[Any], str]:
    """One page of ``rows`` (already in Bybit's order) and the cursor of the next, "" when none."""
    limit = int_param(q, "limit", default) or default
    if not 1 <= limit <= most:
        raise SimError("10001", f"params error: limit must be within [1, {most}]")
    start = 0
    if q.get("cursor"):
        try:
            start = int(q["cursor"])
        except ValueError:
            raise SimError("10001", "params error: cursor invalid") from None
    chunk = rows[start:start + limit]
    return chunk, str(start + limit) if start + limit < len(rows) else ""


def window(q: dict[str, str], now: int, span: int) -> tuple[int, int]:
    """Bybit's [startTime, endTime] rule: ``span`` back from now by default, from startTime or up to
    endTime when only one is given; both given: at most ``span`` apart."""
    start, end = int_param(q, "startTime"), int_param(q, "endTime")
    if start is None and end is None:
        return now - span, now
    if end is None:
        assert start is not None
        return start, start + span
    if start is None:
        return end - span, end
    if end < start or end - start > span:
        raise SimError("10001", f"params error: endTime - startTime must be within {span // DAY_MS} days")
    return start, end


class BybitFace:
    """The translation every route family of one SimServer's Bybit face shares."""

    def __init__(self, srv: SimHost, replays: dict[str, by.Replay]) -> None:
        self.srv = srv
        self.ex = srv.exchange
        self.symbols = by.symbol_map(self.ex.specs)
        self.replays = replays  # one closed-PnL replay cache for the whole face

    def inst(self, sym: Any, *, required: bool = True) -> str:
        sym = str(sym or "")
        if not sym:
            if required:
                raise SimError("10001", "params error: symbol is required")
            return ""
        inst = self.symbols.get(sym)
        if inst is None:
            raise SimError("10001", f"params error: symbol invalid: {sym}")
        return inst

    @staticmethod
    def linear(q: dict[str, Any]) -> bool:
        """False for the categories the simulator has no instruments of; an unknown one is refused."""
        cat = str(q.get("category") or "")
        if cat not in ("linear", "spot", "inverse", "option"):
            raise SimError("10001", "params error: category is required (linear, inverse, spot, option)")
        return cat == "linear"

    @staticmethod
    def symbol_of(inst: str) -> str:
        return by.symbol(inst)

    def replay(self, acct: Account) -> by.Replay:
        return by.replay(acct, self.ex.specs, self.replays)

    def fee_rate_of(self, maker: bool) -> Decimal:
        return self.ex.maker_fee if maker else self.ex.taker_fee

    def funding_rate_at(self, inst: str, ts: int) -> Decimal:
        """The rate of the settlement a funding bill of time ``ts`` belongs to: the latest of
        ``inst`` at or before ``ts`` (the bill may carry a later millisecond than the record)."""
        for row in reversed(self.srv.funding_history):
            if row["instId"] == inst and int(row["fundingTime"]) <= ts:
                return Decimal(row["fundingRate"])
        return self.srv.market.funding_rates[inst]

    def realised(self, acct: Account, inst: str | None = None) -> Decimal:
        """What every bill (of ``inst``) moved: realised PnL, fees and funding together."""
        return sum((b.bal_chg + b.pos_bal_chg for b in acct.bills if inst is None or b.inst_id == inst), ZERO)

    def wallet_item(self, acct: Account) -> dict[str, Any]:
        return by.wallet(self.ex.account_metrics(acct), self.realised(acct))

    def position_item(self, acct: Account, key: tuple[str, str, str], *, push: bool = False) -> dict[str, Any]:
        inst, mode, pos_side = key
        p = acct.positions.get(key)
        if p is None:
            p = self.ex.slot(acct, inst, mode, pos_side)
        tp = sl = None
        for a in acct.algos.values():
            if (a.state == "live" and a.reduce_only and a.ord_type in ("conditional", "oco") and a.inst_id == inst
                    and a.td_mode == mode and a.pos_side == pos_side):
                tp = a.tp_trigger_px if a.tp_trigger_px is not None else tp
                sl = a.sl_trigger_px if a.sl_trigger_px is not None else sl
        return by.position(p, self.ex.position_metrics(acct, p), self.ex.specs[inst],
                           lever=p.lever if p.pos else self.ex.lever_of(acct, inst, mode), tp=tp, sl=sl,
                           cum_realised=self.realised(acct, inst), seq=int(p.last_trade_id or 0), push=push)
