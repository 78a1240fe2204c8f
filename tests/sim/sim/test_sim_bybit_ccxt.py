"""The simulator's Bybit v5 face driven by UNMODIFIED ccxt.pro.bybit (async REST and WebSocket).

Prices are frozen (speed=0) and moved through /sim/v1/price with Bybit symbols; slippage and
spread are zero so every expected number is computed by hand from the fee rates. Quantities are
coins (Bybit linear: contracts = coins), while the exchange core counts OKX contracts of 0.01 BTC.
The money checks follow Bybit's documented fields: execFee > 0 is paid, execPnl is gross (no fees,
no funding), closedPnl = sum(execPnl) - openFee - closeFee, the transaction log's
change = cashFlow + funding - fee, and walletBalance moves by exactly the sum of the changes.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import ccxt.pro
import pytest
from ccxt.base.errors import AuthenticationError, BadRequest, InsufficientFunds, InvalidOrder, OrderNotFound

from core.sim.ccxt_client import bybit_client
from core.sim.server import SimServer
from tests.helpers.engine_helpers import control, wait_for
from tests.helpers.sim_ccxt import BTC, bybit_sim

TAKER = D("0.0005")
MAKER = D("0.0002")


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SimServer, Any]]:
    async with bybit_sim(pro=True) as pair:
        yield pair


async def wallet(ex: Any) -> D:
    bal = await ex.fetch_balance()
    return D(bal["info"]["result"]["list"][0]["coin"][0]["walletBalance"])


async def raw(ex: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A private v5 endpoint through ccxt's own signed call (the raw Bybit fields)."""
    out: dict[str, Any] = await getattr(ex, method)(params)
    assert out["retCode"] == 0, out
    return out["result"]


async def test_markets_balance_and_signing(sim: tuple[SimServer, Any]) -> None:
    srv, ex = sim
    m = ex.market(BTC)
    assert m["id"] == "BTCUSDT" and m["linear"] and m["swap"] and m["contractSize"] == 1
    assert m["precision"]["amount"] == 0.0001 and m["precision"]["price"] == 0.1  # 0.01 contract x 0.01 BTC
    assert await wallet(ex) == D("10000")
    assert (await ex.fetch_ticker(BTC))["last"] == 60000
    # a wrong secret signs wrongly: Bybit's 10004, which ccxt maps to AuthenticationError
    bad = bybit_client(ccxt.pro.bybit, srv.url, srv.ws_url, secret="not-the-secret")
    bad.markets, bad.markets_by_id, bad.symbols = ex.markets, ex.markets_by_id, ex.symbols
    try:
        with pytest.raises(AuthenticationError):
            await bad.fetch_balance()
    finally:
        await bad.close()


async def test_trade_tp_fires_and_books_add_up(sim: tuple[SimServer, Any]) -> None:
    srv, ex = sim
    start = await wallet(ex)
    assert await ex.watch_positions() == []  # ccxt.pro's first call answers the REST snapshot only
    positions = asyncio.ensure_future(ex.watch_positions())
    orders = asyncio.ensure_future(ex.watch_orders(BTC))
    trades = asyncio.ensure_future(ex.watch_my_trades(BTC))
    await wait_for(lambda: srv.hub.listening("positions") and srv.hub.listening("orders"), what="private subscriptions")

    # market buy 0.02 BTC with a whole-position TP at 63000 and SL at 57000
    entry = await ex.create_order(BTC, "market", "buy", 0.02, params={"takeProfit": 63000, "stopLoss": 57000})
    await asyncio.wait_for(asyncio.gather(positions, orders, trades), 10)
    assert any(o["id"] == entry["id"] and o["status"] == "closed" for o in ex.orders)
    pos = (await ex.fetch_positions([BTC]))[0]
    assert pos["contracts"] == 0.02 and pos["side"] == "long" and pos["entryPrice"] == 60000
    assert D(pos["info"]["takeProfit"]) == 63000 and D(pos["info"]["stopLoss"]) == 57000

    # the TP and the SL are two conditional orders, as Bybit lists them; canceling the SL keeps the TP
    legs = {o["info"]["stopOrderType"]: o for o in await ex.fetch_open_orders(BTC)}
    assert legs["TakeProfit"]["triggerPrice"] == 63000 and legs["StopLoss"]["triggerPrice"] == 57000
    assert legs["TakeProfit"]["id"] != legs["StopLoss"]["id"] and legs["StopLoss"]["reduceOnly"]
    await ex.cancel_order(legs["StopLoss"]["id"], BTC)
    assert [o["info"]["stopOrderType"] for o in await ex.fetch_open_orders(BTC)] == ["TakeProfit"]
    pos = (await ex.fetch_positions([BTC]))[0]
    assert D(pos["info"]["takeProfit"]) == 63000 and D(pos["info"]["stopLoss"]) == 0

    # a reduce-only limit sell above the market rests; canceling it leaves the position alone
    rest = await ex.create_order(BTC, "limit", "sell", 0.01, 65000, params={"reduceOnly": True})
    assert {o["id"] for o in await ex.fetch_open_orders(BTC)} >= {rest["id"]}
    await ex.cancel_order(rest["id"], BTC)
    with pytest.raises(OrderNotFound):
        await ex.cancel_order(rest["id"], BTC)

    # reduce-only market sell of half at 61000
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "61000"})
    await ex.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})

    # the take-profit fires at 63000 and closes the rest (0.01)
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "63000"})
    streamed: list[dict[str, Any]] = []
    while not any(t["info"]["stopOrderType"] == "TakeProfit" for t in streamed):  # earlier fills come first
        streamed = await asyncio.wait_for(ex.watch_my_trades(BTC), 10)
    tp_fill = next(t for t in streamed if t["info"]["stopOrderType"] == "TakeProfit")
    assert tp_fill["price"] == 63000 and tp_fill["amount"] == 0.01 and tp_fill["side"] == "sell"
    assert await ex.fetch_positions([BTC]) == [] or (await ex.fetch_positions([BTC]))[0]["contracts"] in (0, None)

    # executions: entry (fee 0.02 x 60000 x taker), half close, TP close; execPnl is gross
    execs = (await raw(ex, "privateGetV5ExecutionList", {"category": "linear", "symbol": "BTCUSDT"}))["list"]
    trades_ = [e for e in execs if e["execType"] == "Trade"]
    assert len(trades_) == 3
    by_px = {D(e["execPrice"]): e for e in trades_}
    assert D(by_px[D(60000)]["execFee"]) == D("0.02") * 60000 * TAKER
    assert D(by_px[D(61000)]["execPnl"]) == D("0.01") * 1000 and D(by_px[D(61000)]["closedSize"]) == D("0.01")
    assert D(by_px[D(63000)]["execPnl"]) == D("0.01") * 3000
    assert by_px[D(63000)]["stopOrderType"] == "TakeProfit" and by_px[D(63000)]["createType"] == "CreateByTakeProfit"
    mine = await ex.fetch_my_trades(BTC)
    assert sorted(t["id"] for t in mine) == sorted(e["execId"] for e in trades_)

    # closed PnL: one record per closing order; closedPnl = execPnl - openFee - closeFee
    closed = (await raw(ex, "privateGetV5PositionClosedPnl", {"category": "linear", "symbol": "BTCUSDT"}))["list"]
    assert len(closed) == 2
    for rec in closed:
        exit_px = D(rec["avgExitPrice"])
        fee_close = D("0.01") * exit_px * TAKER
        fee_open = D("0.01") * 60000 * TAKER  # half of the entry's fee per closed half
        gross = (exit_px - 60000) * D("0.01")
        assert D(rec["openFee"]) == fee_open and D(rec["closeFee"]) == fee_close
        assert D(rec["closedPnl"]) == gross - fee_open - fee_close
        assert D(rec["avgEntryPrice"]) == 60000 and D(rec["closedSize"]) == D("0.01")
    hist = await ex.fetch_positions_history([BTC])
    assert len(hist) == 2

    # the wallet moved by exactly the sum of the closes' closedPnl (fees included, no funding yet)
    assert await wallet(ex) == start + sum(D(r["closedPnl"]) for r in closed)

    # the order stream told the TP's market order as Filled, created by the take-profit
    tp_orders = [o for o in ex.orders if o["info"].get("createType") == "CreateByTakeProfit"
                 and o["info"].get("orderStatus") == "Filled"]
    assert [(o["id"], o["side"], o["amount"]) for o in tp_orders] == [
        (by_px[D(63000)]["orderId"], "sell", 0.01)]  # the one order the TP execution belongs to


async def test_funding_executions_and_transaction_log(sim: tuple[SimServer, Any]) -> None:
    srv, ex = sim
    await ex.create_order(BTC, "market", "buy", 0.1)
    assert len(await ex.watch_positions()) == 1  # ccxt.pro's first call answers the REST snapshot only
    watch = asyncio.ensure_future(ex.watch_positions())
    await wait_for(lambda: srv.hub.listening("positions"), what="position subscription")
    before = await wallet(ex)
    await control(srv, "/sim/v1/funding", {"instId": "BTCUSDT", "rate": "0.0001"})
    await asyncio.wait_for(watch, 10)
    paid = D("0.1") * 60000 * D("0.0001")  # a long pays when the rate is positive
    assert await wallet(ex) == before - paid
    execs = (await raw(ex, "privateGetV5ExecutionList", {"category": "linear", "execType": "Funding"}))["list"]
    assert len(execs) == 1 and D(execs[0]["execFee"]) == paid and execs[0]["side"] == "Buy"
    # ccxt's fetch_my_trades asks for execType Trade only: funding never shows there
    assert all(t["info"]["execType"] == "Trade" for t in await ex.fetch_my_trades(BTC))
    log = (await raw(ex, "privateGetV5AccountTransactionLog", {"category": "linear"}))["list"]
    settle = [r for r in log if r["type"] == "SETTLEMENT"]
    assert len(settle) == 1 and D(settle[0]["funding"]) == -paid and D(settle[0]["change"]) == -paid
    for r in log:  # Bybit: change = cashFlow + funding - fee
        assert D(r["change"]) == D(r["cashFlow"]) + D(r["funding"] or 0) - D(r["fee"])
    assert sum(D(r["change"]) for r in log) == await wallet(ex) - D(10000)


async def test_insufficient_margin_is_bybits_110007(sim: tuple[SimServer, Any]) -> None:
    srv, ex = sim
    with pytest.raises(InsufficientFunds):
        await ex.create_order(BTC, "market", "buy", 100)


async def test_conditional_entry_order_fires_at_its_trigger(sim: tuple[SimServer, Any]) -> None:
    srv, ex = sim
    stop = await ex.create_order(BTC, "market", "buy", 0.01,
                                 params={"triggerPrice": 61000, "triggerDirection": "ascending"})
    other = await ex.create_order(BTC, "market", "sell", 0.01,
                                  params={"triggerPrice": 58000, "triggerDirection": "descending"})
    listed = {o["id"]: o for o in await ex.fetch_open_orders(BTC)}
    assert listed[stop["id"]]["triggerPrice"] == 61000 and listed[stop["id"]]["info"]["orderStatus"] == "Untriggered"
    await ex.cancel_order(other["id"], BTC)
    with pytest.raises(InvalidOrder):  # Bybit 110092: a rising trigger below the market
        await ex.create_order(BTC, "market", "buy", 0.01, params={"triggerPrice": 59000, "triggerDirection": "ascending"})
    assert await ex.fetch_positions([BTC]) == [] or (await ex.fetch_positions([BTC]))[0]["contracts"] in (0, None)
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "61000"})
    pos = (await ex.fetch_positions([BTC]))[0]
    assert pos["contracts"] == 0.01 and pos["entryPrice"] == 61000
    (fill,) = await ex.fetch_my_trades(BTC)
    assert fill["info"]["stopOrderType"] == "Stop" and fill["info"]["createType"] == "CreateByStopOrder"
    assert await ex.fetch_open_orders(BTC) == []


async def test_order_management_and_market_data(sim: tuple[SimServer, Any]) -> None:
    srv, ex = sim
    o = await ex.create_order(BTC, "limit", "buy", 0.01, 59000, params={"clientOrderId": "mine-1"})
    await ex.edit_order(o["id"], BTC, "limit", "buy", 0.02, 59500)
    live = await ex.fetch_open_order(o["id"], BTC)
    assert (live["amount"], live["price"], live["status"], live["clientOrderId"]) == (0.02, 59500, "open", "mine-1")
    await ex.cancel_order(o["id"], BTC)
    # an order asked for by id is found whatever its status (Bybit: among the recent 500)
    gone = await ex.fetch_order(o["id"], BTC, params={"acknowledged": True})
    assert gone["status"] == "canceled"
    assert [c["id"] for c in await ex.fetch_canceled_orders(BTC)] == [o["id"]]
    await ex.create_order(BTC, "limit", "sell", 0.01, 65000)
    await ex.create_order(BTC, "limit", "sell", 0.01, 66000)
    await ex.cancel_all_orders(BTC)
    assert await ex.fetch_open_orders(BTC) == []
    await ex.set_leverage(5, BTC)
    (pos,) = (await ex.private_get_v5_position_list({"category": "linear", "symbol": "BTCUSDT"}))["result"]["list"]
    assert pos["leverage"] == "5" and pos["size"] == "0"
    fee = await ex.fetch_trading_fee(BTC)
    assert (fee["maker"], fee["taker"]) == (0.0002, 0.0005)
    book = await ex.fetch_order_book(BTC, 5)
    assert book["bids"][0][0] == 60000 and len(book["asks"]) == 5
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "60100"})
    candles = await ex.fetch_ohlcv(BTC, "1m", limit=5)
    assert candles and candles[-1][4] == 60100  # the open bar, newest last in ccxt's order


async def test_hedge_mode_two_legs(sim: tuple[SimServer, Any]) -> None:
    srv, ex = sim
    await ex.set_position_mode(True, BTC)
    await ex.create_order(BTC, "market", "buy", 0.02, params={"positionIdx": 1})
    await ex.create_order(BTC, "market", "sell", 0.01, params={"positionIdx": 2})
    legs = {p["info"]["positionIdx"]: p for p in await ex.fetch_positions([BTC]) if p["contracts"]}
    assert (legs[1]["side"], legs[1]["contracts"], legs[2]["side"], legs[2]["contracts"]) == (
        "long", 0.02, "short", 0.01)
    with pytest.raises(BadRequest):  # Bybit 110024: not with a position open
        await ex.set_position_mode(False, BTC)
    # closing the long leg is a sell on positionIdx 1; the short leg stays
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "61000"})
    await ex.create_order(BTC, "market", "sell", 0.02, params={"positionIdx": 1, "reduceOnly": True})
    legs = {p["info"]["positionIdx"]: p for p in await ex.fetch_positions([BTC]) if p["contracts"]}
    assert list(legs) == [2] and legs[2]["unrealizedPnl"] == -10
    (rec,) = (await ex.private_get_v5_position_closed_pnl({"category": "linear"}))["result"]["list"]
    assert rec["side"] == "Sell" and D(rec["closedSize"]) == D("0.02")
    assert D(rec["closedPnl"]) == D("0.02") * 1000 - D("0.02") * 60000 * TAKER - D("0.02") * 61000 * TAKER


async def test_liquidation_is_a_takeover_with_its_fee_and_the_books_add_up(sim: tuple[SimServer, Any]) -> None:
    """A liquidation as Bybit tells it: BustTrade executions whose execFee carries the liquidation
    fee (the core books that fee as a bill of its own, as OKX does), closed PnL and the transaction
    log adding up to the wallet."""
    srv, ex = sim
    await ex.create_order(BTC, "market", "buy", 1.6)
    # equity 10000 - 48 - 1.6 x 6010 = 336 is below the maintenance margin (1.6 x 53990 x 0.004):
    # liquidated with equity left, so the liquidation fee is taken
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "53990"})
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "53000"})
    assert await ex.fetch_positions([BTC]) == [] or (await ex.fetch_positions([BTC]))[0]["contracts"] in (0, None)
    execs = (await raw(ex, "privateGetV5ExecutionList", {"category": "linear"}))["list"]
    bust = [e for e in execs if e["execType"] == "BustTrade"]
    assert len(bust) == 2 and any(D(e["execFee"]) > 0 for e in bust)  # a partial takeover, then the rest
    penalties = sum((-b.bal_chg for b in srv.account.bills if b.type == "5" and b.sub_type == "109"), D(0))
    assert penalties > 0 and sum((D(e["execFee"]) for e in bust), D(0)) == penalties
    wallet_moved = await wallet(ex) - D(10000)
    closed = (await raw(ex, "privateGetV5PositionClosedPnl", {"category": "linear"}))["list"]
    assert all(c["execType"] == "BustTrade" for c in closed)
    assert sum((D(c["closedPnl"]) for c in closed), D(0)) == wallet_moved
    log = (await raw(ex, "privateGetV5AccountTransactionLog", {"category": "linear"}))["list"]
    for r in log:
        assert D(r["change"]) == D(r["cashFlow"]) + D(r["funding"] or 0) - D(r["fee"]), r
    assert sum((D(r["change"]) for r in log), D(0)) == wallet_moved
    assert len(log) == len(execs)  # one row per execution: the fee bill is folded into its fill's row
