"""OKX v5 item shapes: the simulator's records rendered exactly as OKX sends them.

Every number is a plain decimal string and every missing value is "" (never null), because
that is what OKX does and what ccxt and our own stream client are written against. Signs stay
OKX's: fee and fillFee negative when paid, balChg negative when paid, liqPenalty negative.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from core.money import plain
from core.sim.market import InstrumentSpec
from core.sim.state import AlgoOrder, Bill, FillRecord, Order, Position, PositionHistory


def s(v: Decimal | int | None) -> str:
    """Wire string for a number; "" for missing."""
    if v is None:
        return ""
    if isinstance(v, int):
        return str(v)
    return plain(v)


def b(v: bool) -> str:
    return "true" if v else "false"


@dataclass(frozen=True, slots=True)
class PosMetrics:
    """Margin figures of one position at the current mark (computed by the exchange)."""

    mark: Decimal
    last: Decimal
    upl: Decimal
    upl_ratio: Decimal | None
    imr: Decimal
    mmr: Decimal
    notional: Decimal
    liq_px: Decimal | None
    mgn_ratio: Decimal | None


@dataclass(frozen=True, slots=True)
class AcctMetrics:
    """Account-level figures (single-currency USDT margin)."""

    cash: Decimal
    eq: Decimal
    upl: Decimal
    cross_eq: Decimal
    imr: Decimal
    mmr: Decimal
    iso_margin: Decimal
    iso_eq: Decimal
    ord_frozen: Decimal
    avail: Decimal
    notional: Decimal
    mgn_ratio: Decimal | None


def instrument(spec: InstrumentSpec, list_time: int) -> dict[str, Any]:
    """public/instruments item. ``instIdCode`` is a number on OKX (the WS order ops' short id):
    a stable one per instrument here; no upcoming change (``upcChg``), a live, listed swap.
    ``tradeQuoteCcyList`` is ``[]``: OKX lists quote currencies for spot only, a swap answers []."""
    return {
        "alias": "", "auctionEndTime": "", "baseCcy": "", "category": "1", "contTdSwTime": "", "ctMult": "1",
        "ctType": "linear", "ctVal": s(spec.ct_val), "ctValCcy": spec.base, "expTime": "",
        "futureSettlement": False, "groupId": "1", "instCategory": "1",
        "instFamily": spec.uly, "instId": spec.inst_id, "instIdCode": zlib.crc32(spec.inst_id.encode()) % 1_000_000,
        "instType": "SWAP",
        "lever": str(spec.max_lever), "listTime": str(list_time), "lotSz": s(spec.lot_sz),
        "maxIcebergSz": s(spec.max_lmt_sz), "maxLmtAmt": "20000000", "maxLmtSz": s(spec.max_lmt_sz),
        "maxMktAmt": "", "maxMktSz": s(spec.max_mkt_sz), "maxStopSz": s(spec.max_mkt_sz),
        "maxTriggerSz": s(spec.max_lmt_sz), "maxTwapSz": s(spec.max_lmt_sz), "minSz": s(spec.min_sz),
        "openType": "", "optType": "", "preMktSwTime": "", "quoteCcy": "", "ruleType": "normal",
        "seriesId": "", "settleCcy": spec.settle_ccy, "state": "live", "stk": "", "tickSz": s(spec.tick_sz),
        "tradeQuoteCcyList": [], "uly": spec.uly, "upcChg": [],
    }


def attached_algo(x: dict[str, str]) -> dict[str, str]:
    """One attachAlgoOrds[] item as GET order echoes it: the TP/SL as sent, plus its attachAlgoId."""
    item = {k: "" for k in ("attachAlgoId", "attachAlgoClOrdId", "tpOrdKind", "tpTriggerPx", "tpTriggerPxType",
                             "tpOrdPx", "slTriggerPx", "slTriggerPxType", "slOrdPx", "sz", "failCode",
                             "failReason")}
    item.update(amendPxOnTriggerType="0", tpOrdKind="condition")
    item.update({k: str(v) for k, v in x.items() if k in item and v is not None})
    if item["tpTriggerPx"] and not item["tpTriggerPxType"]:
        item["tpTriggerPxType"] = "last"
    if item["slTriggerPx"] and not item["slTriggerPxType"]:
        item["slTriggerPxType"] = "last"
    return item


def order(o: Order, ct_val: Decimal, *, push: bool = False) -> dict[str, Any]:
    """A normal order (trade/order, orders-pending, orders push). ``push`` adds the fill fields."""
    has_fill = bool(o.trade_id)
    item: dict[str, Any] = {
        "accFillSz": s(o.acc_fill_sz), "algoClOrdId": o.algo_cl_ord_id, "algoId": o.algo_id,
        "attachAlgoClOrdId": o.attached[0].get("attachAlgoClOrdId", "") if o.attached else "",
        "attachAlgoOrds": [attached_algo(x) for x in o.attached], "avgPx": s(o.avg_px) if o.acc_fill_sz else "",
        "cTime": str(o.c_time), "cancelSource": o.cancel_source, "cancelSourceReason": "",
        "category": o.category, "ccy": "", "clOrdId": o.cl_ord_id, "fee": s(o.fee), "feeCcy": "USDT",
        "fillPx": s(o.fill_px) if has_fill else "", "fillSz": s(o.fill_sz) if has_fill else "",
        "fillTime": str(o.fill_time) if has_fill else "", "instId": o.inst_id, "instType": "SWAP",
        "isTpLimit": "false", "lever": s(o.lever), "linkedAlgoOrd": {"algoId": ""},
        "ordId": o.ord_id, "ordType": o.ord_type, "pnl": s(o.pnl), "posSide": o.pos_side,
        "px": s(o.px), "pxType": "", "pxUsd": "", "pxVol": "", "quickMgnType": "", "rebate": "0",
        "rebateCcy": "USDT", "reduceOnly": b(o.reduce_only), "side": o.side, "slOrdPx": "",
        "slTriggerPx": "", "slTriggerPxType": "", "source": o.source, "state": o.state, "stpId": "",
        "stpMode": "cancel_maker", "sz": s(o.sz), "tag": o.tag, "tdMode": o.td_mode, "tgtCcy": "",
        "tpOrdPx": "", "tpTriggerPx": "", "tpTriggerPxType": "", "tradeId": o.trade_id if has_fill else "",
        "tradeQuoteCcy": "", "uTime": str(o.u_time),
    }
    if push:
        notional = o.sz * ct_val * (o.px or o.fill_px or Decimal(0))
        item.update({
            "amendResult": "", "amendSource": "", "code": "0", "msg": "", "reqId": "",
            "execType": o.exec_type if has_fill else "",
            "fillFee": s(o.fill_fee) if has_fill else "0", "fillFeeCcy": "USDT" if has_fill else "",
            "fillPnl": s(o.fill_pnl) if has_fill else "0",
            "fillMarkPx": s(o.fill_mark_px) if has_fill else "", "fillMarkVol": "",
            "fillNotionalUsd": s(o.fill_sz * ct_val * o.fill_px) if has_fill and o.fill_px else "",
            "fillPxUsd": "", "fillPxVol": "", "fillFwdPx": "", "fillIdxPx": "",
            "notionalUsd": s(notional), "lastPx": s(o.fill_px) if has_fill else "",
        })
        if o.liq_penalty:
            # Not an OKX field: the liquidation penalty of this fill (negative = paid), so a
            # stream client can journal it without a positions-history round trip.
            item["liqPenalty"] = s(o.liq_penalty)
    return item


def algo(a: AlgoOrder, last: Decimal | None = None, *, push: bool = False) -> dict[str, Any]:
    """An algo order (order-algo replies, orders-algo-pending/history, orders-algo push).

    ``push`` adds what only the orders-algo channel carries: the amend result and request id
    ("" unless the push answers an amend that named one).
    """
    item: dict[str, Any] = {
        "activePx": "", "actualPx": s(a.actual_px), "actualSide": a.actual_side,
        "actualSz": s(a.actual_sz), "algoClOrdId": a.algo_cl_ord_id, "algoId": a.algo_id,
        "amendPxOnTriggerType": "0", "attachAlgoOrds": [], "cTime": str(a.c_time), "callbackRatio": "",
        "callbackSpread": "", "ccy": "", "chaseType": "", "chaseVal": "", "clOrdId": a.cl_ord_id,
        "closeFraction": a.close_fraction, "failCode": "", "instId": a.inst_id, "instType": "SWAP",
        "isTradeBorrowMode": "", "last": s(last), "lever": s(a.lever), "linkedOrd": {"ordId": ""},
        "maxChaseType": "", "maxChaseVal": "", "moveTriggerPx": "", "notionalUsd": "", "ordId": a.ord_id, "ordIdList": [a.ord_id] if a.ord_id else [],
        "ordPx": s(a.order_px), "ordType": a.ord_type, "posSide": a.pos_side, "pxLimit": "",
        "pxSpread": "", "pxVar": "", "quickMgnType": "", "reduceOnly": b(a.reduce_only),
        "side": a.side, "slOrdPx": s(a.sl_ord_px), "slTriggerPx": s(a.sl_trigger_px),
        "slTriggerPxType": a.sl_trigger_px_type if a.sl_trigger_px is not None else "",
        "state": a.state, "sz": s(a.sz), "szLimit": "", "tag": a.tag, "tdMode": a.td_mode,
        "tgtCcy": "", "timeInterval": "", "tpOrdPx": s(a.tp_ord_px), "tpTriggerPx": s(a.tp_trigger_px),
        "tradeQuoteCcy": "",
        "tpTriggerPxType": a.tp_trigger_px_type if a.tp_trigger_px is not None else "",
        "triggerPx": s(a.trigger_px),
        "triggerPxType": a.trigger_px_type if a.trigger_px is not None else "",
        "triggerTime": str(a.trigger_time) if a.trigger_time else "", "uTime": str(a.u_time),
    }
    if push:
        item.update(amendResult="", reqId="")
    return item


def close_order_algo(a: AlgoOrder, p: Position) -> dict[str, str]:
    """One closeOrderAlgo[] item: a live reduce-only TP/SL of the position and the share it closes."""
    if a.close_fraction or p.size == 0:
        frac = a.close_fraction or "1"
    else:
        frac = s(min(a.sz / p.size, Decimal(1)).quantize(Decimal("1e-8"), ROUND_HALF_EVEN).normalize())
    return {"algoId": a.algo_id, "slTriggerPx": s(a.sl_trigger_px),
            "slTriggerPxType": a.sl_trigger_px_type if a.sl_trigger_px is not None else "",
            "tpTriggerPx": s(a.tp_trigger_px),
            "tpTriggerPxType": a.tp_trigger_px_type if a.tp_trigger_px is not None else "",
            "closeFraction": frac}


def position(p: Position, m: PosMetrics, now: int, close_algos: list[AlgoOrder] | None = None, *,
             push: bool = False) -> dict[str, Any]:
    """A position (account/positions, positions push). Flat: pos "0" and empty figures.

    ``close_algos``: the live TP/SL that close (part of) it, listed in ``closeOrderAlgo`` as OKX
    does; ``push`` adds the push time ``pTime`` that only the WebSocket item carries. The
    delta-neutral and cross-FUTURES settlement fields (hedgedPos, nonSettleAvgPx, settledPnl) do
    not apply to a USDT swap and are "" as on OKX.
    """
    flat = p.pos == 0
    item = {
        "adl": "" if flat else "1", "availPos": "" if flat else s(p.size), "avgPx": "" if flat else s(p.avg_px),
        "baseBal": "", "baseBorrowed": "", "baseInterest": "", "bePx": "", "bizRefId": "",
        "bizRefType": "", "cTime": str(p.c_time), "ccy": "USDT", "clSpotInUseAmt": "",
        "closeOrderAlgo": [] if flat else [close_order_algo(a, p) for a in close_algos or []],
        "deltaBS": "", "deltaPA": "", "fee": s(p.fee), "fundingFee": s(p.funding_fee),
        "gammaBS": "", "gammaPA": "", "hedgedPos": "", "idxPx": s(m.mark), "imr": "" if (flat or p.mgn_mode == "isolated") else s(m.imr),
        "instId": p.inst_id, "instType": "SWAP", "interest": "", "last": s(m.last),
        "lever": s(p.lever), "liab": "", "liabCcy": "", "liqPenalty": s(p.liq_penalty),
        "liqPx": "" if flat else s(m.liq_px), "margin": s(p.margin) if p.mgn_mode == "isolated" and not flat else "",
        "markPx": s(m.mark), "maxSpotInUseAmt": "", "mgnMode": p.mgn_mode,
        "mgnRatio": "" if flat else s(m.mgn_ratio), "mmr": "" if flat else s(m.mmr),
        "nonSettleAvgPx": "", "notionalUsd": "" if flat else s(m.notional), "optVal": "",
        "pendingCloseOrdLiabVal": "",
        "pnl": s(p.pnl), "pos": s(p.pos), "posCcy": "", "posId": p.pos_id, "posSide": p.pos_side,
        "quoteBal": "", "quoteBorrowed": "", "quoteInterest": "", "realizedPnl": s(p.realized()),
        "settledPnl": "", "spotInUseAmt": "", "spotInUseCcy": "", "thetaBS": "", "thetaPA": "", "tradeId": p.last_trade_id,
        "uTime": str(p.u_time or now), "upl": "0" if flat else s(m.upl),
        "uplLastPx": "0" if flat else s(m.upl), "uplRatio": "0" if flat else s(m.upl_ratio),
        "uplRatioLastPx": "0" if flat else s(m.upl_ratio), "usdPx": "", "vegaBS": "", "vegaPA": "",
    }
    if push:
        item["pTime"] = str(now)
    return item


def account(m: AcctMetrics, now: int) -> dict[str, Any]:
    """account/balance item and account channel push.

    A single-currency USDT account outside the delta-neutral strategy: the delta fields are "0",
    collateral restriction (colRes) and fixed-loan repayment (frpType) "0" (normal), the spot
    open price "" and USDT counted at 1 USD (eqUsd = eq).
    """
    detail = {
        "accAvgPx": "", "autoLendAmt": "", "autoLendMtAmt": "", "autoLendStatus": "off",
        "availBal": s(max(m.avail, Decimal(0))), "availEq": s(max(m.avail, Decimal(0))),
        "borrowFroz": "", "cashBal": s(m.cash), "ccy": "USDT", "clSpotInUseAmt": "",
        "coinUsdPrice": "1", "colBorrAutoConversion": "", "colRes": "0", "collateralEnabled": False, "collateralRestrict": False,
        "crossLiab": "", "disEq": s(m.eq), "eq": s(m.eq), "eqUsd": s(m.eq), "fixedBal": "0", "frpType": "0",
        "frozenBal": s(m.imr + m.iso_margin + m.ord_frozen), "imr": s(m.imr), "interest": "",
        "isoEq": s(m.iso_eq), "isoLiab": "", "isoUpl": s(m.iso_eq - m.iso_margin), "liab": "",
        "maxLoan": "", "maxSpotInUse": "", "maxSpotInUseAmt": "", "mgnRatio": s(m.mgn_ratio), "mmr": s(m.mmr),
        "notionalLever": s(m.notional / m.eq) if m.eq > 0 and m.notional else "0",
        "openAvgPx": "", "ordFrozen": s(m.ord_frozen), "rewardBal": "", "smtSyncEq": "0", "spotBal": "",
        "spotCopyTradingEq": "0", "spotInUseAmt": "", "spotIsoBal": "0", "spotUpl": "",
        "spotUplRatio": "", "stgyEq": "0", "totalPnl": "", "totalPnlRatio": "", "twap": "0",
        "uTime": str(now), "upl": s(m.upl), "uplLiab": "",
    }
    return {
        "adjEq": s(m.eq), "availEq": s(max(m.avail, Decimal(0))), "borrowFroz": "", "delta": "0",
        "deltaLever": "0", "deltaNeutralStatus": "0", "details": [detail],
        "imr": s(m.imr + m.iso_margin), "isoEq": s(m.iso_eq), "mgnRatio": s(m.mgn_ratio),
        "mmr": s(m.mmr), "notionalUsd": s(m.notional), "notionalUsdForBorrow": "",
        "notionalUsdForFutures": "", "notionalUsdForOption": "", "notionalUsdForSwap": s(m.notional),
        "ordFroz": s(m.ord_frozen), "totalEq": s(m.eq), "uTime": str(now), "upl": s(m.upl),
    }


def fill(f: FillRecord, fee_rate: Decimal | None = None) -> dict[str, str]:
    """trade/fills and trade/fills-history item; ``fee_rate`` as OKX signs it (negative = paid)."""
    return {
        "billId": f.bill_id, "clOrdId": f.cl_ord_id, "execType": f.exec_type, "fee": s(f.fee),
        "feeCcy": "USDT", "feeRate": s(fee_rate), "fillFwdPx": "", "fillIdxPx": s(f.mark_px), "fillMarkPx": s(f.mark_px),
        "fillMarkVol": "", "fillPnl": s(f.fill_pnl), "fillPx": s(f.fill_px), "fillPxUsd": "",
        "fillPxVol": "", "fillSz": s(f.fill_sz), "fillTime": str(f.ts), "instId": f.inst_id,
        "instType": "SWAP", "ordId": f.ord_id, "posSide": f.pos_side, "side": f.side,
        "subType": f.sub_type or ("1" if f.side == "buy" else "2"), "tag": f.tag, "tradeId": f.trade_id,
        "tradeQuoteCcy": "", "ts": str(f.ts),
    }


def bill(x: Bill) -> dict[str, str]:
    """account/bills and bills-archive item."""
    return {
        "bal": s(x.bal), "balChg": s(x.bal_chg), "billId": x.bill_id, "ccy": x.ccy, "clOrdId": x.cl_ord_id,
        "earnAmt": "", "earnApr": "", "execType": x.exec_type, "fee": s(x.fee), "fillFwdPx": "", "fillIdxPx": "", "fillMarkPx": s(x.mark_px),
        "fillMarkVol": "", "fillPxUsd": "", "fillPxVol": "", "fillTime": str(x.ts), "from": "",
        "instId": x.inst_id, "instType": "SWAP", "interest": "0", "mgnMode": x.mgn_mode, "notes": "",
        "ordId": x.ord_id, "pnl": s(x.pnl), "posBal": s(x.pos_bal), "posBalChg": s(x.pos_bal_chg), "px": s(x.px),
        "subType": x.sub_type, "sz": s(x.sz), "tag": "", "to": "", "tradeId": x.trade_id,
        "ts": str(x.ts), "type": x.type,
    }


def position_history(h: PositionHistory, ct_val: Decimal) -> dict[str, str]:
    """account/positions-history item: one position life, realizedPnl = pnl+fee+fundingFee+liqPenalty."""
    base_notional = h.open_avg_px * h.open_max_pos * ct_val
    ratio = (h.realized_pnl / (base_notional / h.lever)) if base_notional and h.lever else None
    return {
        "ccy": "USDT", "cTime": str(h.c_time), "closeAvgPx": s(h.close_avg_px),
        "closeTotalPos": s(h.close_total_pos), "direction": h.direction, "fee": s(h.fee),
        "fundingFee": s(h.funding_fee), "instId": h.inst_id, "instType": "SWAP", "lever": s(h.lever),
        "liqPenalty": s(h.liq_penalty), "mgnMode": h.mgn_mode, "nonSettleAvgPx": "",
        "openAvgPx": s(h.open_avg_px), "openMaxPos": s(h.open_max_pos), "pnl": s(h.pnl),
        "pnlRatio": s(ratio.quantize(Decimal("1e-12"), ROUND_HALF_EVEN)) if ratio is not None else "",
        "posId": h.pos_id, "posSide": h.pos_side, "realizedPnl": s(h.realized_pnl), "settledPnl": "",
        "triggerPx": s(h.trigger_px), "type": h.type, "uTime": str(h.u_time), "uly": h.inst_id[:-5],
    }
