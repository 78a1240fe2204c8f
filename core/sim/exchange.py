"""The simulated exchange: accounts, matching, positions, margin, liquidation, funding, history.

Pure Decimal and no I/O: the server feeds it requests and prices, and drains ``outbox`` for the
WebSocket pushes. Every cash movement goes through ``_book`` which writes a bill with the exact
``balChg``, so the balance is always the starting cash plus the sum of the bills, and a position
life's bills add up to its positions-history realizedPnl (pnl + fee + fundingFee + liqPenalty).

Simplifications (documented, not hidden): mark price = last price; one maintenance rate per
instrument; market orders never partially fill; limit orders fill whole when the last price
crosses them. Liquidation closes at the mark with a penalty capped by what is left of the equity
(a gap through the bankruptcy price can leave the cash negative). A cross account below
maintenance first loses half of its largest position (``partial_liquidation``, positions-history
type 4) when that alone lifts the equity back above the maintenance margin; otherwise every cross
position is liquidated in full (type 3). There is no insurance fund or counterparty book, so ADL
never happens by itself: ``adl()`` (control endpoint ``POST /sim/v1/adl``) deleverages a position
on demand, fee-free as on OKX (category ``adl``, types 5/6, balance_and_position eventType adl).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from core.money import ZERO
from core.sim import okx_shapes as shapes
from core.sim.market import InstrumentSpec
from core.sim.okx_shapes import AcctMetrics, PosMetrics
from core.sim.state import (
    Account,
    AlgoOrder,
    Bill,
    FillRecord,
    IdGen,
    Order,
    Position,
    PositionHistory,
)

AVG_PX_STEP = Decimal("1e-12")
MARGIN_STEP = Decimal("1e-12")
CL_ORD_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")


class SimError(Exception):
    """A rejection with an OKX code; order-level ones become sCode/sMsg in a code "1" envelope."""

    def __init__(self, code: str, msg: str, http: int = 200) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.http = http


@dataclass(slots=True)
class Push:
    """One WebSocket push waiting to be fanned out to the matching subscriptions."""

    channel: str
    uid: str | None
    inst_id: str | None
    data: dict[str, Any]
    event_type: str | None = None


def _dec(v: Any, field: str) -> Decimal:
    """A request number (string or JSON number) as Decimal, or 51000 naming the field."""
    if isinstance(v, bool) or v is None or v == "":
        raise SimError("51000", f"Parameter {field} error")
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise SimError("51000", f"Parameter {field} error") from None
    if not d.is_finite():
        raise SimError("51000", f"Parameter {field} error")
    return d


def _opt_dec(v: Any, field: str) -> Decimal | None:
    return None if v is None or v == "" else _dec(v, field)


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    return str(v).lower() == "true"


def _on_grid(v: Decimal, step: Decimal) -> bool:
    return (v / step) == (v / step).to_integral_value()


def bill_kind(category: str, side: str, pos_side: str) -> tuple[str, str]:
    """OKX's (bill type, subType) of a fill, also the fills-history ``subType``.

    Why it matters: fills-history carries no ``category``, so a client that backfills after a gap
    can only tell an ADL or a liquidation from an ordinary trade by the subType. OKX numbers them
    per mode: net mode names the side (buy/sell), hedge mode names the leg that was closed.
    type 2 trade (1 buy, 2 sell); type 5 liquidation (100/101 partial close long/short, 102/103
    partial buy/sell, 104/105 full close long/short, 106/107 full buy/sell); type 9 ADL (125/126
    close long/short, 127/128 buy/sell).
    """
    buy = side == "buy"
    hedge = pos_side in ("long", "short")
    if category == "partial_liquidation":
        return "5", ("100" if pos_side == "long" else "101") if hedge else ("102" if buy else "103")
    if category == "full_liquidation":
        return "5", ("104" if pos_side == "long" else "105") if hedge else ("106" if buy else "107")
    if category == "adl":
        return "9", ("125" if pos_side == "long" else "126") if hedge else ("127" if buy else "128")
    return "2", "1" if buy else "2"


class Exchange:
    """The matching and accounting core. All public methods run synchronously and atomically."""

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
        acct = Account(uid=uid or str(400000000000 + len(self.accounts) + 1), api_key=api_key,
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

    def _slot(self, acct: Account, inst_id: str, mgn_mode: str, pos_side: str) -> Position:
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
        cross_upl = iso_upl = imr = mmr = iso_margin = notional = ZERO
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
            else:
                cross_upl += u
                imr += n / p.lever
                cross_mmr += pm
        ord_frozen = sum((o.frozen for o in acct.open_orders.values()), ZERO)
        cross_eq = acct.cash - iso_margin + cross_upl
        avail = cross_eq - imr - ord_frozen
        eq = acct.cash + cross_upl + iso_upl
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
            self._emit("orders-algo", acct.uid, a.inst_id, shapes.algo(a, self.last(a.inst_id)))

    def _emit_position(self, acct: Account, p: Position) -> None:
        if self.listening("positions"):
            self._emit("positions", acct.uid, p.inst_id,
                       shapes.position(p, self.position_metrics(acct, p), self.clock()), "event_update")

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
            "trades": [{"instId": p.inst_id, "tradeId": t} for p, t in zip(positions, trade_ids) if t],
        }
        self._emit("balance_and_position", acct.uid, None, data)

    def drain(self) -> list[Push]:
        out, self.outbox = self.outbox, []
        return out

    # ------------------------------------------------------------------ bookkeeping

    def _book(self, acct: Account, *, inst_id: str, type_: str, sub_type: str, bal_chg: Decimal,
              sz: Decimal, px: Decimal, pnl: Decimal = ZERO, fee: Decimal = ZERO, mgn_mode: str = "cross",
              ord_id: str = "", trade_id: str = "", exec_type: str = "") -> Bill:
        """The only place the cash balance changes."""
        acct.cash += bal_chg
        now = self.clock()
        acct.u_time = now
        bill = Bill(bill_id=self.ids.next(), inst_id=inst_id, type=type_, sub_type=sub_type,
                    bal_chg=bal_chg, bal=acct.cash, sz=sz, px=px, pnl=pnl, fee=fee, ts=now,
                    mgn_mode=mgn_mode, ord_id=ord_id, trade_id=trade_id, exec_type=exec_type)
        acct.bills.append(bill)
        return bill

    def _sync_history(self, acct: Account, p: Position, close_type: str | None = None,
                      trigger_px: Decimal | None = None) -> None:
        """Create or refresh the positions-history record of the current life of ``p``."""
        if p.history is None:
            if close_type is None:
                return
            p.history = PositionHistory(
                inst_id=p.inst_id, mgn_mode=p.mgn_mode, pos_side=p.pos_side, pos_id=p.pos_id,
                direction="long" if p.life_dir > 0 else "short", c_time=p.c_time,
                u_time=self.clock(), lever=p.lever, open_avg_px=p.avg_px, close_avg_px=ZERO,
                open_max_pos=ZERO, close_total_pos=ZERO, pnl=ZERO, fee=ZERO, funding_fee=ZERO,
                liq_penalty=ZERO, type=close_type)
            acct.pos_history.append(p.history)
        h = p.history
        if close_type is not None:
            h.type = close_type
            h.u_time = self.clock()
        if trigger_px is not None:
            h.trigger_px = trigger_px
        h.open_avg_px = p.avg_px
        h.lever = p.lever
        h.open_max_pos = p.open_max_pos
        h.close_total_pos = p.close_total_pos
        if p.close_total_pos:
            h.close_avg_px = (p.close_notional / p.close_total_pos).quantize(AVG_PX_STEP, ROUND_HALF_EVEN).normalize()
        h.pnl, h.fee, h.funding_fee, h.liq_penalty = p.pnl, p.fee, p.funding_fee, p.liq_penalty

    # ------------------------------------------------------------------ execution

    def _split(self, p: Position, side: str, sz: Decimal) -> tuple[Decimal, Decimal]:
        """(closing contracts, opening contracts) of a fill of ``sz`` on slot ``p``."""
        if p.pos_side == "net":
            if p.pos != 0 and (p.pos > 0) != (side == "buy"):
                close = min(sz, p.size)
                return close, sz - close
            return ZERO, sz
        closing = (p.pos_side == "long") == (side == "sell")
        return (min(sz, p.size), ZERO) if closing else (ZERO, sz)

    def _execute(self, acct: Account, o: Order, sz: Decimal, px: Decimal, exec_type: str,
                 *, event_type: str = "filled", trigger_px: Decimal | None = None) -> None:
        """Apply one fill of ``o``: position, cash (one bill), fill record, history and pushes."""
        spec = self.specs[o.inst_id]
        p = self._slot(acct, o.inst_id, o.td_mode, o.pos_side)
        now = self.clock()
        close, open_ = self._split(p, o.side, sz)
        rate = ZERO if o.category != "normal" else (self.taker_fee if exec_type == "T" else self.maker_fee)
        fee_close = -(close * spec.ct_val * px * rate)
        fee_open = -(open_ * spec.ct_val * px * rate)
        pnl = ZERO
        trade_id = self.ids.next()
        closed_life = False
        if close:
            before = p.size
            d = p.direction_sign
            pnl = (px - p.avg_px) * close * spec.ct_val * d
            p.pnl += pnl
            p.fee += fee_close
            p.close_total_pos += close
            p.close_notional += close * px
            if p.mgn_mode == "isolated":
                p.margin = (p.margin * (before - close) / before).quantize(MARGIN_STEP, ROUND_HALF_EVEN)
            p.pos = p.pos - close * d if p.pos_side == "net" else p.pos - close
            closed_life = p.pos == 0
            # positions-history type of this close (OKX keeps the latest one on the record)
            if o.category == "adl":
                ctype = "6" if closed_life else "5"
            elif o.category in ("full_liquidation", "partial_liquidation"):
                # a partial liquidation that happens to take the last contracts still is type 4
                ctype = "3" if o.category == "full_liquidation" else "4"
            else:
                ctype = "2" if closed_life else "1"
            p.u_time = now
            self._sync_history(acct, p, ctype, trigger_px)
            if closed_life:
                p.margin = ZERO
        if open_:
            if p.pos == 0:
                # a new life in this slot: fresh accumulators, same posId
                p.c_time, p.avg_px = now, px
                p.pnl = p.fee = p.funding_fee = p.liq_penalty = ZERO
                p.open_max_pos = p.close_total_pos = p.close_notional = ZERO
                p.history = None
                p.lever = self.lever_of(acct, o.inst_id, o.td_mode)
            else:
                p.avg_px = ((p.avg_px * p.size + px * open_) / (p.size + open_)).quantize(AVG_PX_STEP, ROUND_HALF_EVEN).normalize()
            p.fee += fee_open
            if p.mgn_mode == "isolated":
                p.margin += (open_ * spec.ct_val * px / p.lever).quantize(MARGIN_STEP, ROUND_HALF_EVEN)
            sign = 1 if (p.pos_side == "long" or (p.pos_side == "net" and o.side == "buy")) else -1
            p.life_dir = sign
            p.pos = p.pos + open_ * sign if p.pos_side == "net" else p.pos + open_
            p.open_max_pos = max(p.open_max_pos, p.size)
            p.u_time = now
            if p.history is not None:
                self._sync_history(acct, p)
        fee = fee_close + fee_open
        p.last_trade_id = trade_id
        bill_type, sub_type = bill_kind(o.category, o.side, o.pos_side)
        bill = self._book(acct, inst_id=o.inst_id, type_=bill_type, sub_type=sub_type,
                          bal_chg=pnl + fee, sz=sz, px=px, pnl=pnl, fee=fee, mgn_mode=o.td_mode,
                          ord_id=o.ord_id, trade_id=trade_id, exec_type=exec_type)
        o.acc_fill_sz += sz
        o.fill_notional += sz * px
        o.fee += fee
        o.pnl += pnl
        o.trade_id, o.fill_sz, o.fill_px, o.fill_fee, o.fill_pnl = trade_id, sz, px, fee, pnl
        o.fill_time, o.exec_type, o.u_time = now, exec_type, now
        o.state = "filled" if o.acc_fill_sz >= o.sz else "partially_filled"
        if not o.is_open:
            o.frozen = ZERO
            acct.open_orders.pop(o.ord_id, None)
        self.volume[o.inst_id] += sz
        acct.fills.append(FillRecord(
            inst_id=o.inst_id, trade_id=trade_id, ord_id=o.ord_id, cl_ord_id=o.cl_ord_id,
            bill_id=bill.bill_id, tag=o.tag, side=o.side, pos_side=o.pos_side, fill_px=px, fill_sz=sz,
            fee=fee, fill_pnl=pnl, exec_type=exec_type, ts=now, mark_px=self.mark(o.inst_id),
            sub_type=sub_type))
        self._emit_order(acct, o)
        self._emit_position(acct, p)
        self._emit_bp(acct, event_type, [p], [trade_id])
        if closed_life:
            self._cancel_position_algos(acct, p)
        if o.attach_algo_ords and o.state == "filled":
            self._create_attached(acct, o)

    # ------------------------------------------------------------------ orders

    def _parse_order(self, acct: Account, req: dict[str, Any]) -> Order:
        inst_id = str(req.get("instId", ""))
        if not inst_id:
            raise SimError("50014", "Parameter instId can not be empty")
        spec = self.spec(inst_id)
        side = req.get("side")
        if side not in ("buy", "sell"):
            raise SimError("51000", "Parameter side error")
        ord_type = req.get("ordType")
        if ord_type not in ("market", "limit", "post_only", "ioc", "fok"):
            raise SimError("51000", "Parameter ordType error")
        td_mode = req.get("tdMode", "cross")
        if td_mode not in ("cross", "isolated"):
            raise SimError("51000", "Parameter tdMode error")
        sz = _dec(req.get("sz"), "sz")
        if sz <= 0:
            raise SimError("51000", "Parameter sz error")
        if sz < spec.min_sz:
            raise SimError("51020", f"Order quantity must be at least the minimum size {shapes.s(spec.min_sz)}")
        if not _on_grid(sz, spec.lot_sz):
            raise SimError("51121", f"Order quantity must be a multiple of the lot size {shapes.s(spec.lot_sz)}")
        if ord_type == "market" and sz > spec.max_mkt_sz:
            raise SimError("51202", "Market order amount exceeds the maximum amount")
        px: Decimal | None = None
        if ord_type != "market":
            px = _dec(req.get("px"), "px")
            if px <= 0 or not _on_grid(px, spec.tick_sz):
                raise SimError("51000", "Parameter px error")
        pos_side = str(req.get("posSide") or "")
        if acct.pos_mode == "net_mode":
            if pos_side not in ("", "net"):
                raise SimError("51000", "Parameter posSide error")
            pos_side = "net"
        elif pos_side not in ("long", "short"):
            raise SimError("51000", "Parameter posSide error")
        cl = str(req.get("clOrdId") or "")
        if cl and not CL_ORD_ID_RE.match(cl):
            raise SimError("51000", "Parameter clOrdId error")
        if cl and cl in acct.orders_by_cl and acct.orders[acct.orders_by_cl[cl]].is_open:
            raise SimError("51016", "Duplicated client order ID")
        reduce_only = _bool(req.get("reduceOnly", False))
        if pos_side in ("long", "short") and (pos_side == "long") == (side == "sell"):
            reduce_only = True  # hedge mode: the closing side of a leg can only reduce it
        now = self.clock()
        o = Order(ord_id=self.ids.next(), cl_ord_id=cl, tag=str(req.get("tag") or ""), inst_id=inst_id,
                  side=side, pos_side=pos_side, ord_type=ord_type, td_mode=td_mode, px=px, sz=sz,
                  reduce_only=reduce_only, lever=self.lever_of(acct, inst_id, td_mode), c_time=now, u_time=now)
        attach = req.get("attachAlgoOrds")
        if attach:
            if not isinstance(attach, list):
                raise SimError("51000", "Parameter attachAlgoOrds error")
            o.attach_algo_ords = [dict(x) for x in attach if isinstance(x, dict)]
            for x in o.attach_algo_ords:
                for k in ("tpTriggerPx", "slTriggerPx"):
                    _opt_dec(x.get(k), k)
        return o

    def _check_reduce(self, acct: Account, o: Order) -> None:
        """Reduce-only: there must be a position to reduce; the size is capped at it."""
        if not o.reduce_only:
            return
        p = acct.positions.get((o.inst_id, o.td_mode, o.pos_side))
        close = self._split(p, o.side, o.sz)[0] if p is not None else ZERO
        if close == 0:
            raise SimError("51169", "Order failed because you don't have any positions in this direction "
                                    "for this contract")
        if o.sz > close:
            o.sz = close

    def _check_margin(self, acct: Account, o: Order, px: Decimal) -> Decimal:
        """Initial margin the opening part of ``o`` needs at ``px``; 51008 when it isn't there."""
        if o.reduce_only:
            return ZERO
        spec = self.specs[o.inst_id]
        p = acct.positions.get((o.inst_id, o.td_mode, o.pos_side))
        open_ = self._split(p, o.side, o.sz)[1] if p is not None else o.sz
        if open_ == 0:
            return ZERO
        notional = open_ * spec.ct_val * px
        need = notional / o.lever
        if need + notional * self.taker_fee > self.account_metrics(acct).avail:
            raise SimError("51008", "Order failed. Insufficient USDT margin in account")
        return need

    def place_order(self, acct: Account, req: dict[str, Any], *, source: str = "", algo: AlgoOrder | None = None) -> Order:
        """Validate, accept and (if marketable) fill one order. Raises SimError on rejection."""
        o = self._parse_order(acct, req)
        o.source = source
        if algo is not None:
            o.algo_id, o.algo_cl_ord_id = algo.algo_id, algo.algo_cl_ord_id
        self._check_reduce(acct, o)
        bid, ask = self.bid_ask(o.inst_id)
        if o.ord_type == "market":
            px = self.market_fill_px(o.inst_id, o.side)
            self._check_margin(acct, o, px)
            self._register(acct, o)
            self._execute(acct, o, o.sz, px, "T")
        else:
            assert o.px is not None
            crosses = (o.side == "buy" and o.px >= ask) or (o.side == "sell" and o.px <= bid)
            if crosses and o.ord_type != "post_only":
                px = ask if o.side == "buy" else bid
                self._check_margin(acct, o, px)
                self._register(acct, o)
                self._execute(acct, o, o.sz, px, "T")
            elif o.ord_type in ("ioc", "fok") or (crosses and o.ord_type == "post_only"):
                self._register(acct, o)
                o.state, o.cancel_source = "canceled", "20" if o.ord_type == "post_only" else "14"
                acct.open_orders.pop(o.ord_id, None)
                self._emit_order(acct, o)
            else:
                o.frozen = self._check_margin(acct, o, o.px)
                self._register(acct, o)
                self._emit_order(acct, o)
        self.emit_account(acct)
        return o

    def _register(self, acct: Account, o: Order) -> None:
        acct.orders[o.ord_id] = o
        acct.open_orders[o.ord_id] = o
        if o.cl_ord_id:
            acct.orders_by_cl[o.cl_ord_id] = o.ord_id
        if len(acct.orders) > 20000:
            self._prune(acct)

    @staticmethod
    def _prune(acct: Account) -> None:
        """Keep memory bounded in long demos: forget the oldest finished orders."""
        done = [oid for oid, o in acct.orders.items() if not o.is_open]
        for oid in done[: len(done) // 2]:
            o = acct.orders.pop(oid)
            if acct.orders_by_cl.get(o.cl_ord_id) == oid:
                del acct.orders_by_cl[o.cl_ord_id]

    def find_order(self, acct: Account, inst_id: str, ord_id: str = "", cl_ord_id: str = "") -> Order:
        if not ord_id and not cl_ord_id:
            raise SimError("51003", "Either client order ID or order ID is required")
        oid = ord_id or acct.orders_by_cl.get(cl_ord_id, "")
        o = acct.orders.get(oid)
        if o is None or (inst_id and o.inst_id != inst_id):
            raise SimError("51603", "Order does not exist")
        return o

    def cancel_order(self, acct: Account, inst_id: str, ord_id: str = "", cl_ord_id: str = "") -> Order:
        try:
            o = self.find_order(acct, inst_id, ord_id, cl_ord_id)
        except SimError as e:
            if e.code == "51603":
                raise SimError("51400", "Order cancellation failed as the order does not exist") from None
            raise
        if not o.is_open:
            code = "51401" if o.state == "canceled" else "51402"
            raise SimError(code, "Order has been canceled" if code == "51401" else "Order has been filled")
        self._cancel(acct, o, "1")
        self.emit_account(acct)
        return o

    def _cancel(self, acct: Account, o: Order, source: str) -> None:
        o.state, o.cancel_source, o.frozen, o.u_time = "canceled", source, ZERO, self.clock()
        acct.open_orders.pop(o.ord_id, None)
        o.trade_id = ""
        self._emit_order(acct, o)

    # ------------------------------------------------------------------ algo orders

    def place_algo(self, acct: Account, req: dict[str, Any], attached_to: str = "") -> AlgoOrder:
        inst_id = str(req.get("instId", ""))
        spec = self.spec(inst_id)
        side = req.get("side")
        if side not in ("buy", "sell"):
            raise SimError("51000", "Parameter side error")
        ord_type = req.get("ordType")
        if ord_type not in ("conditional", "oco", "trigger"):
            raise SimError("51000", "Parameter ordType error")
        td_mode = req.get("tdMode", "cross")
        if td_mode not in ("cross", "isolated"):
            raise SimError("51000", "Parameter tdMode error")
        close_fraction = str(req.get("closeFraction") or "")
        sz = ZERO
        if close_fraction != "1":
            sz = _dec(req.get("sz"), "sz")
            if sz <= 0 or not _on_grid(sz, spec.lot_sz):
                raise SimError("51121", f"Order quantity must be a multiple of the lot size {shapes.s(spec.lot_sz)}")
            if sz < spec.min_sz:
                raise SimError("51020", "Order quantity below the minimum size")
        pos_side = str(req.get("posSide") or "")
        if acct.pos_mode == "net_mode":
            pos_side = "net"
        elif pos_side not in ("long", "short"):
            raise SimError("51000", "Parameter posSide error")
        now = self.clock()
        cl = str(req.get("algoClOrdId") or req.get("clOrdId") or "")
        a = AlgoOrder(algo_id=self.ids.next(), algo_cl_ord_id=cl, cl_ord_id=str(req.get("clOrdId") or ""),
                      tag=str(req.get("tag") or ""), inst_id=inst_id, side=side, pos_side=pos_side,
                      ord_type=ord_type, td_mode=td_mode, sz=sz,
                      reduce_only=_bool(req.get("reduceOnly", False)) or ord_type != "trigger" and close_fraction == "1",
                      lever=self.lever_of(acct, inst_id, td_mode), c_time=now, u_time=now,
                      close_fraction=close_fraction, attached_to=attached_to)
        last = self.last(inst_id)
        if ord_type == "trigger":
            a.trigger_px = _dec(req.get("triggerPx"), "triggerPx")
            a.order_px = _dec(req.get("orderPx", "-1"), "orderPx")
            a.trigger_px_type = str(req.get("triggerPxType") or "last")
            a.trigger_up = a.trigger_px >= last
        else:
            a.tp_trigger_px = _opt_dec(req.get("tpTriggerPx"), "tpTriggerPx")
            a.sl_trigger_px = _opt_dec(req.get("slTriggerPx"), "slTriggerPx")
            if a.tp_trigger_px is None and a.sl_trigger_px is None:
                raise SimError("51000", "Parameter tpTriggerPx or slTriggerPx required")
            if a.tp_trigger_px is not None:
                a.tp_ord_px = _dec(req.get("tpOrdPx", "-1"), "tpOrdPx")
                a.tp_trigger_px_type = str(req.get("tpTriggerPxType") or "last")
            if a.sl_trigger_px is not None:
                a.sl_ord_px = _dec(req.get("slOrdPx", "-1"), "slOrdPx")
                a.sl_trigger_px_type = str(req.get("slTriggerPxType") or "last")
            if ord_type == "conditional" and a.tp_trigger_px is not None and a.sl_trigger_px is not None:
                a.ord_type = "oco"
            # OKX refuses a TP/SL that would fire at once (51277/51279 family).
            buy = side == "buy"
            if a.tp_trigger_px is not None and (a.tp_trigger_px >= last if buy else a.tp_trigger_px <= last):
                raise SimError("51279" if not buy else "51277",
                               "TP trigger price must be on the profit side of the last price")
            if a.sl_trigger_px is not None and (a.sl_trigger_px <= last if buy else a.sl_trigger_px >= last):
                raise SimError("51280", "SL trigger price must be on the loss side of the last price")
        acct.algos[a.algo_id] = a
        self._emit_algo(acct, a)
        return a

    def cancel_algo(self, acct: Account, algo_id: str, inst_id: str = "") -> AlgoOrder:
        a = acct.algos.get(algo_id)
        if a is None or (inst_id and a.inst_id != inst_id):
            raise SimError("51603", "Order does not exist")
        if a.state != "live":
            raise SimError("51400", "Algo order cannot be canceled: it is no longer live")
        a.state, a.u_time = "canceled", self.clock()
        self._emit_algo(acct, a)
        return a

    def _create_attached(self, acct: Account, o: Order) -> None:
        """attachAlgoOrds of an entry order become live TP/SL once the entry has filled."""
        for x in o.attach_algo_ords:
            req = {"instId": o.inst_id, "side": "sell" if o.side == "buy" else "buy", "ordType": "conditional",
                   "tdMode": o.td_mode, "sz": shapes.s(o.acc_fill_sz), "reduceOnly": True,
                   "posSide": o.pos_side if o.pos_side != "net" else "",
                   "algoClOrdId": x.get("attachAlgoClOrdId", ""), "tag": o.tag}
            for k in ("tpTriggerPx", "tpOrdPx", "tpTriggerPxType", "slTriggerPx", "slOrdPx", "slTriggerPxType"):
                if x.get(k) not in (None, ""):
                    req[k] = x[k]
            try:
                self.place_algo(acct, req, attached_to=o.ord_id)
            except SimError:
                pass  # a TP/SL already through the price: OKX drops it too (the entry stands)
        o.attach_algo_ords = []

    def _cancel_position_algos(self, acct: Account, p: Position) -> None:
        """A flat position takes its reduce-only TP/SL with it (as OKX does for position TP/SL)."""
        for a in acct.algos.values():
            if (a.state == "live" and a.ord_type in ("conditional", "oco") and a.reduce_only
                    and a.inst_id == p.inst_id and a.td_mode == p.mgn_mode and a.pos_side == p.pos_side):
                a.state, a.u_time = "canceled", self.clock()
                self._emit_algo(acct, a)

    def _fire(self, acct: Account, a: AlgoOrder, actual_side: str, trigger: Decimal, ord_px: Decimal | None) -> None:
        a.state, a.actual_side, a.trigger_time, a.u_time = "effective", actual_side, self.clock(), self.clock()
        a.actual_px = trigger
        sz = a.sz
        if a.close_fraction == "1":
            p = acct.positions.get((a.inst_id, a.td_mode, a.pos_side))
            sz = p.size if p is not None else ZERO
        a.actual_sz = sz
        market = ord_px is None or ord_px == -1
        req: dict[str, Any] = {"instId": a.inst_id, "side": a.side, "ordType": "market" if market else "limit",
                               "tdMode": a.td_mode, "sz": shapes.s(sz), "reduceOnly": a.reduce_only,
                               "posSide": a.pos_side if a.pos_side != "net" else "", "tag": a.tag}
        if not market:
            req["px"] = shapes.s(ord_px)
        try:
            o = self.place_order(acct, req, source="6" if a.ord_type == "trigger" else "7", algo=a)
            a.ord_id = o.ord_id
        except SimError:
            a.state = "order_failed"
        self._emit_algo(acct, a)

    # ------------------------------------------------------------------ positions and settings

    def close_position(self, acct: Account, inst_id: str, mgn_mode: str, pos_side: str = "",
                       cl_ord_id: str = "", tag: str = "") -> Order:
        """Market-closes the whole position; the closing order carries the caller's clOrdId from the
        start, so its pushes and fills-history tell whose close it was (as on OKX)."""
        self.spec(inst_id)
        if mgn_mode not in ("cross", "isolated"):
            raise SimError("51000", "Parameter mgnMode error")
        if acct.pos_mode == "net_mode":
            pos_side = "net"
        elif pos_side not in ("long", "short"):
            raise SimError("51000", "Parameter posSide error")
        p = acct.positions.get((inst_id, mgn_mode, pos_side))
        if p is None or p.pos == 0:
            raise SimError("51023", "Position does not exist")
        side = "sell" if p.direction_sign > 0 else "buy"
        return self.place_order(acct, {"instId": inst_id, "side": side, "ordType": "market", "tdMode": mgn_mode,
                                       "sz": shapes.s(p.size), "reduceOnly": True, "clOrdId": cl_ord_id,
                                       "tag": tag, "posSide": "" if pos_side == "net" else pos_side})

    def set_leverage(self, acct: Account, inst_id: str, mgn_mode: str, lever: Any) -> Decimal:
        spec = self.spec(inst_id)
        lv = _dec(lever, "lever")
        if lv < 1 or lv > spec.max_lever:
            raise SimError("51000", f"Parameter lever error: 1 to {spec.max_lever}")
        if mgn_mode not in ("cross", "isolated"):
            raise SimError("51000", "Parameter mgnMode error")
        acct.levers[(inst_id, mgn_mode)] = lv
        for p in acct.positions.values():
            if p.inst_id == inst_id and p.mgn_mode == mgn_mode:
                p.lever = lv
                if p.pos != 0 and mgn_mode == "isolated":
                    p.margin = (p.size * spec.ct_val * p.avg_px / lv).quantize(MARGIN_STEP, ROUND_HALF_EVEN)
                if p.pos != 0:
                    self._emit_position(acct, p)
        self.emit_account(acct)
        return lv

    def set_position_mode(self, acct: Account, mode: str) -> None:
        if mode not in ("net_mode", "long_short_mode"):
            raise SimError("51000", "Parameter posMode error")
        if mode == acct.pos_mode:
            return
        if any(p.pos != 0 for p in acct.positions.values()) or bool(acct.open_orders):
            raise SimError("59000", "Settings failed. Close any open positions or orders before modifying settings")
        acct.pos_mode = mode

    # ------------------------------------------------------------------ market events

    def on_price(self, inst_id: str) -> None:
        """After a price move: fire algos, fill crossed limit orders, then liquidate."""
        last = self.last(inst_id)
        for acct in self.accounts.values():
            for a in [a for a in acct.algos.values() if a.state == "live" and a.inst_id == inst_id]:
                if a.state != "live":
                    continue
                px = last if a.tp_trigger_px_type == "last" else self.mark(inst_id)
                if a.ord_type == "trigger":
                    assert a.trigger_px is not None
                    if (last >= a.trigger_px) if a.trigger_up else (last <= a.trigger_px):
                        self._fire(acct, a, "", a.trigger_px, a.order_px)
                    continue
                sell = a.side == "sell"
                tp, sl = a.tp_trigger_px, a.sl_trigger_px
                if tp is not None and ((px >= tp) if sell else (px <= tp)):
                    self._fire(acct, a, "tp", tp, a.tp_ord_px)
                    continue
                px = last if a.sl_trigger_px_type == "last" else self.mark(inst_id)
                if sl is not None and ((px <= sl) if sell else (px >= sl)):
                    self._fire(acct, a, "sl", sl, a.sl_ord_px)
            for o in [o for o in acct.open_orders.values() if o.inst_id == inst_id]:
                if not o.is_open:
                    continue
                assert o.px is not None
                if (o.side == "buy" and last <= o.px) or (o.side == "sell" and last >= o.px):
                    self._fill_resting(acct, o)
            self._check_liquidation(acct)

    def _fill_resting(self, acct: Account, o: Order) -> None:
        if o.reduce_only:
            p = acct.positions.get((o.inst_id, o.td_mode, o.pos_side))
            close = self._split(p, o.side, o.remaining)[0] if p is not None else ZERO
            if close == 0:
                self._cancel(acct, o, "31")
                return
            if close < o.remaining:
                o.sz = o.acc_fill_sz + close
        o.frozen = ZERO
        self._execute(acct, o, o.remaining, o.px or self.last(o.inst_id), "M")
        self.emit_account(acct)

    def check_all(self) -> None:
        """Liquidation sweep over every account (after funding or a leverage change)."""
        for acct in self.accounts.values():
            self._check_liquidation(acct)

    def _check_liquidation(self, acct: Account) -> None:
        for p in list(acct.positions.values()):
            if p.pos != 0 and p.mgn_mode == "isolated":
                pm = self.position_metrics(acct, p)
                if p.margin + pm.upl <= pm.mmr:
                    self._liquidate(acct, [(p, p.size)], p.margin + pm.upl)
        cross = [p for p in acct.positions.values() if p.pos != 0 and p.mgn_mode == "cross"]
        if cross:
            am = self.account_metrics(acct)
            cross_mmr = am.mmr - self._iso_mmr(acct)
            if am.cross_eq <= cross_mmr:
                tier = self._partial_tier(cross, am.cross_eq, cross_mmr)
                if tier is not None:
                    self._liquidate(acct, [tier], am.cross_eq, category="partial_liquidation")
                else:
                    self._liquidate(acct, [(p, p.size) for p in cross], am.cross_eq)

    def _penalty_rate(self, inst_id: str) -> Decimal:
        return self.liq_penalty_rate if self.liq_penalty_rate is not None else self.specs[inst_id].mmr_rate / 2

    def _partial_tier(self, cross: list[Position], cross_eq: Decimal,
                      cross_mmr: Decimal) -> tuple[Position, Decimal] | None:
        """(position, contracts) when liquidating half of the largest cross position is enough.

        OKX reduces a large position in tiers rather than closing it all at once; the simulator's
        single tier is "half of the position with the largest maintenance margin". Closing at the
        mark moves its uPnL into cash unchanged and a liquidation fill pays no fee, so afterwards
        the cross equity is ``cross_eq - penalty`` and the maintenance margin ``cross_mmr - mmr of
        the half``; the half is taken only if that leaves the equity strictly above it (otherwise
        the very next check would liquidate again, and a full liquidation is the honest outcome).
        """
        p = max(cross, key=lambda q: q.size * self.specs[q.inst_id].ct_val * self.mark(q.inst_id)
                * self.specs[q.inst_id].mmr_rate)
        spec = self.specs[p.inst_id]
        half = (p.size / 2 / spec.lot_sz).to_integral_value(ROUND_FLOOR) * spec.lot_sz
        if half < spec.min_sz or half >= p.size:
            return None
        notional = half * spec.ct_val * self.mark(p.inst_id)
        penalty = notional * self._penalty_rate(p.inst_id)
        if cross_eq - penalty > cross_mmr - notional * spec.mmr_rate:
            return p, half
        return None

    def _liquidate(self, acct: Account, closes: list[tuple[Position, Decimal]], equity: Decimal,
                   category: str = "full_liquidation") -> None:
        """Close ``(position, contracts)`` at the mark; the penalty takes what is left, up to the rate.

        Open orders of the margin mode go first (OKX cancels them before liquidating, which also
        frees their reserved margin).
        """
        mgn_mode = closes[0][0].mgn_mode
        insts = {p.inst_id for p, _ in closes}
        for o in list(acct.open_orders.values()):
            if o.td_mode == mgn_mode and (mgn_mode == "cross" or o.inst_id in insts):
                self._cancel(acct, o, "3")
        remaining = equity
        for p, sz in closes:
            spec = self.specs[p.inst_id]
            mark = self.mark(p.inst_id)
            notional = sz * spec.ct_val * mark
            penalty = min(notional * self._penalty_rate(p.inst_id), max(remaining, ZERO))
            remaining -= penalty
            side = "sell" if p.direction_sign > 0 else "buy"
            now = self.clock()
            o = Order(ord_id=self.ids.next(), cl_ord_id="", tag="", inst_id=p.inst_id, side=side,
                      pos_side=p.pos_side, ord_type="market", td_mode=p.mgn_mode, px=None, sz=sz,
                      reduce_only=True, lever=p.lever, c_time=now, u_time=now, category=category)
            self._register(acct, o)
            if penalty:
                p.liq_penalty -= penalty
                o.liq_penalty = -penalty
                self._book(acct, inst_id=p.inst_id, type_="5", sub_type="109", bal_chg=-penalty,
                           sz=sz, px=mark, fee=ZERO, mgn_mode=p.mgn_mode, ord_id=o.ord_id)
            self._execute(acct, o, sz, mark, "T", event_type="liquidation", trigger_px=mark)
        self.emit_account(acct)

    def adl(self, acct: Account, inst_id: str, sz: Any = None, px: Any = None, *,
            mgn_mode: str = "", pos_side: str = "") -> Order:
        """Auto-deleverage ``sz`` contracts (None or "all": the whole position) at ``px`` (None: mark).

        Why it exists: ADL closes a profitable position when the insurance fund cannot absorb a
        bankrupt counterparty; the simulator has neither, so tests and demos trigger it. As on
        OKX the close is a fee-free fill of category ``adl``, balance_and_position says
        eventType ``adl``, positions-history records type 5 (position remains) or 6 (closed), and
        the cash moves by exactly the price PnL of the fill (one type-9 bill).
        """
        spec = self.spec(inst_id)
        open_ = [p for p in acct.positions.values() if p.inst_id == inst_id and p.pos != 0
                 and (not mgn_mode or p.mgn_mode == mgn_mode)
                 and (not pos_side or p.pos_side == pos_side)]
        if not open_:
            raise SimError("51023", "Position does not exist")
        if len(open_) > 1:
            raise SimError("51000", "Parameter mgnMode/posSide required: more than one position on " + inst_id)
        p = open_[0]
        if sz is None or sz == "" or str(sz).lower() == "all":
            contracts = p.size
        else:
            contracts = _dec(sz, "sz")
            if contracts <= 0 or contracts > p.size or not _on_grid(contracts, spec.lot_sz):
                raise SimError("51000", f"Parameter sz error: 0 < sz <= {shapes.s(p.size)} on the lot grid")
        fill_px = self.mark(inst_id) if px is None or px == "" else _dec(px, "px")
        if fill_px <= 0 or not _on_grid(fill_px, spec.tick_sz):
            raise SimError("51000", "Parameter px error")
        now = self.clock()
        o = Order(ord_id=self.ids.next(), cl_ord_id="", tag="", inst_id=inst_id,
                  side="sell" if p.direction_sign > 0 else "buy", pos_side=p.pos_side, ord_type="market",
                  td_mode=p.mgn_mode, px=None, sz=contracts, reduce_only=True, lever=p.lever,
                  c_time=now, u_time=now, category="adl")
        self._register(acct, o)
        self._execute(acct, o, contracts, fill_px, "T", event_type="adl", trigger_px=fill_px)
        self.emit_account(acct)
        # a fill away from the mark moves the equity; keep the account's margin invariant
        self._check_liquidation(acct)
        return o

    def settle_funding(self, inst_id: str, rate: Decimal | None = None, *, scheduled: bool = False) -> list[Bill]:
        """Settle funding on every open position in ``inst_id``: one bill per position.

        amount = -direction x coins x mark x rate: longs pay shorts when the rate is positive.
        """
        self.spec(inst_id)
        rate = self.funding_rates[inst_id] if rate is None else rate
        mark = self.mark(inst_id)
        bills: list[Bill] = []
        for acct in self.accounts.values():
            touched: list[Position] = []
            for p in acct.positions.values():
                if p.inst_id != inst_id or p.pos == 0:
                    continue
                coins = p.size * self.specs[inst_id].ct_val
                amount = -p.direction_sign * coins * mark * rate
                bill = self._book(acct, inst_id=inst_id, type_="8", sub_type="173" if amount < 0 else "174",
                                  bal_chg=amount, sz=p.size, px=mark, mgn_mode=p.mgn_mode)
                bills.append(bill)
                p.funding_fee += amount
                if p.mgn_mode == "isolated":
                    p.margin = max(p.margin + amount, ZERO)
                p.u_time = bill.ts
                self._sync_history(acct, p)
                touched.append(p)
            for p in touched:
                self._emit_position(acct, p)
            if touched:
                self._emit_bp(acct, "funding_fee", touched, [""] * len(touched))
                self.emit_account(acct)
                self._check_liquidation(acct)
        if scheduled:
            self.next_funding[inst_id] = self.clock() + self.funding_interval_ms
        return bills
