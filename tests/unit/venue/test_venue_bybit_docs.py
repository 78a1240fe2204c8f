"""The Bybit parsers held against Bybit's documented examples (tests/fixtures/bybit_docs).

Three ways, as the OKX parsers are held to OKX's: the documented items as written (their values
come out right), with "" in every field (a money field Bybit leaves empty is an error, never a
zero), and as a push of several items of which one is bad (only that one is skipped, and reported
so the engine resyncs). The documented items are other instruments than ours (ETHPERP, an option):
they are moved onto BTCUSDT where they go through the venue, and changed in nothing else.
"""
from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest

from core.events import AccountSnapshot, MalformedPush, PositionPush
from core.model import Fill, Instrument, OrderState, OrderUpdate, Origin, PosSide
from core.money import MoneyError
from core.settings.config import ExchangeSettings
from core.venue import bybit_parse as bp
from core.venue.bybit import BybitVenue
from tests.helpers.paths import FIXTURES

DOCS = FIXTURES / "bybit_docs"
BTC = Instrument("BTC/USDT:USDT", "BTCUSDT", D(1), D("0.001"), D("0.001"), D("0.1"))
UNREADABLE = (KeyError, ValueError, TypeError, ArithmeticError, MoneyError)


def example(name: str) -> Any:
    return json.loads((DOCS / f"{name}.json").read_text())["example"]


def items(name: str) -> list[dict[str, Any]]:
    ex = example(name)
    data = ex["result"]["list"] if "result" in ex else ex["data"]
    return list(data)


def blank(item: dict[str, Any]) -> dict[str, Any]:
    return {k: "" if isinstance(v, str) else v for k, v in item.items()}


def venue() -> tuple[BybitVenue, list[object]]:
    v = BybitVenue(ExchangeSettings(venue="bybit", url="http://127.0.0.1:9", symbols=(BTC.symbol,)), None)
    v.markets.by_symbol, v.markets.by_id = {BTC.symbol: BTC}, {BTC.inst_id: BTC}
    events: list[object] = []
    v.sink = events.append
    return v, events


def test_documented_executions() -> None:
    (ws,) = items("ws_execution")
    f = bp.parse_execution(ws, BTC)
    assert (f.fill_id, f.order_id, f.side, f.contracts, f.price, f.fee, f.fill_pnl) == (
        "0ab1bdf7-4219-438b-b30a-32ec863018f7", "9aac161b-8ed6-450d-9cab-c5cc67c21784", "sell", D("0.5"),
        D("95900.1"), D("26.3725275"), D("0.05"))
    assert f.ts.timestamp() * 1000 == 1746270400353 and f.origin is Origin.EXTERNAL
    (rest,) = items("execution_list")
    f = bp.parse_execution(rest, BTC)
    assert (f.fee, f.contracts, f.fill_pnl) == (D("0.071409"), D("0.1"), None)  # the REST example has no execPnl


def test_documented_positions_wallets_orders_and_closes() -> None:
    (pos,) = items("position_list")
    p = bp.parse_position(pos, BTC)
    assert p.contracts == D(-300) and p.entry_price == D("27464.50441675") and p.pos_side is PosSide.NET
    assert p.take_profit is None and p.realized_pnl == D("0.00013123")
    (ws_pos,) = items("ws_position")
    assert bp.parse_position(ws_pos, BTC).pos_side is PosSide.SHORT
    (wallet,) = items("account_wallet_balance")
    snap = bp.parse_wallet(wallet, "BTC", 0)
    assert snap is not None and snap.available == D("3.00326056") and snap.equity == 0
    (closed,) = items("position_closed_pnl")
    c = bp.parse_closed_pnl(closed, BTC)
    assert (c.closed_coins, c.avg_entry_price, c.avg_exit_price, c.closed_pnl) == (
        D(3), D("1194.97516667"), D("1180.59833333"), D("-47.4065323"))
    (live,) = items("order_realtime")
    o = bp.parse_order(live, BTC)
    assert o is not None and o.state is OrderState.PLACED and o.price == 1600 and o.avg_price is None
    (done,) = items("order_history")
    o = bp.parse_order(done, BTC)
    assert o is not None and o.state is OrderState.CANCELED and o.filled_contracts == 0
    (opt,) = items("ws_order")
    o = bp.parse_order(opt, BTC)
    assert o is not None and o.state is OrderState.FILLED and o.avg_price == 75


@pytest.mark.parametrize("name", ["ws_execution", "execution_list"])
def test_an_execution_with_empty_money_fields_is_unreadable_never_zero(name: str) -> None:
    (item,) = items(name)
    with pytest.raises(UNREADABLE):
        bp.parse_execution({**item, "execFee": ""}, BTC)
    with pytest.raises(UNREADABLE):
        bp.parse_execution(blank(item), BTC)


@pytest.mark.parametrize("name", ["position_list", "ws_position"])
def test_a_position_with_empty_fields_is_flat_and_unknown(name: str) -> None:
    (item,) = items(name)
    p = bp.parse_position(blank(item), BTC)
    assert p.contracts == 0 and p.entry_price is None and p.mark_price is None and p.realized_pnl is None


def test_closed_pnl_with_empty_fields_is_unreadable() -> None:
    (item,) = items("position_closed_pnl")
    with pytest.raises(UNREADABLE):
        bp.parse_closed_pnl(blank(item), BTC)


async def test_a_push_of_several_items_one_bad_only_the_bad_one_is_skipped() -> None:
    v, events = venue()
    (ex,) = items("ws_execution")
    good = [{**ex, "execId": f"e{i}"} for i in range(3)]
    bad = {**ex, "execId": "bad", "execFee": ""}
    v.on_push("private", {"topic": "execution", "data": [good[0], bad, good[1], good[2]]})
    fills = [e for e in events if isinstance(e, Fill)]
    assert [f.fill_id for f in fills] == ["e0", "e1", "e2"]
    assert [e.channel for e in events if isinstance(e, MalformedPush)] == ["execution"]

    events.clear()
    (pos,) = items("ws_position")
    v.on_push("private", {"topic": "position", "data": [{**pos, "size": "x"}, {**pos, "size": "1", "side": "Buy"}]})
    assert [type(e) for e in events] == [MalformedPush, PositionPush]

    events.clear()
    (order,) = items("ws_order")
    on_btc = {**order, "symbol": "BTCUSDT", "category": "linear"}
    v.on_push("private", {"topic": "order", "data": [{**on_btc, "side": "Up"}, on_btc]})
    assert [type(e) for e in events] == [MalformedPush, OrderUpdate]

    events.clear()
    (wallet,) = items("ws_wallet")
    usdt = {**wallet, "coin": [{**wallet["coin"][0], "coin": "USDT"}]}
    v.on_push("private", {"topic": "wallet", "data": [wallet, usdt]})  # the BTC-only item says nothing
    assert [type(e) for e in events] == [AccountSnapshot]
