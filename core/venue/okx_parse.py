"""OKX v5 dicts (WS pushes and raw REST items) -> perpdesk domain types.

Pure functions on purpose: the stream hot path calls them once per push, so they do no I/O, no
ccxt parsing and no float conversion; every number goes through ``core.money.dec`` from OKX's own
strings. They also keep OKX's fields that ccxt drops (category, algoId, fillPnl, execType), which
the ledger needs to tell a TP from a liquidation. Sign conventions are normalised HERE and only
here: OKX fees are negative when paid, perpdesk fees are costs (positive when paid).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.events import (
    AccountSnapshot,
    FundingBill,
    FundingRate,
    FundingSignal,
    MarkPrice,
    PositionHistoryRecord,
    PositionPush,
)
from core.events import (
    MalformedPush as MalformedPush,  # re-exported: older imports name it here
)
from core.model import (
    Fill,
    Instrument,
    Liquidity,
    OrderSide,
    OrderState,
    OrderUpdate,
    Origin,
    utc_from_ms,
)
from core.money import ZERO, dec, dec_or_none

Item = Mapping[str, Any]

CONSOLE_PREFIX = "pdc"
STRATEGY_PREFIX = "pds"

_STATES = {
    "live": OrderState.PLACED,
    "partially_filled": OrderState.PARTIALLY_FILLED,
    "filled": OrderState.FILLED,
    "canceled": OrderState.CANCELED,
    "mmp_canceled": OrderState.CANCELED,
    "rejected": OrderState.REJECTED,
}

# OKX bill/fill subType -> the order category it implies (fills-history carries no category).
_SUBTYPE_CATEGORY = {
    **{s: "partial_liquidation" for s in ("100", "101", "102", "103")},
    **{s: "full_liquidation" for s in ("104", "105", "106", "107")},
    **{s: "adl" for s in ("125", "126", "127", "128")},
}


def _ts(value: Any, fallback: Any = None) -> datetime:
    """OKX ms timestamps arrive as strings, sometimes "" (then the fallback, then now)."""
    for v in (value, fallback):
        if v not in (None, ""):
            return utc_from_ms(v)
    return datetime.now(UTC)


def _bool(value: Any) -> bool:
    """OKX sends reduceOnly as "true"/"false" in objects but JSON booleans in requests."""
    return value is True or str(value).lower() == "true"


def algo_kind_of(item: Item) -> str | None:
    """'tp' or 'sl' for an algo order (orders-algo push or REST item), None if undecidable.

    actualSide is what really fired; before that, an algo with only one trigger set is that kind,
    and one with both (attached TP+SL / oco) is undecided until it fires.
    """
    actual = str(item.get("actualSide") or "")
    if actual in ("tp", "sl"):
        return actual
    tp, sl = bool(item.get("tpTriggerPx")), bool(item.get("slTriggerPx"))
    if tp != sl:
        return "tp" if tp else "sl"
    return None


def classify_origin(category: str, algo_id: str, client_order_id: str, algo_kind: str | None) -> Origin:
    """The one place that decides who caused an order or fill (orders CSV ``origin``).

    Exchange-forced closes win over everything, then exchange-side TP/SL (even if we placed the
    algo, the close reason is tp/sl), then our own clOrdId prefixes; the rest is external.
    """
    if category in ("full_liquidation", "partial_liquidation"):
        return Origin.LIQUIDATION
    if category == "adl":
        return Origin.ADL
    if algo_id:
        return Origin.TP if algo_kind == "tp" else Origin.SL
    if client_order_id.startswith(CONSOLE_PREFIX):
        return Origin.CONSOLE
    if client_order_id.startswith(STRATEGY_PREFIX):
        return Origin.STRATEGY
    return Origin.EXTERNAL


def order_algo_kind(item: Item, known: Mapping[str, str]) -> str | None:
    """Algo kind for an order push: remembered from orders-algo, else the item's own hint."""
    algo_id = str(item.get("algoId") or "")
    if not algo_id:
        return None
    return known.get(algo_id) or algo_kind_of(item) or ("tp" if item.get("tpTriggerPx") else "sl")


def parse_order_push(
    item: Item, inst: Instrument, algo_kinds: Mapping[str, str] | None = None
) -> tuple[OrderUpdate | None, Fill | None]:
    """One orders-channel item -> (state change, fill). A fill exists only when tradeId is set.

    The state change is None for OKX states perpdesk does not journal.
    """
    category = str(item.get("category") or "normal")
    algo_id = str(item.get("algoId") or "")
    cl_id = str(item.get("clOrdId") or "")
    origin = classify_origin(category, algo_id, cl_id, order_algo_kind(item, algo_kinds or {}))
    side = OrderSide(item["side"])
    reduce_only = _bool(item.get("reduceOnly"))
    state = _STATES.get(str(item.get("state") or ""))
    update = None
    if state is not None:
        update = OrderUpdate(
            order_id=str(item["ordId"]),
            client_order_id=cl_id,
            symbol=inst.symbol,
            side=side,
            order_type=str(item.get("ordType") or ""),
            contracts=dec(item.get("sz"), default=ZERO),
            contract_size=inst.contract_size,
            price=dec_or_none(item.get("px")),
            state=state,
            ts=_ts(item.get("uTime"), item.get("cTime")),
            reduce_only=reduce_only,
            origin=origin,
            filled_contracts=dec(item.get("accFillSz"), default=ZERO),
            avg_price=dec_or_none(item.get("avgPx")),
            message=str(item.get("cancelSourceReason") or item.get("msg") or ""),
        )
    fill = None
    if item.get("tradeId"):
        penalty = dec_or_none(item.get("liqPenalty"))
        fill = Fill(
            fill_id=str(item["tradeId"]),
            order_id=str(item["ordId"]),
            client_order_id=cl_id,
            symbol=inst.symbol,
            side=side,
            contracts=dec(item["fillSz"]),
            contract_size=inst.contract_size,
            price=dec(item["fillPx"]),
            fee=-dec(item.get("fillFee"), default=ZERO),
            fee_ccy=str(item.get("fillFeeCcy") or item.get("feeCcy") or inst.settle_ccy),
            ts=_ts(item.get("fillTime"), item.get("uTime")),
            reduce_only=reduce_only,
            liquidity=Liquidity.MAKER if item.get("execType") == "M" else Liquidity.TAKER,
            origin=origin,
            pos_side=str(item.get("posSide") or "net"),
            category=category,
            algo_id=algo_id,
            fill_pnl=dec_or_none(item.get("fillPnl")),
            liq_penalty=-penalty if penalty is not None else ZERO,
        )
    return update, fill


def fill_category(item: Item) -> str:
    """Category of a fills-history item: its own field if present, else implied by subType."""
    return str(item.get("category") or _SUBTYPE_CATEGORY.get(str(item.get("subType") or ""), "normal"))


def parse_fill_history(item: Item, inst: Instrument, algo_kind: str | None = None) -> Fill:
    """One GET /trade/fills-history item -> Fill (the REST twin of a fill push, same signs).

    fills-history has no algoId; callers that looked the order up pass it merged into ``item``
    (keys algoId/category/reduceOnly) together with the algo kind.
    """
    category = fill_category(item)
    algo_id = str(item.get("algoId") or "")
    cl_id = str(item.get("clOrdId") or "")
    return Fill(
        fill_id=str(item["tradeId"]),
        order_id=str(item["ordId"]),
        client_order_id=cl_id,
        symbol=inst.symbol,
        side=OrderSide(item["side"]),
        contracts=dec(item["fillSz"]),
        contract_size=inst.contract_size,
        price=dec(item["fillPx"]),
        fee=-dec(item.get("fee"), default=ZERO),
        fee_ccy=str(item.get("feeCcy") or inst.settle_ccy),
        ts=_ts(item.get("fillTime"), item.get("ts")),
        reduce_only=_bool(item.get("reduceOnly")),
        liquidity=Liquidity.MAKER if item.get("execType") == "M" else Liquidity.TAKER,
        origin=classify_origin(category, algo_id, cl_id, algo_kind),
        pos_side=str(item.get("posSide") or "net"),
        category=category,
        algo_id=algo_id,
        fill_pnl=dec_or_none(item.get("fillPnl")),
    )


def parse_position(item: Item, inst: Instrument) -> PositionPush:
    """positions push / GET /account/positions item. OKX signs kept (fee negative = paid)."""
    return PositionPush(
        symbol=inst.symbol,
        pos_side=str(item.get("posSide") or "net"),
        position_key=str(item.get("posId") or ""),
        contracts=dec(item.get("pos"), default=ZERO),
        entry_price=dec_or_none(item.get("avgPx")),
        mark_price=dec_or_none(item.get("markPx")),
        unrealized_pnl=dec_or_none(item.get("upl")),
        realized_pnl=dec_or_none(item.get("realizedPnl")),
        fee=dec_or_none(item.get("fee")),
        funding_fee=dec_or_none(item.get("fundingFee")),
        leverage=dec_or_none(item.get("lever")),
        margin_mode=str(item.get("mgnMode") or ""),
        liq_price=dec_or_none(item.get("liqPx")),
        created_at=utc_from_ms(item["cTime"]) if item.get("cTime") else None,
        ts=_ts(item.get("uTime"), item.get("pTime")),
    )


def parse_account(item: Item, ccy: str) -> AccountSnapshot:
    """account push / GET /account/balance item -> equity and available margin in ``ccy``.

    availEq is OKX's available equity in margin modes; availBal covers the simple mode where
    availEq is "". Total equity is totalEq (USD) and falls back to the currency's eq.
    """
    detail: Item = next((d for d in item.get("details") or () if d.get("ccy") == ccy), {})
    available = dec_or_none(detail.get("availEq"))
    if available is None:
        available = dec(detail.get("availBal"), default=ZERO)
    equity = dec_or_none(item.get("totalEq"))
    if equity is None:
        equity = dec(detail.get("eq"), default=ZERO)
    upl = dec_or_none(item.get("upl"))
    if upl is None:
        upl = dec(detail.get("upl"), default=ZERO)
    return AccountSnapshot(equity=equity, available=available, unrealized_pnl=upl, ccy=ccy,
                           ts=_ts(item.get("uTime"), detail.get("uTime")))


def parse_mark_price(item: Item, inst: Instrument) -> MarkPrice:
    return MarkPrice(symbol=inst.symbol, price=dec(item["markPx"]), ts=_ts(item.get("ts")))


def parse_funding_rate(item: Item, inst: Instrument) -> FundingRate:
    nxt = item.get("fundingTime") or item.get("nextFundingTime")
    return FundingRate(symbol=inst.symbol, rate=dec(item["fundingRate"]),
                       next_funding_time=utc_from_ms(nxt) if nxt else None, ts=_ts(item.get("ts")))


def parse_funding_signals(item: Item, by_id: Mapping[str, Instrument]) -> list[FundingSignal]:
    """balance_and_position item -> FundingSignals, only for eventType funding_fee."""
    if item.get("eventType") != "funding_fee":
        return []
    ts = _ts(item.get("pTime"))
    symbols = {by_id[p["instId"]].symbol for p in item.get("posData") or () if p.get("instId") in by_id}
    return [FundingSignal(s, ts) for s in sorted(symbols)] or [FundingSignal(None, ts)]


def parse_funding_bill(item: Item, inst: Instrument) -> FundingBill:
    """GET /account/bills(-archive) type=8 item. balChg is already a cash flow (+ received).

    OKX bills carry no funding rate; a ``fundingRate``/``rate`` field is used when present.
    """
    rate = dec_or_none(item.get("fundingRate") or item.get("rate"))
    return FundingBill(
        bill_id=str(item["billId"]),
        symbol=inst.symbol,
        amount=dec(item["balChg"]),
        position_contracts=dec(item.get("sz"), default=ZERO),
        mark_price=dec(item.get("px"), default=ZERO),
        rate=rate,
        ccy=str(item.get("ccy") or inst.settle_ccy),
        ts=_ts(item.get("ts"), item.get("fillTime")),
    )


def parse_position_history(item: Item, inst: Instrument) -> PositionHistoryRecord:
    """GET /account/positions-history item, OKX signs kept (fee/liqPenalty negative = paid)."""
    return PositionHistoryRecord(
        symbol=inst.symbol,
        position_key=str(item.get("posId") or ""),
        pos_side=str(item.get("posSide") or "net"),
        direction=str(item.get("direction") or ""),
        close_type=int(item.get("type") or 0),
        open_avg_price=dec(item.get("openAvgPx"), default=ZERO),
        close_avg_price=dec(item.get("closeAvgPx"), default=ZERO),
        open_max_contracts=dec(item.get("openMaxPos"), default=ZERO),
        closed_contracts=dec(item.get("closeTotalPos"), default=ZERO),
        pnl=dec(item.get("pnl"), default=ZERO),
        fee=dec(item.get("fee"), default=ZERO),
        funding_fee=dec(item.get("fundingFee"), default=ZERO),
        liq_penalty=dec(item.get("liqPenalty"), default=ZERO),
        realized_pnl=dec(item.get("realizedPnl"), default=ZERO),
        created_at=_ts(item.get("cTime")),
        updated_at=_ts(item.get("uTime"), item.get("cTime")),
    )


def instrument_from_market(market: Mapping[str, Any]) -> Instrument:
    """ccxt market -> Instrument, from OKX's raw ``info`` strings (ccxt's floats are not money)."""
    info = market["info"]
    return Instrument(
        symbol=market["symbol"],
        inst_id=str(info["instId"]),
        contract_size=dec(info["ctVal"]) * dec(info.get("ctMult"), default=Decimal(1)),
        lot_size=dec(info["lotSz"]),
        min_size=dec(info["minSz"]),
        tick_size=dec(info["tickSz"]),
        settle_ccy=str(info.get("settleCcy") or market.get("settle") or "USDT"),
        base_ccy=str(market.get("base") or ""),
    )
