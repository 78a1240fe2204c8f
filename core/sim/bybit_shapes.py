"""Bybit v5 shapes of the simulated exchange's records (the Bybit face; OKX's are in okx_shapes).

The exchange core counts OKX contracts (``ctVal`` coins each); Bybit's linear USDT perpetuals count
coins (contracts = coins), so every quantity is converted here and nowhere else: ``qty = sz x ctVal``.
Signs follow Bybit: ``execFee``, ``cumExecFee``, ``openFee`` and ``closeFee`` are positive when paid,
the core's are negative when paid (OKX's convention).

Closed PnL is one record per CLOSING ORDER, as Bybit's /v5/position/closed-pnl documents it. It is
derived by replaying the account's fills (``Replay``), with this arithmetic (written down because
Bybit's pages give the fields, not the formula):

- ``execPnl`` of an execution = (exit price - entry average) x closed coins x direction: gross, without
  fees and funding, as Bybit says it matches the transaction log's ``cashFlow``;
- ``closeFee`` = the fees of the closing part of the order's executions (a fill that flips a position
  splits its fee by quantity between its closing and opening parts);
- ``openFee`` = the position's opening fees attributed to the closed coins (pro rata of the size);
- ``closedPnl = sum(execPnl) - openFee - closeFee``. Funding is not in it: funding has its own rows
  (execType ``Funding`` executions and ``SETTLEMENT`` transaction-log rows).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from core.money import ZERO
from core.sim.market import InstrumentSpec
from core.sim.okx_shapes import AcctMetrics, PosMetrics, s
from core.sim.state import Account, AlgoOrder, Bill, FillRecord, Order, Position

FEE_STEP = Decimal("1e-8")
PRICE_STEP = Decimal("1e-8")
CATEGORY = "linear"
COIN = "USDT"


def symbol(inst_id: str) -> str:
    """BTC-USDT-SWAP -> BTCUSDT."""
    return inst_id.removesuffix("-SWAP").replace("-", "")


def symbol_map(specs: Iterable[str]) -> dict[str, str]:
    """Bybit symbol -> the core's instrument id."""
    return {symbol(i): i for i in specs}


def qty(sz: Decimal, spec: InstrumentSpec) -> str:
    """Contracts of the core as Bybit coins."""
    return s((sz * spec.ct_val).normalize() if sz else ZERO)


def side(okx_side: str) -> str:
    return "Buy" if okx_side == "buy" else "Sell"


def position_idx(pos_side: str) -> int:
    return {"long": 1, "short": 2}.get(pos_side, 0)


def _q(v: Decimal, step: Decimal = FEE_STEP) -> Decimal:
    return v.quantize(step, ROUND_HALF_EVEN).normalize() if v else ZERO


KLINE_BARS = {"1": "1m", "3": "3m", "5": "5m", "15": "15m", "30": "30m", "60": "1H", "120": "2H",
              "240": "4H", "360": "6H", "720": "12H", "D": "1D"}  # Bybit interval -> the core's bar


def kline(row: list[str], interval: str, now: int) -> dict[str, Any]:
    """A kline stream item from the core's candle row [ts, o, h, l, c, contracts, coins, quote, confirm]."""
    start = int(row[0])
    span = 1440 * 60_000 if interval == "D" else int(interval) * 60_000
    return {"start": start, "end": start + span - 1, "interval": interval, "open": row[1], "close": row[4],
            "high": row[2], "low": row[3], "volume": row[6], "turnover": row[7], "confirm": row[8] == "1",
            "timestamp": now}


def instrument(spec: InstrumentSpec, launch_ms: int, funding_interval_min: int) -> dict[str, Any]:
    """An instruments-info item of a linear perpetual."""
    step = spec.lot_sz * spec.ct_val
    decimals = max(0, -spec.tick_sz.normalize().as_tuple().exponent)  # type: ignore[operator]
    return {
        "symbol": symbol(spec.inst_id), "symbolId": 0, "contractType": "LinearPerpetual", "status": "Trading",
        "baseCoin": spec.base, "quoteCoin": spec.settle_ccy, "launchTime": str(launch_ms), "deliveryTime": "0",
        "deliveryFeeRate": "", "priceScale": str(decimals),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": s(Decimal(spec.max_lever)), "leverageStep": "0.01"},
        "priceFilter": {"minPrice": s(spec.tick_sz), "maxPrice": s(spec.tick_sz * 10**9), "tickSize": s(spec.tick_sz)},
        "lotSizeFilter": {"maxOrderQty": qty(spec.max_lmt_sz, spec), "minOrderQty": qty(spec.min_sz, spec),
                          "qtyStep": s(step.normalize()), "postOnlyMaxOrderQty": qty(spec.max_lmt_sz, spec),
                          "maxMktOrderQty": qty(spec.max_mkt_sz, spec), "minNotionalValue": "5"},
        "unifiedMarginTrade": True, "fundingInterval": funding_interval_min, "settleCoin": spec.settle_ccy,
        "copyTrading": "none", "upperFundingRate": "0.0075", "lowerFundingRate": "-0.0075",
        "isPreListing": False, "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"}, "symbolType": "",
    }


def wallet(m: AcctMetrics, realised: Decimal) -> dict[str, Any]:
    """The UNIFIED account of wallet-balance and of the wallet stream: one coin, USDT.

    walletBalance is the cash; equity adds the unrealised PnL; realised = what all bills moved.
    """
    im = m.imr + m.iso_margin
    avail = max(m.avail, ZERO)
    margin_bal = m.cash + m.upl
    im_rate = s(_q(im / margin_bal, Decimal("1e-4"))) if margin_bal > 0 and im else "0"
    mm_rate = s(_q(m.mmr / margin_bal, Decimal("1e-4"))) if margin_bal > 0 and m.mmr else "0"
    coin = {
        "coin": COIN, "equity": s(m.eq), "usdValue": s(m.eq), "walletBalance": s(m.cash),
        "availableToWithdraw": s(avail), "availableToBorrow": "", "borrowAmount": "0", "accruedInterest": "0",
        "totalOrderIM": s(m.ord_frozen), "totalPositionIM": s(im), "totalPositionMM": s(m.mmr),
        "unrealisedPnl": s(m.upl), "cumRealisedPnl": s(realised), "bonus": "0", "collateralSwitch": True,
        "marginCollateral": True, "locked": "0", "spotHedgingQty": "0", "spotBorrow": "0",
    }
    return {
        "accountIMRate": im_rate, "accountIMRateByMp": im_rate, "accountMMRate": mm_rate,
        "accountMMRateByMp": mm_rate, "totalEquity": s(m.eq), "totalWalletBalance": s(m.cash),
        "totalMarginBalance": s(margin_bal), "totalAvailableBalance": s(avail), "totalPerpUPL": s(m.upl),
        "totalInitialMargin": s(im), "totalInitialMarginByMp": s(im), "totalMaintenanceMargin": s(m.mmr),
        "totalMaintenanceMarginByMp": s(m.mmr), "coin": [coin], "accountLTV": "0", "accountType": "UNIFIED",
    }


def position(p: Position, m: PosMetrics, spec: InstrumentSpec, *, lever: Decimal, tp: Decimal | None,
             sl: Decimal | None, cum_realised: Decimal, seq: int, push: bool = False) -> dict[str, Any]:
    """A position-list item (``push``: the position stream's, which says entryPrice, not avgPrice)."""
    open_ = p.pos != 0
    d = p.direction_sign
    coins = p.size * spec.ct_val
    bust = ""
    if open_:
        # the price at which the position's margin is gone (isolated: its margin; cross: the initial margin)
        cushion = p.margin if p.mgn_mode == "isolated" else coins * p.avg_px / lever
        bust = s(_q(p.avg_px - d * cushion / coins, spec.tick_sz)) if coins else ""
    be = s(_q(p.avg_px - d * p.realized() / coins, PRICE_STEP)) if open_ and coins else "0"
    item: dict[str, Any] = {
        "positionIdx": position_idx(p.pos_side), "riskId": 1, "riskLimitValue": "2000000",
        "symbol": symbol(p.inst_id), "side": ("Buy" if d > 0 else "Sell") if open_ else "",
        "size": qty(p.size, spec), "avgPrice": s(p.avg_px) if open_ else "0",
        "positionValue": s(coins * p.avg_px) if open_ else "0",
        "tradeMode": 1 if p.mgn_mode == "isolated" else 0, "positionStatus": "Normal", "autoAddMargin": 0,
        "adlRankIndicator": 2 if open_ else 0, "leverage": s(lever), "breakEvenPrice": be,
        "positionBalance": s(p.margin if p.mgn_mode == "isolated" else m.imr),
        "markPrice": s(m.mark), "liqPrice": s(m.liq_px) if m.liq_px is not None else "", "bustPrice": bust,
        "positionMM": s(m.mmr), "positionMMByMp": s(m.mmr), "positionIM": s(m.imr), "positionIMByMp": s(m.imr),
        "tpslMode": "Full", "takeProfit": s(tp) if tp is not None else "0", "stopLoss": s(sl) if sl is not None else "0",
        "trailingStop": "0", "unrealisedPnl": s(m.upl), "curRealisedPnl": s(p.realized()) if open_ else "0",
        "cumRealisedPnl": s(cum_realised), "seq": seq, "isReduceOnly": False, "mmrSysUpdateTime": "",
        "leverageSysUpdatedTime": "", "sessionAvgPrice": "", "createdTime": str(p.c_time),
        "updatedTime": str(p.u_time),
    }
    if push:
        item["entryPrice"] = item.pop("avgPrice")
        item["mmrSysUpdatedTime"] = item.pop("mmrSysUpdateTime")
        item["category"] = CATEGORY
    return item


ORDER_STATUS = {"live": "New", "partially_filled": "PartiallyFilled", "filled": "Filled", "canceled": "Cancelled",
                "mmp_canceled": "Cancelled"}
TIME_IN_FORCE = {"market": "IOC", "limit": "GTC", "post_only": "PostOnly", "ioc": "IOC", "fok": "FOK"}
CANCEL_TYPE = {"1": "CancelByUser", "14": "CancelByUser", "20": "CancelByUser", "31": "CancelByReduceOnly"}


def stop_kind(acct: Account, o: Order) -> tuple[str, str]:
    """(stopOrderType, createType) of an order: a fired TP or SL says which it was."""
    if o.category == "adl":
        return "", "CreateByAdl_PassThrough"
    if o.category in ("full_liquidation", "partial_liquidation"):
        return "", "CreateByLiq"
    if o.source == "7" and o.algo_id:
        a = acct.algos.get(o.algo_id)
        if a is not None and a.actual_side == "tp":
            return "TakeProfit", "CreateByTakeProfit"
        if a is not None and a.actual_side == "sl":
            return "StopLoss", "CreateByStopLoss"
    if o.source == "6":
        return "Stop", "CreateByStopOrder"
    return "", "CreateByUser"


def order(acct: Account, o: Order, spec: InstrumentSpec, link_id: str, *, push: bool = False,
          state: dict[str, Any] | None = None) -> dict[str, Any]:
    """An order of order/realtime, order/history and the order stream.

    ``state``: the OKX push this order update came from (its state, fill totals and time at that
    moment), so a burst of updates in one request is told in order, not all as the final state.
    """
    st = state or {}
    status = str(st.get("state") or o.state)
    filled = Decimal(str(st["accFillSz"])) if st.get("accFillSz") not in (None, "") else o.acc_fill_sz
    notional = o.fill_notional if not st else (Decimal(str(st["avgPx"])) * filled if st.get("avgPx") else ZERO)
    fee = -(Decimal(str(st["fee"])) if st.get("fee") not in (None, "") else o.fee)
    avg = notional / filled if filled else None
    left = o.sz - filled if status in ("live", "partially_filled") else ZERO
    px = o.px if o.px is not None else avg
    stop_type, create_type = stop_kind(acct, o)
    tp = sl = ""
    for x in o.attached:
        tp = tp or x.get("tpTriggerPx", "")
        sl = sl or x.get("slTriggerPx", "")
    item: dict[str, Any] = {
        "orderId": o.ord_id, "orderLinkId": link_id, "blockTradeId": "", "symbol": symbol(o.inst_id),
        "price": s(px) if px is not None else "0", "qty": qty(o.sz, spec), "side": side(o.side), "isLeverage": "",
        "positionIdx": position_idx(o.pos_side), "orderStatus": ORDER_STATUS.get(status, "New"),
        "cancelType": CANCEL_TYPE.get(o.cancel_source, "UNKNOWN") if status == "canceled" else "UNKNOWN",
        "rejectReason": "EC_NoError", "avgPrice": s(_q(avg, PRICE_STEP)) if avg else "0",
        "leavesQty": qty(left, spec), "leavesValue": s(left * spec.ct_val * (o.px or ZERO)),
        "cumExecQty": qty(filled, spec), "cumExecValue": s(notional * spec.ct_val), "cumExecFee": s(fee),
        "timeInForce": TIME_IN_FORCE.get(o.ord_type, "GTC"), "orderType": "Market" if o.ord_type == "market" else "Limit",
        # as the linear examples of order/realtime and order/history: "0" and UNKNOWN where unset
        "stopOrderType": stop_type or "UNKNOWN", "orderIv": "", "triggerPrice": "0", "takeProfit": tp or "0",
        "stopLoss": sl or "0", "tpTriggerBy": "LastPrice" if tp else "UNKNOWN",
        "slTriggerBy": "LastPrice" if sl else "UNKNOWN",
        "triggerDirection": 0, "triggerBy": "UNKNOWN", "lastPriceOnCreated": "", "reduceOnly": o.reduce_only,
        "closeOnTrigger": o.source == "7", "smpType": "None", "smpGroup": 0, "smpOrderId": "",
        "tpslMode": "Full" if tp or sl else "", "tpLimitPrice": "", "slLimitPrice": "", "placeType": "",
        "slippageToleranceType": "UNKNOWN", "slippageTolerance": "", "createdTime": str(o.c_time),
        "updatedTime": str(st.get("uTime") or o.u_time), "extraFees": "", "cumFeeDetail": {COIN: s(fee)},
        "rpiTakerAccess": False, "rpiMatchedQty": "0", "createType": create_type,
    }
    if push:
        item.update({"category": CATEGORY, "closedPnl": s(o.pnl), "feeCurrency": ""})
    return item


def leg_id(a: AlgoOrder, leg: str) -> str:
    """The Bybit orderId of one leg of a TP/SL algo ("tp" or "sl"); a trigger order keeps its id."""
    return f"{a.algo_id}-{leg}" if leg else a.algo_id


def split_leg_id(order_id: str) -> tuple[str, str]:
    """(algoId, leg) of a Bybit orderId made by ``leg_id``."""
    base, _, leg = order_id.rpartition("-")
    return (base, leg) if base and leg in ("tp", "sl") else (order_id, "")


def algo_orders(a: AlgoOrder, spec: InstrumentSpec, *, push: bool = False) -> list[dict[str, Any]]:
    """A TP/SL or trigger held by the exchange as Bybit lists it: one conditional order per leg (a
    TP+SL is two orders, TakeProfit and StopLoss, each with its own orderId), Untriggered until its
    price is reached; then the leg that fired is Triggered and the other Deactivated."""
    if a.ord_type not in ("conditional", "oco"):
        return [_conditional(a, spec, "", a.trigger_px, "Stop", push)]
    out = []
    for leg, px, kind in (("tp", a.tp_trigger_px, "TakeProfit"), ("sl", a.sl_trigger_px, "StopLoss")):
        if px is not None:
            out.append(_conditional(a, spec, leg, px, kind, push))
    return out


def _conditional(a: AlgoOrder, spec: InstrumentSpec, leg: str, trigger: Decimal | None, stop_type: str,
                 push: bool) -> dict[str, Any]:
    if a.state == "live":
        status = "Untriggered"
    elif a.state == "effective" and a.actual_side in ("", leg):
        status = "Triggered"
    else:
        status = "Deactivated"
    whole = a.close_fraction == "1" or a.attached_to != ""
    tp_sl = stop_type != "Stop"
    rising = a.trigger_up if not tp_sl else ((stop_type == "TakeProfit") == (a.side == "sell"))
    item: dict[str, Any] = {
        "orderId": leg_id(a, leg), "orderLinkId": a.algo_cl_ord_id, "blockTradeId": "", "symbol": symbol(a.inst_id),
        "price": "0", "qty": qty(a.sz, spec), "side": side(a.side), "isLeverage": "",
        "positionIdx": position_idx(a.pos_side), "orderStatus": status,
        "cancelType": "CancelByUser" if a.state == "canceled" else "UNKNOWN", "rejectReason": "EC_NoError",
        "avgPrice": "", "leavesQty": qty(a.sz, spec) if a.state == "live" else "0", "leavesValue": "0",
        "cumExecQty": "0", "cumExecValue": "0", "cumExecFee": "0", "timeInForce": "IOC", "orderType": "Market",
        "stopOrderType": stop_type, "orderIv": "", "triggerPrice": s(trigger),
        "takeProfit": s(trigger) if stop_type == "TakeProfit" else "", "stopLoss": s(trigger) if stop_type == "StopLoss" else "",
        "tpTriggerBy": "LastPrice" if stop_type == "TakeProfit" else "",
        "slTriggerBy": "LastPrice" if stop_type == "StopLoss" else "",
        "triggerDirection": 1 if rising else 2, "triggerBy": "LastPrice", "lastPriceOnCreated": "",
        "reduceOnly": a.reduce_only, "closeOnTrigger": a.reduce_only, "smpType": "None", "smpGroup": 0,
        "smpOrderId": "", "tpslMode": ("Full" if whole else "Partial") if tp_sl else "", "tpLimitPrice": "",
        "slLimitPrice": "", "placeType": "", "slippageToleranceType": "UNKNOWN", "slippageTolerance": "",
        "createdTime": str(a.c_time), "updatedTime": str(a.u_time), "extraFees": "", "cumFeeDetail": {},
        "rpiTakerAccess": False, "rpiMatchedQty": "0",
        "createType": {"TakeProfit": "CreateByTakeProfit", "StopLoss": "CreateByStopLoss"}.get(stop_type,
                                                                                            "CreateByStopOrder"),
    }
    if push:
        item.update({"category": CATEGORY, "closedPnl": "0", "feeCurrency": ""})
    return item


# ---------------------------------------------------------------------- executions and closed PnL


@dataclass(slots=True)
class ExecInfo:
    """What a fill closed: coins and gross PnL (``execPnl``); ``penalty``: the liquidation fee a
    takeover fill carries in its execFee (the core books it as a bill of its own, as OKX does)."""

    closed: Decimal = ZERO
    pnl: Decimal = ZERO
    penalty: Decimal = ZERO


@dataclass(slots=True)
class ClosedPnl:
    """One /v5/position/closed-pnl record: the closing part of one order."""

    inst_id: str
    ord_id: str
    side: str
    lever: Decimal
    closed: Decimal = ZERO  # coins
    entry_value: Decimal = ZERO
    exit_value: Decimal = ZERO
    exec_pnl: Decimal = ZERO
    open_fee: Decimal = ZERO  # positive = paid
    close_fee: Decimal = ZERO
    fills: int = 0
    created: int = 0
    updated: int = 0
    exec_type: str = "Trade"

    @property
    def closed_pnl(self) -> Decimal:
        return self.exec_pnl - self.open_fee - self.close_fee


@dataclass(slots=True)
class _Slot:
    size: Decimal = ZERO  # contracts, unsigned
    open_fee: Decimal = ZERO  # opening fees still attributed to the open size (positive = paid)


@dataclass(slots=True)
class Replay:
    """The fills of one account replayed per position slot: closing parts and closed-PnL records."""

    execs: dict[str, ExecInfo] = field(default_factory=dict)  # tradeId -> what it closed
    closed: dict[str, ClosedPnl] = field(default_factory=dict)  # ordId -> record (in order of first close)
    slots: dict[tuple[str, str, str], _Slot] = field(default_factory=dict)  # (instId, mgnMode, posSide)
    modes: dict[str, str] = field(default_factory=dict)  # tradeId -> mgnMode (from the trade bills)
    penalties: dict[str, Decimal] = field(default_factory=dict)  # ordId -> liquidation fee not yet in a fill
    seen: int = 0
    bills_seen: int = 0


def is_penalty(b: Bill) -> bool:
    """The core's liquidation-penalty bill (OKX books it apart; Bybit's takeover fill carries it)."""
    return b.type == "5" and b.sub_type == "109" and not b.trade_id


def exec_type(f: FillRecord) -> str:
    """Bybit's execType of a fill: ADL and liquidation (takeover) fills say so."""
    if f.sub_type in ("125", "126", "127", "128"):
        return "AdlTrade"
    if f.sub_type.isdigit() and 100 <= int(f.sub_type) <= 107:
        return "BustTrade"
    return "Trade"


def replay(acct: Account, specs: dict[str, InstrumentSpec], cache: dict[str, Replay]) -> Replay:
    """Replay the fills not replayed yet (``cache`` keeps each account's replay by uid).

    The simulator keeps 92 days of fills: a position opened before that window starts its replay
    mid-life (its openFee then counts from the first fill kept).
    """
    r = cache.get(acct.uid)
    if r is None or r.seen > len(acct.fills) or r.bills_seen > len(acct.bills):
        r = cache[acct.uid] = Replay()
    for b in acct.bills[r.bills_seen:]:
        if b.trade_id:
            r.modes[b.trade_id] = b.mgn_mode
        elif is_penalty(b):
            r.penalties[b.ord_id] = r.penalties.get(b.ord_id, ZERO) - b.bal_chg
    r.bills_seen = len(acct.bills)
    for f in acct.fills[r.seen:]:
        mode = r.modes.get(f.trade_id, "cross")
        slot = r.slots.setdefault((f.inst_id, mode, f.pos_side), _Slot())
        _replay_fill(acct, specs[f.inst_id], slot, f, r, mode)
    r.seen = len(acct.fills)
    return r


def _replay_fill(acct: Account, spec: InstrumentSpec, slot: _Slot, f: FillRecord, r: Replay, mode: str) -> None:
    p = acct.positions.get((f.inst_id, mode, f.pos_side))
    if f.pos_side == "net":
        # a net slot's direction: the close PnL's sign says nothing, so keep the signed size instead
        signed = slot.size
        buy = f.side == "buy"
        closing = signed != 0 and (signed > 0) != buy
        close = min(f.fill_sz, abs(signed)) if closing else ZERO
    else:
        closing = (f.pos_side == "long") == (f.side == "sell")
        signed = slot.size if f.pos_side == "long" else -slot.size
        close = min(f.fill_sz, slot.size) if closing else ZERO
    open_ = f.fill_sz - close
    penalty = r.penalties.pop(f.ord_id, ZERO)  # the order's first fill carries its liquidation fee
    paid = -f.fee + penalty
    fee_close = paid * close / f.fill_sz if f.fill_sz else ZERO
    fee_open = paid - fee_close
    info = ExecInfo()
    if close:
        size = abs(signed)
        attributed = slot.open_fee * close / size
        slot.open_fee -= attributed
        coins = close * spec.ct_val
        d = 1 if signed > 0 else -1
        entry = f.fill_px - f.fill_pnl / (coins * d)
        info = ExecInfo(coins, f.fill_pnl, penalty)
        rec = r.closed.get(f.ord_id)
        if rec is None:
            o = acct.orders.get(f.ord_id)
            rec = ClosedPnl(inst_id=f.inst_id, ord_id=f.ord_id, side=side(f.side),
                            lever=o.lever if o is not None else (p.lever if p is not None else Decimal(10)),
                            created=o.c_time if o is not None else f.ts,
                            # closed-pnl's documented execTypes have no AdlTrade: an ADL close is a Trade
                            exec_type="BustTrade" if exec_type(f) == "BustTrade" else "Trade")
            r.closed[f.ord_id] = rec
        rec.closed += coins
        rec.entry_value += entry * coins
        rec.exit_value += f.fill_px * coins
        rec.exec_pnl += f.fill_pnl
        rec.open_fee += attributed
        rec.close_fee += fee_close
        rec.fills += 1
        rec.updated = f.ts
        signed = signed - close * d
    if open_:
        d_open = 1 if (f.pos_side == "long" or (f.pos_side == "net" and f.side == "buy")) else -1
        signed = signed + open_ * d_open
        slot.open_fee += fee_open
    slot.size = signed if f.pos_side == "net" else abs(signed)
    if slot.size == 0:
        slot.open_fee = ZERO
    info.penalty = penalty
    r.execs[f.trade_id] = info


def closed_pnl(rec: ClosedPnl, o: Order | None, spec: InstrumentSpec) -> dict[str, Any]:
    qty_ = qty(o.sz, spec) if o is not None else s(rec.closed)
    return {
        "symbol": symbol(rec.inst_id), "orderType": "Market" if o is None or o.ord_type == "market" else "Limit",
        "leverage": s(rec.lever), "updatedTime": str(rec.updated), "side": rec.side, "orderId": rec.ord_id,
        "closedPnl": s(_q(rec.closed_pnl)), "avgEntryPrice": s(_q(rec.entry_value / rec.closed, PRICE_STEP)),
        "qty": qty_, "cumEntryValue": s(_q(rec.entry_value)), "createdTime": str(rec.created),
        "orderPrice": s(o.px if o is not None and o.px is not None else (o.avg_px if o is not None else ZERO)),
        "closedSize": s(rec.closed), "avgExitPrice": s(_q(rec.exit_value / rec.closed, PRICE_STEP)),
        "execType": rec.exec_type, "fillCount": str(rec.fills), "cumExitValue": s(_q(rec.exit_value)),
        "openFee": s(_q(rec.open_fee)), "closeFee": s(_q(rec.close_fee)),
    }


def execution(acct: Account, f: FillRecord, spec: InstrumentSpec, info: ExecInfo, link_id: str, rate: Decimal,
              *, push: bool = False) -> dict[str, Any]:
    """An execution of execution/list and of the execution stream."""
    o = acct.orders.get(f.ord_id)
    stop_type, create_type = stop_kind(acct, o) if o is not None else ("", "CreateByUser")
    coins = f.fill_sz * spec.ct_val
    filled = o.acc_fill_sz if o is not None else f.fill_sz
    item: dict[str, Any] = {
        "symbol": symbol(f.inst_id), "orderType": "Market" if o is None or o.ord_type == "market" else "Limit",
        "underlyingPrice": "", "orderLinkId": link_id, "side": side(f.side), "indexPrice": "",
        "orderId": f.ord_id, "stopOrderType": stop_type or "UNKNOWN",
        "leavesQty": qty(o.sz - filled, spec) if o is not None and o.is_open else "0",
        "execTime": str(f.ts), "feeCurrency": COIN, "isMaker": f.exec_type == "M", "execFee": s(-f.fee + info.penalty),
        "feeRate": s(rate), "execId": f.trade_id, "tradeIv": "", "blockTradeId": "", "markPrice": s(f.mark_px),
        "execPrice": s(f.fill_px), "markIv": "", "orderQty": qty(o.sz, spec) if o is not None else s(coins),
        "orderPrice": s(o.px if o is not None and o.px is not None else f.fill_px), "execValue": s(coins * f.fill_px),
        "execType": exec_type(f), "execQty": s(coins.normalize()), "closedSize": s(info.closed),
        "extraFees": "", "seq": int(f.trade_id), "execPnl": s(info.pnl), "createType": create_type,
    }
    if push:
        item.update({"category": CATEGORY, "isLeverage": "0", "marketUnit": ""})
    return item


def funding_execution(b: Bill, spec: InstrumentSpec, rate: Decimal, *, push: bool = False) -> dict[str, Any]:
    """A funding payment as Bybit lists it: an execution of execType Funding (execFee > 0 = paid)."""
    coins = b.sz * spec.ct_val
    pos_side = "Buy" if (b.pnl < 0) == (rate > 0) else "Sell"  # who paid: longs when the rate is positive
    item: dict[str, Any] = {
        "symbol": symbol(b.inst_id), "orderType": "UNKNOWN", "underlyingPrice": "", "orderLinkId": "",
        "side": pos_side, "indexPrice": "", "orderId": f"{b.ts}-funding-{b.bill_id}", "stopOrderType": "UNKNOWN",
        "leavesQty": "0", "execTime": str(b.ts), "feeCurrency": COIN, "isMaker": False, "execFee": s(-b.pnl),
        "feeRate": s(rate), "execId": b.bill_id, "tradeIv": "", "blockTradeId": "", "markPrice": s(b.px),
        "execPrice": s(b.px), "markIv": "", "orderQty": s(coins.normalize()), "orderPrice": "0",
        "execValue": s(coins * b.px), "execType": "Funding", "execQty": s(coins.normalize()), "closedSize": "0",
        "extraFees": "", "seq": int(b.bill_id), "execPnl": "0", "createType": "",
    }
    if push:
        item.update({"category": CATEGORY, "isLeverage": "0", "marketUnit": ""})
    return item


def transaction(b: Bill, spec: InstrumentSpec, fill: FillRecord | None, size_after: Decimal, rate: Decimal,
                link_id: str, penalty: Decimal = ZERO) -> dict[str, Any]:
    """A transaction-log row: TRADE (cashFlow = PnL, fee > 0 paid) or SETTLEMENT (funding > 0 received).

    change = cashFlow + funding - fee, exactly what the bill moved (a takeover fill's row also
    carries the liquidation fee the core booked as a bill of its own: ``penalty``).
    """
    funding = b.type == "8"
    coins = b.sz * spec.ct_val
    sd = side(fill.side) if fill is not None else ("Buy" if (b.pnl < 0) == (rate > 0) else "Sell")
    return {
        "transSubType": "", "id": b.bill_id, "symbol": symbol(b.inst_id), "side": sd,
        "funding": s(b.pnl) if funding else "", "orderLinkId": link_id, "orderId": b.ord_id,
        "fee": s(-b.fee + penalty) if not funding else "0",
        "change": s(b.bal_chg + b.pos_bal_chg if funding else b.bal_chg - penalty),
        "cashFlow": s(b.pnl) if not funding else "0", "transactionTime": str(b.ts),
        "type": "SETTLEMENT" if funding else "TRADE", "feeRate": s(rate), "bonusChange": "",
        "size": s(size_after), "qty": s(coins.normalize()), "cashBalance": s(b.bal), "currency": COIN,
        "category": CATEGORY, "tradePrice": s(b.px), "tradeId": b.trade_id or b.bill_id, "extraFees": "",
    }
