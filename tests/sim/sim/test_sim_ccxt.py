"""The simulator driven by UNMODIFIED ccxt.pro.okx, set up exactly as okx-protocol.md shows.

Prices are frozen (speed=0) and moved through /sim/v1/price; slippage and spread are zero so
every expected number below is computed by hand from the fee rates and contract sizes.
"""
from __future__ import annotations

import asyncio
from decimal import Decimal as D

import ccxt.pro
import pytest
from ccxt.base.errors import (
    AuthenticationError,
    ExchangeError,
    ExchangeNotAvailable,
    InsufficientFunds,
    InvalidNonce,
    InvalidOrder,
    OrderNotFound,
    RateLimitExceeded,
    RequestTimeout,
)

from core.sim.ccxt_client import okx_client
from core.sim.server import SimServer
from tests.helpers.engine_helpers import control, wait_for
from tests.helpers.sim_ccxt import BTC, cash

ETH = "ETH/USDT:USDT"
TAKER = D("0.0005")
MAKER = D("0.0002")


async def test_markets_and_balance(sim):
    srv, ex = sim
    m = ex.market(BTC)
    assert m["id"] == "BTC-USDT-SWAP" and m["contractSize"] == 0.01 and m["linear"] and m["swap"]
    assert m["precision"]["amount"] == 0.01 and m["precision"]["price"] == 0.1
    assert ex.market(ETH)["contractSize"] == 0.1 and ex.market("SOL/USDT:USDT")["precision"]["price"] == 0.001
    bal = await ex.fetch_balance()
    assert bal["USDT"]["total"] == 10000 and bal["USDT"]["free"] == 10000
    t = await ex.fetch_time()
    assert abs(t - ex.milliseconds()) < 5000
    tk = await ex.fetch_ticker(BTC)
    assert tk["last"] == 60000
    fr = await ex.fetch_funding_rate(BTC)
    assert fr["fundingRate"] is not None and fr["fundingTimestamp"] > ex.milliseconds()


async def test_open_partial_close_and_history(sim):
    srv, ex = sim
    start = await cash(ex)
    o = await ex.create_order(BTC, "market", "buy", 3)
    order = await ex.fetch_order(o["id"], BTC)
    assert order["status"] == "closed" and order["filled"] == 3 and order["average"] == 60000
    assert order["info"]["reduceOnly"] == "false"
    await control(srv, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "61000"})
    [pos] = await ex.fetch_positions([BTC])
    assert pos["contracts"] == 3 and pos["side"] == "long" and pos["entryPrice"] == 60000
    coins = D(pos["info"]["pos"]) * D(str(pos["contractSize"]))
    assert coins == D("0.03")
    assert D(pos["info"]["upl"]) == (D(pos["info"]["markPx"]) - D(pos["info"]["avgPx"])) * coins == D("30")

    # partial close: 1 contract at 61000
    await ex.create_order(BTC, "market", "sell", 1, None, {"reduceOnly": True})
    [pos] = await ex.fetch_positions([BTC])
    assert pos["contracts"] == 2
    hist = await ex.fetch_positions_history([BTC])
    assert len(hist) == 1 and hist[0]["info"]["type"] == "1" and hist[0]["info"]["closeTotalPos"] == "1"

    # close the rest at 62000 through close-position
    await control(srv, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "62000"})
    await ex.close_position(BTC)
    assert await ex.fetch_positions([BTC]) == []

    trades = await ex.fetch_my_trades(BTC, ex.milliseconds() - 60000)
    assert len(trades) == 3
    fee_open = D("0.03") * 60000 * TAKER
    fee_p = D("0.01") * 61000 * TAKER
    fee_c = D("0.02") * 62000 * TAKER
    assert sum(D(str(t["fee"]["cost"])) for t in trades) == fee_open + fee_p + fee_c
    assert sorted(D(t["info"]["fillPnl"]) for t in trades) == [D(0), D(10), D(40)]

    [h] = await ex.fetch_positions_history([BTC])
    info = h["info"]
    assert info["type"] == "2" and info["direction"] == "long" and info["posId"] == pos["id"]
    assert info["openAvgPx"] == "60000" and info["openMaxPos"] == "3" and info["closeTotalPos"] == "3"
    assert D(info["closeAvgPx"]) == ((D(61000) + 2 * D(62000)) / 3).quantize(D("1e-12"))
    assert D(info["pnl"]) == 50
    assert D(info["fee"]) == -(fee_open + fee_p + fee_c) == sum(D(t["info"]["fee"]) for t in trades)
    realized = D(info["realizedPnl"])
    assert realized == D(info["pnl"]) + D(info["fee"]) + D(info["fundingFee"]) + D(info["liqPenalty"])
    assert realized == D(50) - D("1.825")
    assert await cash(ex) - start == realized
    # bills tell the same story to the cent
    bills = await ex.private_get_account_bills({"instType": "SWAP"})
    assert sum(D(b["balChg"]) for b in bills["data"]) == realized


async def test_funding_bill_and_history(sim):
    srv, ex = sim
    start = await cash(ex)
    await ex.create_order(BTC, "market", "buy", 2)
    await ex.create_order(ETH, "market", "sell", 5)  # 0.5 ETH short at 3000
    [bill] = await control(srv, "/sim/v1/funding", {"instId": "BTC-USDT-SWAP", "rate": "0.0001"})
    assert D(bill["balChg"]) == -(D("0.02") * 60000 * D("0.0001")) == D("-0.12")
    assert bill["type"] == "8" and bill["subType"] == "173" and bill["sz"] == "2" and bill["px"] == "60000"
    [ebill] = await control(srv, "/sim/v1/funding", {"instId": "ETH-USDT-SWAP", "rate": "0.0002"})
    assert D(ebill["balChg"]) == D("0.5") * 3000 * D("0.0002") == D("0.3") and ebill["subType"] == "174"

    hist = await ex.fetch_funding_history(BTC)
    assert [D(str(x["amount"])) for x in hist] == [D("-0.12")]
    assert hist[0]["info"]["billId"] == bill["billId"]
    [pos] = await ex.fetch_positions([BTC])
    assert pos["info"]["fundingFee"] == "-0.12"

    await ex.close_position(BTC)
    [h] = await ex.fetch_positions_history([BTC])
    assert h["info"]["fundingFee"] == "-0.12"
    fees = -(D("0.02") * 60000 * TAKER * 2)
    assert D(h["info"]["realizedPnl"]) == fees - D("0.12")
    eth_fee = -(D("0.5") * 3000 * TAKER)
    assert await cash(ex) - start == D(h["info"]["realizedPnl"]) + eth_fee + D("0.3")


async def test_take_profit_fires_on_exchange(sim):
    srv, ex = sim
    await ex.create_order(BTC, "market", "buy", 1)
    tp = await ex.create_order(BTC, "market", "sell", 1, None, {"reduceOnly": True, "takeProfitPrice": 62000})
    algo_id = tp["id"]
    pending = await ex.fetch_open_orders(BTC, params={"trigger": True, "ordType": "conditional"})
    assert [p["id"] for p in pending] == [algo_id]
    await control(srv, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "61999.9"})
    assert len(await ex.fetch_positions([BTC])) == 1
    await control(srv, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "62500"})
    assert await ex.fetch_positions([BTC]) == []
    algo = (await ex.private_get_trade_order_algo({"algoId": algo_id}))["data"][0]
    assert algo["state"] == "effective" and algo["actualSide"] == "tp" and algo["ordId"]
    spawned = (await ex.private_get_trade_order({"instId": "BTC-USDT-SWAP", "ordId": algo["ordId"]}))["data"][0]
    assert spawned["algoId"] == algo_id and spawned["reduceOnly"] == "true" and spawned["source"] == "7"
    assert spawned["fillPx"] == "62500" and D(spawned["pnl"]) == D(25)
    [h] = await ex.fetch_positions_history([BTC])
    assert D(h["info"]["pnl"]) == 25 and h["info"]["type"] == "2"


async def test_cancel_algo_through_ccxt(sim):
    srv, ex = sim
    await ex.create_order(BTC, "market", "buy", 1)
    sl = await ex.create_order(BTC, "market", "sell", 1, None, {"reduceOnly": True, "stopLossPrice": 58000})
    await ex.cancel_order(sl["id"], BTC, {"trigger": True})
    algo = (await ex.private_get_trade_order_algo({"algoId": sl["id"]}))["data"][0]
    assert algo["state"] == "canceled" and algo["slTriggerPx"] == "58000"
    assert await ex.fetch_open_orders(BTC, params={"trigger": True, "ordType": "conditional"}) == []
    await control(srv, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "57000"})
    assert len(await ex.fetch_positions([BTC])) == 1  # nothing fired


async def test_attached_tp_sl_stop_loss(sim):
    srv, ex = sim
    await ex.create_order(BTC, "market", "buy", 2, None,
                          {"takeProfit": {"triggerPrice": 63000}, "stopLoss": {"triggerPrice": 58000}})
    [algo] = (await ex.private_get_trade_orders_algo_pending({"ordType": "oco,conditional"}))["data"]
    assert algo["tpTriggerPx"] == "63000" and algo["slTriggerPx"] == "58000" and algo["sz"] == "2"
    await control(srv, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "57900"})
    assert await ex.fetch_positions([BTC]) == []
    done = (await ex.private_get_trade_orders_algo_history({"ordType": "oco", "state": "effective"}))["data"]
    assert done[0]["actualSide"] == "sl" and done[0]["algoId"] == algo["algoId"]
    [h] = await ex.fetch_positions_history([BTC])
    assert D(h["info"]["pnl"]) == (D(57900) - 60000) * D("0.02")


async def test_cross_liquidation(sim):
    srv, ex = sim
    await ex.set_leverage(100, BTC, {"mgnMode": "cross"})
    await ex.create_order(BTC, "market", "buy", 1500)  # 15 BTC, 900k notional, 9000 margin
    [pos] = await ex.fetch_positions([BTC])
    liq = D(pos["info"]["liqPx"])
    assert D(59500) < liq < D(59700)
    await control(srv, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "59700"})
    assert len(await ex.fetch_positions([BTC])) == 1
    # Deep enough that liquidating half would not restore maintenance, so all of it goes: equity
    # 9550 - 7500 = 2050 <= mmr 15 x 59500 x 0.4% = 3570; after half it would be 2050 - 892.5
    # = 1157.5 against 1785 (the partial tier is tested in test_sim_adl.py).
    await control(srv, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "59500"})
    assert await ex.fetch_positions([BTC]) == []
    [h] = await ex.fetch_positions_history([BTC])
    info = h["info"]
    fee = -(D(15) * 60000 * TAKER)
    pnl = (D(59500) - 60000) * 15
    penalty = D(15) * 59500 * D("0.002")
    assert info["type"] == "3" and D(info["pnl"]) == pnl and D(info["fee"]) == fee
    assert D(info["liqPenalty"]) == -penalty and info["triggerPx"] == "59500"
    assert D(info["realizedPnl"]) == pnl + fee - penalty
    assert await cash(ex) == 10000 + pnl + fee - penalty
    hist = (await ex.private_get_trade_orders_history({"instType": "SWAP"}))["data"]
    liq_orders = [o for o in hist if o["category"] == "full_liquidation"]
    assert len(liq_orders) == 1 and liq_orders[0]["accFillSz"] == "1500" and liq_orders[0]["fillPx"] == "59500"


async def test_limit_order_rest_fill_and_cancel(sim):
    srv, ex = sim
    o = await ex.create_order(BTC, "limit", "buy", 1, 59000)
    [open_] = await ex.fetch_open_orders(BTC)
    assert open_["id"] == o["id"] and open_["price"] == 59000 and open_["status"] == "open"
    bal = await ex.fetch_balance()
    assert D(bal["info"]["data"][0]["details"][0]["ordFrozen"]) == D("0.01") * 59000 / 10
    canceled = await ex.cancel_order(o["id"], BTC)
    assert canceled["id"] == o["id"]
    assert (await ex.fetch_order(o["id"], BTC))["status"] == "canceled"
    with pytest.raises(OrderNotFound):
        await ex.cancel_order(o["id"], BTC)
    with pytest.raises(OrderNotFound):
        await ex.cancel_order("123456", BTC)
    with pytest.raises(OrderNotFound):
        await ex.fetch_order("123456", BTC)
    o2 = await ex.create_order(BTC, "limit", "sell", 1, 60500)
    await control(srv, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "60600"})
    got = await ex.fetch_order(o2["id"], BTC)
    assert got["status"] == "closed" and got["average"] == 60500
    [t] = await ex.fetch_my_trades(BTC, ex.milliseconds() - 60000)
    assert t["takerOrMaker"] == "maker" and D(str(t["fee"]["cost"])) == D("0.01") * 60500 * MAKER
    [pos] = await ex.fetch_positions([BTC])
    assert pos["side"] == "short" and pos["info"]["pos"] == "-1"


async def test_errors(sim):
    srv, ex = sim
    with pytest.raises(InsufficientFunds):
        await ex.create_order(BTC, "market", "buy", 2000)  # 20 BTC x 60000 / 10x = 120k margin
    with pytest.raises(ExchangeError, match="51169"):
        await ex.create_order(BTC, "market", "sell", 1, None, {"reduceOnly": True})
    with pytest.raises(InvalidOrder, match="51020"):
        await ex.private_post_trade_order({"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy",
                                           "ordType": "market", "sz": "0.001"})
    with pytest.raises(InvalidOrder, match="51121"):
        await ex.private_post_trade_order({"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy",
                                           "ordType": "market", "sz": "0.015"})
    bad = okx_client(ccxt.pro.okx, srv.url, srv.ws_url, secret="wrong-secret")
    try:
        with pytest.raises(AuthenticationError):
            await bad.fetch_balance()
    finally:
        await bad.close()
    ex.nonce = lambda: ex.milliseconds() - 60_000
    with pytest.raises(InvalidNonce):
        await ex.fetch_balance()
    del ex.nonce
    await control(srv, "/sim/v1/fault", {"kind": "rate_limit", "count": 1})
    with pytest.raises(RateLimitExceeded):
        await ex.fetch_balance()
    await control(srv, "/sim/v1/fault", {"kind": "5xx", "count": 1})
    with pytest.raises(ExchangeNotAvailable):
        await ex.fetch_balance()
    assert (await ex.fetch_balance())["USDT"]["total"] == 10000
    await control(srv, "/sim/v1/fault", {"kind": "timeout", "count": 1, "delay": 5})
    ex.timeout = 300
    with pytest.raises(RequestTimeout):
        await ex.fetch_balance()


async def test_hedge_mode(sim):
    srv, ex = sim
    await ex.set_position_mode(True)
    assert (await ex.fetch_position_mode(BTC))["hedged"] is True
    await ex.create_order(BTC, "market", "buy", 2, None, {"hedged": True})
    await ex.create_order(BTC, "market", "sell", 1, None, {"hedged": True})
    ps = {p["side"]: p for p in await ex.fetch_positions([BTC])}
    assert ps["long"]["contracts"] == 2 and ps["short"]["contracts"] == 1
    assert ps["long"]["id"] != ps["short"]["id"]
    await ex.create_order(BTC, "market", "sell", 2, None, {"hedged": True, "reduceOnly": True})
    ps = await ex.fetch_positions([BTC])
    assert [p["side"] for p in ps] == ["short"]
    [h] = await ex.fetch_positions_history([BTC])
    assert h["info"]["posSide"] == "long" and h["info"]["direction"] == "long"


async def test_watch_orders_positions_trades(sim):
    srv, ex = sim
    snapshot = await asyncio.wait_for(ex.watch_positions([BTC]), 5)  # subscribe; OKX sends a snapshot first
    assert snapshot == []
    orders_task = asyncio.create_task(ex.watch_orders(BTC))
    pos_task = asyncio.create_task(ex.watch_positions([BTC]))
    trades_task = asyncio.create_task(ex.watch_my_trades(BTC))
    await wait_for(lambda: srv.hub.listening("orders"), what="the orders subscription")  # before the fill
    await ex.create_order(BTC, "market", "buy", 2)
    orders = await asyncio.wait_for(orders_task, 5)
    assert orders[-1]["status"] == "closed" and orders[-1]["filled"] == 2
    info = orders[-1]["info"]
    assert info["tradeId"] and info["execType"] == "T" and info["category"] == "normal"
    assert D(info["fillFee"]) == -(D("0.02") * 60000 * TAKER) and info["fillFeeCcy"] == "USDT"
    trades = await asyncio.wait_for(trades_task, 5)
    assert trades[-1]["amount"] == 2 and trades[-1]["price"] == 60000
    positions = await asyncio.wait_for(pos_task, 5)
    assert positions[-1]["contracts"] == 2 and positions[-1]["side"] == "long"
    assert positions[-1]["info"]["avgPx"] == "60000"
    nxt = asyncio.create_task(ex.watch_positions([BTC]))
    await asyncio.sleep(0.05)
    await ex.close_position(BTC)
    flat = await asyncio.wait_for(nxt, 5)
    assert all(p["contracts"] == 0 for p in flat) and {p["side"] for p in flat} == {"long", "short"}


async def test_speed_moves_prices():
    srv = SimServer(speed=5000, tick_s=0.02, seed=7)
    await srv.start()
    ex = okx_client(ccxt.pro.okx, srv.url, srv.ws_url)
    try:
        await ex.load_markets()
        first = (await ex.fetch_ticker(BTC))["last"]

        async def price_moved() -> bool:
            return bool((await ex.fetch_ticker(BTC))["last"] != first)

        await wait_for(price_moved, what="the random walk to move BTC")  # ticks every 0.02 s at 5000x
        mp = await asyncio.wait_for(ex.watch_mark_price(ETH), 5)
        assert mp["symbol"] == ETH and mp["markPrice"] > 0
    finally:
        await ex.close()
        await srv.stop()


async def test_watch_balance(sim):
    srv, ex = sim
    first = await asyncio.wait_for(ex.watch_balance(), 5)  # the account snapshot
    assert first["USDT"]["total"] == 10000
    nxt = asyncio.create_task(ex.watch_balance())
    await asyncio.sleep(0.1)
    await ex.create_order(BTC, "market", "buy", 1)
    bal = await asyncio.wait_for(nxt, 5)
    assert D(str(bal["USDT"]["total"])) == 10000 - D("0.01") * 60000 * TAKER


async def test_scheduled_funding_follows_speed():
    # 8 h of funding interval at speed 86400 is one settlement every ~0.33 s of real time
    srv = SimServer(speed=86400, tick_s=10.0, slippage=D(0), spread_ticks=0)
    await srv.start()
    # The first settlement is due one interval (~0.33 s) after the server was built; on a loaded
    # machine load_markets alone can take longer, and a settlement before the position exists has
    # no bill to pair with. So hold the schedule (nothing has awaited since start(), so the funding
    # loop has not run yet) and restart it from the moment the position is open.
    schedule = srv.exchange.next_funding
    schedule.update(dict.fromkeys(schedule, 2**62))
    interval_ms = srv.exchange.funding_interval_ms
    assert interval_ms == 8 * 3600 * 1000 // 86400
    ex = okx_client(ccxt.pro.okx, srv.url, srv.ws_url)

    def eth_settlements() -> list[dict[str, str]]:
        return [f for f in srv.funding_history if f["instId"] == "ETH-USDT-SWAP"]

    try:
        await ex.load_markets()
        await ex.create_order(ETH, "market", "buy", 10)
        assert eth_settlements() == []
        opened = srv.exchange.clock()
        schedule.update(dict.fromkeys(schedule, opened + interval_ms))
        await wait_for(lambda: len(eth_settlements()) >= 2, 15, "two scheduled ETH settlements")
        await srv.pause()  # no settlement may slip in between the reads below
        times = [opened] + [int(f["fundingTime"]) for f in eth_settlements()]
        # the speed sets the pace (less a millisecond: the next due time is read just before fundingTime)
        assert all(b - a >= interval_ms - 1 for a, b in zip(times, times[1:], strict=False))
        hist = await ex.fetch_funding_history(ETH)
        assert len(hist) >= 2
        eth_rates = [D(f["fundingRate"]) for f in eth_settlements()]
        assert len(eth_rates) == len(hist)
        # 1 ETH long at a frozen 3000 (the market loop does not tick within the test): longs pay rate > 0
        assert sum(D(h["info"]["balChg"]) for h in hist) == -sum(D(3000) * r for r in eth_rates)
        assert all(h["info"]["px"] == "3000" and h["info"]["sz"] == "10" for h in hist)
        [pos] = await ex.fetch_positions([ETH])
        assert D(pos["info"]["fundingFee"]) == sum(D(h["info"]["balChg"]) for h in hist)
    finally:
        await ex.close()
        await srv.stop()
