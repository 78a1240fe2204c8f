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
    CloseKind,
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
    PosSide,
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


# OKX order ``source``: which algo order spawned a normal order. Only 7 is a TP/SL; a trigger
# entry (6), an algo slice (13), a trailing stop (25) or a chase (34) is no stop-loss.
_TPSL_SOURCE = "7"
_OTHER_ALGO_SOURCES = frozenset({"6", "13", "25", "34"})
# Algo ordTypes that are not a TP/SL (conditional and oco are).
_OTHER_ALGO_TYPES = frozenset({"trigger", "move_order_stop", "iceberg", "twap", "chase"})
OTHER_ALGO = "other"  # algo kind of an algo order that is neither TP nor SL


class OkxParseError(ValueError):
    """An OKX record that cannot be turned into a domain fact; the message names the field."""


def describe_error(exc: BaseException) -> str:
    """One phrase for a parse failure, for the log and the MalformedPush reason."""
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    if isinstance(exc, OkxParseError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _required(item: Item, key: str, what: str) -> Decimal:
    """A number OKX always sends for ``what``; absent or "" is an OkxParseError, never 0."""
    value = item.get(key)
    if value is None or value == "":
        raise OkxParseError(f"{what} without {key}")
    return dec(value)


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
    and one with both (attached TP+SL / oco) is undecided until it fires. An algo item whose own
    ordType is a trigger, trailing stop, iceberg, TWAP or chase is OTHER_ALGO: no TP, no SL.
    """
    if str(item.get("ordType") or "") in _OTHER_ALGO_TYPES:
        return OTHER_ALGO
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
    algo, the close reason is tp/sl), then our own clOrdId prefixes; the rest is external. An
    algo-born order whose kind is not known to be TP or SL is never guessed to be a stop-loss.
    """
    if category in ("full_liquidation", "partial_liquidation"):
        return Origin.LIQUIDATION
    if category == "adl":
        return Origin.ADL
    if algo_id and algo_kind == "tp":
        return Origin.TP
    if algo_id and algo_kind == "sl":
        return Origin.SL
    if client_order_id.startswith(CONSOLE_PREFIX):
        return Origin.CONSOLE
    if client_order_id.startswith(STRATEGY_PREFIX):
        return Origin.STRATEGY
    return Origin.EXTERNAL


def order_algo_kind(item: Item, known: Mapping[str, str]) -> str | None:
    """Algo kind of an algo-born order: remembered from orders-algo, else told by the order's
    ``source`` (7 TP/SL, 6/13/25/34 other algos) and its trigger hints; None if undecidable."""
    algo_id = str(item.get("algoId") or "")
    if not algo_id:
        return None
    if algo_id in known:
        return known[algo_id]
    source = str(item.get("source") or "")
    if source in _OTHER_ALGO_SOURCES:
        return OTHER_ALGO
    return algo_kind_of(item)


def needs_algo_lookup(item: Item, known: Mapping[str, str]) -> bool:
    """A normal fill of an algo-born order whose kind the push cannot tell: ask REST first."""
    return (bool(item.get("algoId")) and bool(item.get("tradeId"))
            and (item.get("category") or "normal") == "normal"
            and order_algo_kind(item, known) is None)


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
            avg_price=_avg_price(item),
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
            fee=-_required(item, "fillFee", "fill"),  # absent: resync from fills-history, never fee 0
            fee_ccy=str(item.get("fillFeeCcy") or item.get("feeCcy") or inst.settle_ccy),
            ts=_ts(item.get("fillTime"), item.get("uTime")),
            reduce_only=reduce_only,
            liquidity=Liquidity.MAKER if item.get("execType") == "M" else Liquidity.TAKER,
            origin=origin,
            pos_side=PosSide(str(item.get("posSide") or "net")),
            category=category,
            algo_id=algo_id,
            fill_pnl=dec_or_none(item.get("fillPnl")),
            liq_penalty=-penalty if penalty is not None else ZERO,
        )
    return update, fill


def _avg_price(item: Item) -> Decimal | None:
    """avgPx of an order; "0" (OKX's value while nothing is filled) means none, not a price of 0."""
    avg = dec_or_none(item.get("avgPx"))
    return avg if avg else None


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
        fee=-_required(item, "fee", "fills-history item"),
        fee_ccy=str(item.get("feeCcy") or inst.settle_ccy),
        ts=_ts(item.get("fillTime"), item.get("ts")),
        reduce_only=_bool(item.get("reduceOnly")),
        liquidity=Liquidity.MAKER if item.get("execType") == "M" else Liquidity.TAKER,
        origin=classify_origin(category, algo_id, cl_id, algo_kind),
        pos_side=PosSide(str(item.get("posSide") or "net")),
        category=category,
        algo_id=algo_id,
        fill_pnl=dec_or_none(item.get("fillPnl")),
    )


def parse_position(item: Item, inst: Instrument) -> PositionPush:
    """positions push / GET /account/positions item. OKX signs kept (fee negative = paid)."""
    return PositionPush(
        symbol=inst.symbol,
        pos_side=PosSide(str(item.get("posSide") or "net")),
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
        take_profit=_close_trigger(item, "tpTriggerPx"),
        stop_loss=_close_trigger(item, "slTriggerPx"),
    )


def _close_trigger(item: Item, field: str) -> Decimal | None:
    """The trigger of the position's close algo (``closeOrderAlgo``) that closes the largest share
    of it; None when no algo has that leg. An item that is not an object is skipped."""
    best: tuple[Decimal, Decimal] | None = None
    for algo in item.get("closeOrderAlgo") or ():
        if not isinstance(algo, Mapping):
            continue
        px = dec_or_none(algo.get(field))
        if px is None or px <= 0:
            continue
        fraction = dec_or_none(algo.get("closeFraction")) or ZERO
        if best is None or fraction > best[0]:
            best = (fraction, px)
    return best[1] if best is not None else None


def _detail(item: Item, ccy: str) -> Item | None:
    return next((d for d in item.get("details") or () if isinstance(d, Mapping) and d.get("ccy") == ccy), None)


def account_mentions(item: Item, ccy: str) -> bool:
    """Whether an account push carries ``ccy``: after the snapshot OKX pushes only the currencies
    that changed, and a currency absent from a push is unchanged, not zero."""
    return _detail(item, ccy) is not None


def parse_account(item: Item, ccy: str) -> AccountSnapshot | None:
    """account push / GET /account/balance item -> equity and available margin in ``ccy``.

    Everything comes from the ``ccy`` entry of ``details``: the top-level totalEq is the whole
    account in USD (every currency), and the top-level upl is filled only in multi-currency and
    portfolio margin ("0" or "" otherwise), so neither is a USDT figure. availEq is the available
    equity in margin modes; availBal covers the simple mode where availEq is "". None when the
    item has no ``ccy`` entry (an incremental push of other currencies).
    """
    detail = _detail(item, ccy)
    if detail is None:
        return None
    available = dec_or_none(detail.get("availEq"))
    if available is None:
        available = dec(detail.get("availBal"), default=ZERO)
    return AccountSnapshot(equity=dec(detail.get("eq"), default=ZERO), available=available,
                           unrealized_pnl=dec(detail.get("upl"), default=ZERO), ccy=ccy,
                           ts=_ts(detail.get("uTime"), item.get("uTime")))


def empty_account(ccy: str, item: Item) -> AccountSnapshot:
    """The balance of an account that holds no ``ccy`` at all (REST lists only held currencies)."""
    return AccountSnapshot(equity=ZERO, available=ZERO, unrealized_pnl=ZERO, ccy=ccy, ts=_ts(item.get("uTime")))


def _ms_time(ms: Any) -> datetime:
    """An OKX ms timestamp as a UTC datetime, in half the time of ``utc_from_ms`` (EPOCH plus a
    timedelta). The float is exact to the millisecond: a ms count / 1000 is off by less than a
    float's 0.25 us step up to year 2100, and fromtimestamp rounds to the nearest microsecond."""
    return datetime.fromtimestamp(int(ms) / 1000, UTC)  # float ok: a time, not money


def parse_mark_price(item: Item, inst: Instrument) -> MarkPrice:
    """Hot path (every mark push of every instrument): one Decimal, one datetime."""
    ts = item.get("ts")
    return MarkPrice(inst.symbol, dec(item["markPx"]),
                     datetime.now(UTC) if ts is None or ts == "" else _ms_time(ts))


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


def funding_amount(item: Item) -> Decimal:
    """The signed funding cash flow of a bill (+ received).

    Cross margin books funding to the balance: ``balChg``. Isolated margin books it to the
    position: ``balChg`` is "0" and the money is in ``posBalChg`` (and ``pnl``, which OKX names
    as the funding figure). Reading only balChg would journal an isolated position's funding as 0.
    """
    bal = dec_or_none(item.get("balChg"))
    pos_bal = dec_or_none(item.get("posBalChg"))
    isolated = str(item.get("mgnMode") or "") == "isolated"
    if isolated or (not bal and pos_bal):
        for amount in (pos_bal, dec_or_none(item.get("pnl"))):
            if amount:
                return amount
        return bal or ZERO
    if bal is None:
        raise OkxParseError("funding bill without balChg")
    return bal


def parse_funding_bill(item: Item, inst: Instrument) -> FundingBill:
    """GET /account/bills(-archive) type=8 item (see funding_amount for where the money is).

    OKX bills carry no funding rate; a ``fundingRate``/``rate`` field is used when present.
    """
    rate = dec_or_none(item.get("fundingRate") or item.get("rate"))
    return FundingBill(
        bill_id=str(item["billId"]),
        symbol=inst.symbol,
        amount=funding_amount(item),
        position_contracts=dec(item.get("sz"), default=ZERO),
        mark_price=dec(item.get("px"), default=ZERO),
        rate=rate,
        ccy=str(item.get("ccy") or inst.settle_ccy),
        ts=_ts(item.get("ts"), item.get("fillTime")),
    )


def funding_bill_or_none(item: Item, by_id: Mapping[str, Instrument]) -> FundingBill | None:
    """A bills item -> FundingBill if it is a funding-fee bill of a configured instrument, else None.

    The bills endpoints list every balance change (trades, transfers, interest...); only type 8
    is funding, and a bill without ``type`` is taken as the type-8 bill the request asked for.
    Anything else must stay out of the funding journal, whatever its balChg.
    """
    inst = by_id.get(str(item.get("instId") or ""))
    if inst is None or str(item.get("type") or "8") != "8":
        return None
    return parse_funding_bill(item, inst)


def parse_position_history(item: Item, inst: Instrument) -> PositionHistoryRecord:
    """GET /account/positions-history item, OKX signs kept (fee/liqPenalty negative = paid)."""
    return PositionHistoryRecord(
        symbol=inst.symbol,
        position_key=str(item.get("posId") or ""),
        pos_side=PosSide(str(item.get("posSide") or "net")),
        direction=str(item.get("direction") or ""),
        close_type=_close_type(item),
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


def _close_type(item: Item) -> CloseKind:
    """positions-history ``type`` (1 partial ... 6 adl full, CloseKind's own numbers); a
    non-number is this record's error, an absent or unknown number is CloseKind.UNKNOWN."""
    value = str(item.get("type") or "")
    if value == "":
        return CloseKind.UNKNOWN
    if not value.isdigit():
        raise OkxParseError(f"positions-history record {item.get('posId') or '?'} has type {value!r}, "
                            "not a number (1-6)")
    return CloseKind.of(value)


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
        max_market_size=dec_or_none(info.get("maxMktSz")) or None,
        max_limit_size=dec_or_none(info.get("maxLmtSz")) or None,
    )
