"""Bybit v5 payloads -> domain events (the first part of the native ``bybit`` venue).

Pure functions over Bybit's own fields, REST and WebSocket alike (they share field names):
executions (``/v5/execution/list``, ``execution`` topic), positions, the UNIFIED wallet and
closed-PnL records. Signs become the domain's: a Fill's fee is a cost (Bybit's execFee already is:
> 0 paid), a FundingBill's amount is a signed cash flow (+ received, the opposite of a funding
execution's execFee). Quantities are coins on Bybit's linear perpetuals: the instrument's
contract size is 1, so contracts = coins.

The venue around these is core.venue.bybit (streams, REST) with core.venue.bybit_history (backfill)
and core.venue.bybit_lives (per-life close records).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.events import AccountSnapshot, FundingBill, PositionPush
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
from core.venue.okx_parse import classify_origin

Item = Mapping[str, Any]
TRADE_EXEC_TYPES = ("Trade", "AdlTrade", "BustTrade")  # the executions that move a position
POS_SIDES = {0: PosSide.NET, 1: PosSide.LONG, 2: PosSide.SHORT}
CATEGORIES = {"Trade": "normal", "AdlTrade": "adl", "BustTrade": "full_liquidation"}


@dataclass(frozen=True, slots=True)
class ClosedPnl:
    """One /v5/position/closed-pnl record: the closing part of one order (Bybit has no position id).

    ``closed_pnl`` is Bybit's: the closing executions' gross PnL less ``open_fee`` and ``close_fee``
    (fees as costs, > 0 paid), funding not included.
    """

    order_id: str
    symbol: str
    side: OrderSide  # the closing order's side
    closed_coins: Decimal
    avg_entry_price: Decimal
    avg_exit_price: Decimal
    closed_pnl: Decimal
    open_fee: Decimal | None
    close_fee: Decimal | None
    fill_count: int
    exec_type: str
    created_at: datetime
    updated_at: datetime


def _side(v: Any) -> OrderSide:
    s = str(v or "")
    if s not in ("Buy", "Sell"):
        raise ValueError(f"side {s!r} is neither Buy nor Sell")
    return OrderSide.BUY if s == "Buy" else OrderSide.SELL


def _origin(item: Item) -> Origin:
    stop = str(item.get("stopOrderType") or "")
    kind = "tp" if stop in ("TakeProfit", "PartialTakeProfit") else "sl" if stop in ("StopLoss",
                                                                                       "PartialStopLoss") else None
    category = CATEGORIES.get(str(item.get("execType") or ""), "normal")
    return classify_origin(category, str(item.get("orderId") or "") if kind else "",
                           str(item.get("orderLinkId") or ""), kind)


def leg_of(item: Item) -> PosSide:
    """An order's (or position's) leg from its positionIdx: 0 one-way, 1 buy side, 2 sell side."""
    return POS_SIDES.get(int(item.get("positionIdx") or 0), PosSide.NET)


def is_trade(item: Item) -> bool:
    return str(item.get("execType") or "") in TRADE_EXEC_TYPES


def is_funding(item: Item) -> bool:
    return str(item.get("execType") or "") == "Funding"


def parse_execution(item: Item, inst: Instrument) -> Fill:
    """A Trade, AdlTrade or BustTrade execution -> Fill (fill_id = execId, fee = execFee)."""
    if not is_trade(item):
        raise ValueError(f"execution {item.get('execId')!r} is a {item.get('execType')!r}, not a trade")
    category = CATEGORIES[str(item["execType"])]
    return Fill(
        fill_id=str(item["execId"]),
        order_id=str(item["orderId"]),
        client_order_id=str(item.get("orderLinkId") or ""),
        symbol=inst.symbol,
        side=_side(item.get("side")),
        contracts=dec(item["execQty"]) / inst.contract_size,
        contract_size=inst.contract_size,
        price=dec(item["execPrice"]),
        fee=dec(item["execFee"]),
        fee_ccy=str(item.get("feeCurrency") or inst.settle_ccy),
        ts=utc_from_ms(item["execTime"]),
        liquidity=Liquidity.MAKER if item.get("isMaker") is True else Liquidity.TAKER,
        origin=_origin(item),
        category=category,
        fill_pnl=dec_or_none(item.get("execPnl")),
    )


def parse_funding_execution(item: Item, inst: Instrument) -> FundingBill:
    """A Funding execution -> FundingBill: amount = -execFee (execFee > 0 means the account paid)."""
    if not is_funding(item):
        raise ValueError(f"execution {item.get('execId')!r} is not a funding execution")
    return FundingBill(
        bill_id=str(item["execId"]),
        symbol=inst.symbol,
        amount=-dec(item["execFee"]),
        position_contracts=dec(item.get("execQty"), default=ZERO) / inst.contract_size,
        mark_price=dec(item.get("execPrice") or item.get("markPrice"), default=ZERO),
        rate=dec_or_none(item.get("feeRate")),
        ccy=str(item.get("feeCurrency") or inst.settle_ccy),
        ts=utc_from_ms(item["execTime"]),
    )


def parse_position(item: Item, inst: Instrument) -> PositionPush:
    """position-list item or position topic item. contracts signed in one-way mode (Sell: < 0).

    Bybit's curRealisedPnl (realised PnL of the current holding, fees and funding in) is the only
    realised figure; fee and funding are not told apart on a position, so they stay None.
    """
    idx = int(item.get("positionIdx") or 0)
    pos_side = POS_SIDES.get(idx, PosSide.NET)
    size = dec(item.get("size"), default=ZERO)
    if pos_side is PosSide.NET and str(item.get("side") or "") == "Sell":
        size = -size
    entry = dec_or_none(item.get("avgPrice") if item.get("avgPrice") not in (None, "") else item.get("entryPrice"))
    tp, sl = dec_or_none(item.get("takeProfit")), dec_or_none(item.get("stopLoss"))
    return PositionPush(
        symbol=inst.symbol,
        pos_side=pos_side,
        position_key=f"{item.get('symbol')}:{idx}",
        contracts=size / inst.contract_size,
        entry_price=entry if size else None,
        mark_price=dec_or_none(item.get("markPrice")),
        unrealized_pnl=dec_or_none(item.get("unrealisedPnl")),
        realized_pnl=dec_or_none(item.get("curRealisedPnl")),
        fee=None,
        funding_fee=None,
        leverage=dec_or_none(item.get("leverage")),
        margin_mode="isolated" if item.get("tradeMode") == 1 else "cross",
        liq_price=dec_or_none(item.get("liqPrice")),
        created_at=utc_from_ms(item["createdTime"]) if item.get("createdTime") else None,
        ts=utc_from_ms(item.get("updatedTime") or item.get("createdTime") or 0),
        take_profit=tp if tp else None,
        stop_loss=sl if sl else None,
    )


def parse_wallet(item: Item, ccy: str, ts_ms: int) -> AccountSnapshot | None:
    """wallet-balance list item or wallet topic item -> the ``ccy`` coin's equity and available.

    None when the item has no ``ccy`` coin. Available is the account's totalAvailableBalance (a
    unified account's margin is shared; Bybit gives it in USD, 1:1 with USDT here).
    """
    coin = next((c for c in item.get("coin") or [] if c.get("coin") == ccy), None)
    if coin is None:
        return None
    available = dec_or_none(item.get("totalAvailableBalance"))
    if available is None:
        available = dec(coin.get("availableToWithdraw"), default=ZERO)
    return AccountSnapshot(equity=dec(coin.get("equity"), default=ZERO), available=available,
                           unrealized_pnl=dec(coin.get("unrealisedPnl"), default=ZERO), ccy=ccy,
                           ts=utc_from_ms(ts_ms))


def parse_closed_pnl(item: Item, inst: Instrument) -> ClosedPnl:
    return ClosedPnl(
        order_id=str(item["orderId"]),
        symbol=inst.symbol,
        side=_side(item.get("side")),
        closed_coins=dec(item["closedSize"]),
        avg_entry_price=dec(item["avgEntryPrice"]),
        avg_exit_price=dec(item["avgExitPrice"]),
        closed_pnl=dec(item["closedPnl"]),
        open_fee=dec_or_none(item.get("openFee")),
        close_fee=dec_or_none(item.get("closeFee")),
        fill_count=int(item.get("fillCount") or 0),
        exec_type=str(item.get("execType") or "Trade"),
        created_at=utc_from_ms(item["createdTime"]),
        updated_at=utc_from_ms(item["updatedTime"]),
    )


ORDER_STATES = {"New": OrderState.PLACED, "PartiallyFilled": OrderState.PARTIALLY_FILLED,
                "Filled": OrderState.FILLED, "Cancelled": OrderState.CANCELED,
                "PartiallyFilledCanceled": OrderState.CANCELED, "Deactivated": OrderState.CANCELED,
                "Rejected": OrderState.REJECTED}


def is_conditional(item: Item) -> bool:
    """A TP/SL or trigger order still held by Bybit (or deactivated): not a working order."""
    return str(item.get("orderStatus") or "") in ("Untriggered", "Triggered", "Deactivated") and \
        str(item.get("stopOrderType") or "") not in ("", "UNKNOWN")


def parse_order(item: Item, inst: Instrument) -> OrderUpdate | None:
    """An order topic / order list item -> OrderUpdate; None for a state perpdesk does not journal
    (a conditional order still waiting for its trigger)."""
    state = ORDER_STATES.get(str(item.get("orderStatus") or ""))
    if state is None or is_conditional(item):
        return None
    avg = dec_or_none(item.get("avgPrice"))
    price = dec_or_none(item.get("price"))
    return OrderUpdate(
        order_id=str(item["orderId"]),
        client_order_id=str(item.get("orderLinkId") or ""),
        symbol=inst.symbol,
        side=_side(item.get("side")),
        order_type=str(item.get("orderType") or "").lower(),
        contracts=dec(item.get("qty"), default=ZERO) / inst.contract_size,
        contract_size=inst.contract_size,
        price=price if price else None,
        state=state,
        ts=utc_from_ms(item.get("updatedTime") or item.get("createdTime") or 0),
        reduce_only=item.get("reduceOnly") is True,
        origin=_origin(item),
        filled_contracts=dec(item.get("cumExecQty"), default=ZERO) / inst.contract_size,
        avg_price=avg if avg else None,
        message=str(item.get("rejectReason") or "") if state is OrderState.REJECTED else "",
    )
