"""The exchange's state and what is derived from it: accounts, prices, margin metrics, pushes.

The lowest layer of the simulated exchange (see ``core.sim.exchange`` for the stack): it owns the
records and computes figures from them but never changes a balance; bills and fills are written
by the layers above. Pure Decimal and no I/O.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from core.money import ZERO
from core.sim import okx_shapes as shapes
from core.sim.market import InstrumentSpec
from core.sim.okx_shapes import AcctMetrics, PosMetrics
from core.sim.params import SimError
from core.sim.state import Account, AlgoOrder, IdGen, Order, Position


@dataclass(slots=True)
class Push:
    """One WebSocket push waiting to be fanned out to the matching subscriptions."""

    channel: str
    uid: str | None
    inst_id: str | None
    data: Any  # one item: a dict, or a candle row (list of strings)
    event_type: str | None = None


class ExchangeBase:
    """Accounts, prices, margin figures and the outbox of pushes."""

    def __init__(
        self,
        specs: dict[str, InstrumentSpec],
        prices: dict[str, Decimal],
        funding_rates: dict[str, Decimal],
        *,
        clock: Callable[[], int] | None = None,
        taker_fee: Decimal = Decimal("0.0005"),
        maker_fee: Decimal = Decimal("0.0002"),
        slippage: Decimal = Decimal("0.00005"),
        spread_ticks: int = 1,
        liq_penalty_rate: Decimal | None = None,  # None: half the instrument's maintenance rate
        default_lever: Decimal = Decimal(10),
        funding_interval_ms: int = 8 * 3600 * 1000,
    ) -> None:
        self.specs = specs
        self.prices = prices  # shared with the PriceProcess: last == mark
        self.funding_rates = funding_rates
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.taker_fee = taker_fee
        self.maker_fee = maker_fee
        self.slippage = slippage
        self.spread_ticks = spread_ticks
        self.liq_penalty_rate = liq_penalty_rate
        self.default_lever = default_lever
        self.funding_interval_ms = funding_interval_ms
        now = self.clock()
        self.next_funding: dict[str, int] = {i: now + funding_interval_ms for i in specs}
        self.list_time = now
        self.ids = IdGen(now)
        self.accounts: dict[str, Account] = {}
        self.outbox: list[Push] = []
        self.listening: Callable[[str], bool] = lambda channel: True
        self.volume: dict[str, Decimal] = {i: ZERO for i in specs}

    # ------------------------------------------------------------------ accounts and prices

    def add_account(self, api_key: str, secret: str, passphrase: str, cash: Decimal,
                    uid: str | None = None) -> Account:
        # A random uid, kept with the simulator's state: it tells one simulated account from another
        # (a journal records the uid it belongs to), as OKX's uid does.
        acct = Account(uid=uid or str(secrets.randbelow(9 * 10**15) + 10**15), api_key=api_key,
                       secret=secret, passphrase=passphrase, cash=cash, u_time=self.clock())
        self.accounts[api_key] = acct
        return acct

    def spec(self, inst_id: str) -> InstrumentSpec:
        spec = self.specs.get(inst_id)
        if spec is None:
            raise SimError("51001", f"Instrument ID {inst_id} does not exist")
        return spec

    def last(self, inst_id: str) -> Decimal:
        return self.prices[inst_id]

    def mark(self, inst_id: str) -> Decimal:
        return self.prices[inst_id]

    def bid_ask(self, inst_id: str) -> tuple[Decimal, Decimal]:
        spec, last = self.specs[inst_id], self.prices[inst_id]
        half = spec.tick_sz * self.spread_ticks
        return max(last - half, spec.tick_sz), last + half

    def market_fill_px(self, inst_id: str, side: str) -> Decimal:
        """The touch plus slippage, rounded against the taker onto the tick grid."""
        spec = self.specs[inst_id]
        bid, ask = self.bid_ask(inst_id)
        if side == "buy":
            raw = ask * (1 + self.slippage)
            return (raw / spec.tick_sz).to_integral_value(ROUND_CEILING) * spec.tick_sz
        raw = bid * (1 - self.slippage)
        px = (raw / spec.tick_sz).to_integral_value(ROUND_FLOOR) * spec.tick_sz
        return max(px, spec.tick_sz)

    def lever_of(self, acct: Account, inst_id: str, mgn_mode: str) -> Decimal:
        return acct.levers.get((inst_id, mgn_mode), self.default_lever)

    # ------------------------------------------------------------------ metrics

    def slot(self, acct: Account, inst_id: str, mgn_mode: str, pos_side: str) -> Position:
        key = (inst_id, mgn_mode, pos_side)
        pos = acct.positions.get(key)
        if pos is None:
            pid_key = (inst_id, mgn_mode, pos_side)
            pos_id = acct.pos_ids.get(pid_key) or self.ids.next()
            acct.pos_ids[pid_key] = pos_id
            pos = Position(inst_id=inst_id, mgn_mode=mgn_mode, pos_side=pos_side, pos_id=pos_id,
                           lever=self.lever_of(acct, inst_id, mgn_mode))
            acct.positions[key] = pos
        return pos

    def _upl(self, p: Position) -> Decimal:
        if p.pos == 0:
            return ZERO
        return (self.mark(p.inst_id) - p.avg_px) * p.size * self.specs[p.inst_id].ct_val * p.direction_sign

    def account_metrics(self, acct: Account) -> AcctMetrics:
        cross_upl = iso_upl = imr = mmr = iso_margin = notional = iso_funding = ZERO
        cross_mmr = ZERO
        for p in acct.positions.values():
            if p.pos == 0:
                continue
            spec = self.specs[p.inst_id]
            n = p.size * spec.ct_val * self.mark(p.inst_id)
            notional += n
            u = self._upl(p)
            pm = n * spec.mmr_rate
            mmr += pm
            if p.mgn_mode == "isolated":
                iso_upl += u
                iso_margin += p.margin
                iso_funding += p.pos_funding
            else:
                cross_upl += u
                imr += n / p.lever
                cross_mmr += pm
        ord_frozen = sum((o.frozen for o in acct.open_orders.values()), ZERO)
        # isolated funding sits in the positions' margin until their lives close (see funding.py)
        cross_eq = acct.cash + iso_funding - iso_margin + cross_upl
        avail = cross_eq - imr - ord_frozen
        eq = acct.cash + iso_funding + cross_upl + iso_upl
        ratio = (cross_eq / cross_mmr).quantize(Decimal("1e-8"), ROUND_HALF_EVEN) if cross_mmr > 0 else None
        return AcctMetrics(cash=acct.cash, eq=eq, upl=cross_upl + iso_upl, cross_eq=cross_eq,
                           imr=imr, mmr=mmr, iso_margin=iso_margin, iso_eq=iso_margin + iso_upl,
                           ord_frozen=ord_frozen, avail=avail, notional=notional, mgn_ratio=ratio)

    def position_metrics(self, acct: Account, p: Position, am: AcctMetrics | None = None) -> PosMetrics:
        spec = self.specs[p.inst_id]
        mark = self.mark(p.inst_id)
        if p.pos == 0:
            return PosMetrics(mark, mark, ZERO, None, ZERO, ZERO, ZERO, None, None)
        coins = p.size * spec.ct_val
        notional = coins * mark
        upl = self._upl(p)
        mmr = notional * spec.mmr_rate
        if p.mgn_mode == "isolated":
            imr = p.margin
            cushion = p.margin
            ratio = ((p.margin + upl) / mmr).quantize(Decimal("1e-8"), ROUND_HALF_EVEN) if mmr else None
        else:
            imr = notional / p.lever
            am = am or self.account_metrics(acct)
            # The equity left for this position once every other cross position keeps its mmr.
            cushion = am.cross_eq - upl - (am.mmr - mmr - self._iso_mmr(acct))
            ratio = am.mgn_ratio
        m = spec.mmr_rate
        if p.direction_sign > 0:
            liq = (p.avg_px * coins - cushion) / (coins * (1 - m))
        else:
            liq = (cushion + p.avg_px * coins) / (coins * (1 + m))
        liq_px = liq.quantize(spec.tick_sz, ROUND_HALF_EVEN) if liq > 0 else None
        base = imr if imr else None
        upl_ratio = (upl / base).quantize(Decimal("1e-8"), ROUND_HALF_EVEN) if base else None
        return PosMetrics(mark, mark, upl, upl_ratio, imr, mmr, notional, liq_px, ratio)

    def position_item(self, acct: Account, p: Position, am: AcctMetrics | None = None, *,
                      push: bool = False) -> dict[str, Any]:
        """The OKX position item of ``p``, its closing TP/SL (closeOrderAlgo) included."""
        close_algos = [a for a in acct.algos.values()
                       if a.state == "live" and a.reduce_only and a.ord_type in ("conditional", "oco")
                       and a.inst_id == p.inst_id and a.td_mode == p.mgn_mode and a.pos_side == p.pos_side]
        return shapes.position(p, self.position_metrics(acct, p, am), self.clock(), close_algos, push=push)

    def _iso_mmr(self, acct: Account) -> Decimal:
        total = ZERO
        for p in acct.positions.values():
            if p.pos != 0 and p.mgn_mode == "isolated":
                spec = self.specs[p.inst_id]
                total += p.size * spec.ct_val * self.mark(p.inst_id) * spec.mmr_rate
        return total

    # ------------------------------------------------------------------ pushes

    def _emit(self, channel: str, uid: str | None, inst_id: str | None, data: dict[str, Any],
              event_type: str | None = None) -> None:
        self.outbox.append(Push(channel, uid, inst_id, data, event_type))

    def _emit_order(self, acct: Account, o: Order) -> None:
        if self.listening("orders"):
            self._emit("orders", acct.uid, o.inst_id, shapes.order(o, self.specs[o.inst_id].ct_val, push=True))

    def _emit_algo(self, acct: Account, a: AlgoOrder) -> None:
        if self.listening("orders-algo"):
            self._emit("orders-algo", acct.uid, a.inst_id, shapes.algo(a, self.last(a.inst_id), push=True))
        if a.reduce_only:  # OKX pushes the position when an order on it is placed or canceled: its
            p = acct.positions.get((a.inst_id, a.td_mode, a.pos_side))  # closeOrderAlgo changed
            if p is not None and p.size != 0:
                self._emit_position(acct, p)

    def _emit_position(self, acct: Account, p: Position) -> None:
        if self.listening("positions"):
            self._emit("positions", acct.uid, p.inst_id,
                       self.position_item(acct, p, push=True), "event_update")

    def emit_account(self, acct: Account) -> None:
        if self.listening("account"):
            self._emit("account", acct.uid, None, shapes.account(self.account_metrics(acct), self.clock()),
                       "event_update")

    def _emit_bp(self, acct: Account, event_type: str, positions: list[Position], trade_ids: list[str]) -> None:
        if not self.listening("balance_and_position"):
            return
        now = self.clock()
        pos_data = [{
            "avgPx": shapes.s(p.avg_px) if p.pos else "", "baseBal": "", "ccy": "USDT",
            "instId": p.inst_id, "instType": "SWAP", "mgnMode": p.mgn_mode, "nonSettleAvgPx": "",
            "pos": shapes.s(p.pos), "posCcy": "", "posId": p.pos_id, "posSide": p.pos_side,
            "quoteBal": "", "settledPnl": "", "tradeId": p.last_trade_id, "uTime": str(p.u_time or now),
        } for p in positions]
        data = {
            "pTime": str(now), "eventType": event_type,
            "balData": [{"ccy": "USDT", "cashBal": shapes.s(acct.cash), "uTime": str(now)}],
            "posData": pos_data,
            "trades": [{"instId": p.inst_id, "tradeId": t} for p, t in zip(positions, trade_ids, strict=True) if t],
        }
        self._emit("balance_and_position", acct.uid, None, data)

    def drain(self) -> list[Push]:
        out, self.outbox = self.outbox, []
        return out

