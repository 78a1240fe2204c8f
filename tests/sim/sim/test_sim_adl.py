"""ADL and partial liquidation in the simulator, seen through UNMODIFIED ccxt and a raw WS client.

Prices are frozen (speed 0) and moved through /sim/v1/price; slippage and spread are zero. BTC:
ctVal 0.01, taker fee 0.05 %, maintenance rate 0.4 %, liquidation penalty half of that (0.2 %).
ADL pays no fee (as on OKX). Every expected number is worked out by hand in the comments, and the
same identity is checked everywhere: the cash moves by exactly positions-history realizedPnl
(= pnl + fee + fundingFee + liqPenalty).
"""
from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import aiohttp
import ccxt.pro
import pytest
import websockets

from core.sim.exchange import bill_kind
from core.sim.server import SimServer
from tests.helpers.okx_ws import login_msg, push_of, recv
from tests.helpers.sim_ccxt import BTC, cash

BTC_ID = "BTC-USDT-SWAP"

pytestmark = pytest.mark.timeout(60)


async def post(srv: SimServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s:
        async with s.post(srv.url + path, json=body) as r:
            return r.status, await r.json()


async def adl(srv: SimServer, **body: str) -> dict[str, str]:
    status, payload = await post(srv, "/sim/v1/adl", {"instId": BTC_ID, **body})
    assert status == 200 and payload["code"] == "0", payload
    return payload["data"][0]


async def history(ex: ccxt.pro.okx) -> dict[str, str]:
    [h] = (await ex.private_get_account_positions_history({"instType": "SWAP", "instId": BTC_ID}))["data"]
    assert D(h["realizedPnl"]) == D(h["pnl"]) + D(h["fee"]) + D(h["fundingFee"]) + D(h["liqPenalty"])
    return h


async def fills(ex: ccxt.pro.okx) -> list[dict[str, str]]:
    """fills-history, oldest first (OKX pages newest first)."""
    return list(reversed((await ex.private_get_trade_fills_history({"instType": "SWAP"}))["data"]))


async def orders_history(ex: ccxt.pro.okx) -> list[dict[str, str]]:
    return (await ex.private_get_trade_orders_history({"instType": "SWAP"}))["data"]


def test_bill_kinds_follow_okx_numbering() -> None:
    """Net mode names the side, hedge mode the leg closed (OKX bill/fill subType table)."""
    assert bill_kind("normal", "buy", "net") == ("2", "1")
    assert bill_kind("adl", "sell", "net") == ("9", "128")
    assert bill_kind("adl", "buy", "net") == ("9", "127")
    assert bill_kind("adl", "sell", "long") == ("9", "125")
    assert bill_kind("adl", "buy", "short") == ("9", "126")
    assert bill_kind("partial_liquidation", "sell", "net") == ("5", "103")
    assert bill_kind("partial_liquidation", "buy", "short") == ("5", "101")
    assert bill_kind("full_liquidation", "buy", "net") == ("5", "106")
    assert bill_kind("full_liquidation", "sell", "long") == ("5", "104")


async def test_adl_partial_then_full(sim) -> None:
    srv, ex = sim
    await ex.create_order(BTC, "market", "buy", 100)  # 1 BTC at 60000, fee 30
    assert await cash(ex) == D("9970")
    await post(srv, "/sim/v1/price", {"instId": BTC_ID, "px": "62000"})

    # 40 contracts (0.4 BTC) deleveraged at 62500: pnl 0.4 x 2500 = 1000, no fee
    got = await adl(srv, sz="40", px="62500")
    assert (got["side"], got["sz"], got["px"], got["pnl"], got["pos"]) == ("sell", "40", "62500", "1000", "60")
    [pos] = await ex.fetch_positions([BTC])
    assert pos["contracts"] == 60 and pos["info"]["avgPx"] == "60000"
    h = await history(ex)
    assert (h["type"], h["closeTotalPos"], h["openMaxPos"], h["closeAvgPx"], h["triggerPx"]) == (
        "5", "40", "100", "62500", "62500")
    assert (D(h["pnl"]), D(h["fee"]), D(h["liqPenalty"]), D(h["realizedPnl"])) == (D(1000), D(-30), 0, D(970))
    assert await cash(ex) - 10000 == D(h["realizedPnl"]) == D(970)

    [o] = [o for o in await orders_history(ex) if o["category"] == "adl"]
    assert (o["ordId"], o["accFillSz"], o["fee"], o["reduceOnly"], o["clOrdId"]) == (got["ordId"], "40", "0", "true", "")
    adl_fill = (await fills(ex))[-1]
    assert (adl_fill["tradeId"], adl_fill["subType"], adl_fill["fee"], adl_fill["fillPnl"], adl_fill["fillPx"]) == (
        got["tradeId"], "128", "0", "1000", "62500")
    # ccxt's own parse of the same fill: a sell of 40 at 62500 with zero fee
    [t] = [t for t in await ex.fetch_my_trades(BTC, ex.milliseconds() - 60000) if t["id"] == got["tradeId"]]
    assert t["side"] == "sell" and t["amount"] == 40 and t["price"] == 62500 and t["fee"]["cost"] == 0
    bills = (await ex.private_get_account_bills({"instType": "SWAP"}))["data"]
    [bill] = [b for b in bills if b["type"] == "9"]
    assert (bill["subType"], bill["balChg"], bill["tradeId"]) == ("128", "1000", got["tradeId"])

    # the rest at the mark (62000): pnl 0.6 x 2000 = 1200; the life realized 2200 - 30
    got = await adl(srv)
    assert (got["sz"], got["px"], got["pnl"], got["pos"]) == ("60", "62000", "1200", "0")
    assert await ex.fetch_positions([BTC]) == []
    h = await history(ex)
    assert (h["type"], h["closeTotalPos"], h["closeAvgPx"]) == ("6", "100", "62200")  # (40x62500+60x62000)/100
    assert (D(h["pnl"]), D(h["fee"]), D(h["realizedPnl"])) == (D(2200), D(-30), D(2170))
    assert await cash(ex) - 10000 == D(h["realizedPnl"])
    assert [f["subType"] for f in await fills(ex)] == ["1", "128", "128"]


async def test_adl_short_in_hedge_mode_with_funding(sim) -> None:
    """A short leg deleveraged at the mark: pnl sign, subType 126 (close short), funding kept."""
    srv, ex = sim
    await ex.set_position_mode(True)
    await ex.create_order(BTC, "market", "sell", 50, None, {"hedged": True})  # 0.5 BTC short, fee 15
    await ex.create_order(BTC, "market", "buy", 10, None, {"hedged": True})   # a long leg, fee 3
    status, payload = await post(srv, "/sim/v1/adl", {"instId": BTC_ID})
    assert status == 400 and payload["code"] == "51000"  # two legs: which one must be said
    # funding +0.1 % at 60000: the short receives 0.5 x 60000 x 0.001 = 30, the long pays 6
    await post(srv, "/sim/v1/funding", {"instId": BTC_ID, "rate": "0.001"})
    await post(srv, "/sim/v1/price", {"instId": BTC_ID, "px": "58000"})
    got = await adl(srv, posSide="short", sz="all")
    assert (got["side"], got["sz"], got["px"], got["pnl"], got["posSide"]) == ("buy", "50", "58000", "1000", "short")
    short = [h for h in (await ex.private_get_account_positions_history({"instId": BTC_ID}))["data"]
             if h["posSide"] == "short"]
    [h] = short
    assert (h["type"], D(h["pnl"]), D(h["fee"]), D(h["fundingFee"])) == ("6", D(1000), D(-15), D(30))
    assert D(h["realizedPnl"]) == D(1015)
    assert (await fills(ex))[-1]["subType"] == "126"
    [pos] = await ex.fetch_positions([BTC])
    assert pos["side"] == "long" and pos["contracts"] == 10
    # cash: 10000 + the short's realized 1015 + the long's fee -3 and funding -6
    assert await cash(ex) == D(10000) + 1015 - 3 - 6


async def test_adl_rejections(sim) -> None:
    srv, ex = sim
    status, payload = await post(srv, "/sim/v1/adl", {"instId": BTC_ID})
    assert status == 400 and payload["code"] == "51023"
    status, payload = await post(srv, "/sim/v1/adl", {"instId": "DOGE-USDT-SWAP"})
    assert status == 400 and payload["code"] == "51001"
    await ex.create_order(BTC, "market", "buy", 10)
    for bad in ({"sz": "11"}, {"sz": "0"}, {"sz": "1.005"}, {"sz": "x"}, {"px": "-1"}, {"px": "60000.05"}):
        status, payload = await post(srv, "/sim/v1/adl", {"instId": BTC_ID, **bad})
        assert status == 400 and payload["code"] == "51000", (bad, payload)
    [pos] = await ex.fetch_positions([BTC])
    assert pos["contracts"] == 10  # nothing happened


async def test_adl_pushes(sim) -> None:
    """orders push with category adl and zero fee; balance_and_position eventType adl."""
    srv, ex = sim
    await ex.create_order(BTC, "market", "sell", 20)  # 0.2 BTC short at 60000, fee 6
    async with websockets.connect(srv.ws_url + "/private") as ws:
        await ws.send(login_msg())
        await recv(ws, lambda m: m.get("event") == "login")
        await ws.send(json.dumps({"op": "subscribe", "args": [
            {"channel": "orders", "instType": "SWAP"}, {"channel": "balance_and_position"},
            {"channel": "positions", "instType": "ANY"}]}))
        for _ in range(3):
            await recv(ws, lambda m: m.get("event") == "subscribe")
        got = await adl(srv, sz="5", px="59000")  # 0.05 BTC bought back: pnl 0.05 x 1000 = 50
        o = (await recv(ws, push_of("orders", category="adl")))["data"][0]
        assert (o["tradeId"], o["fillSz"], o["fillPx"], o["fillFee"], o["fillPnl"], o["side"]) == (
            got["tradeId"], "5", "59000", "0", "50", "buy")
        assert o["state"] == "filled" and o["reduceOnly"] == "true" and o["algoId"] == "" and "liqPenalty" not in o
        bp = (await recv(ws, push_of("balance_and_position", eventType="adl")))["data"][0]
        assert bp["balData"][0]["cashBal"] == "10044"  # 10000 - 6 + 50
        assert bp["posData"][0]["pos"] == "-15" and bp["trades"] == [{"instId": BTC_ID, "tradeId": got["tradeId"]}]
        p = (await recv(ws, lambda m: push_of("positions")(m) and m["data"][0]["pos"] == "-15"))["data"][0]
        assert D(p["realizedPnl"]) == D(44)


async def test_partial_liquidation_then_user_close(sim) -> None:
    srv, ex = sim
    await ex.set_leverage(100, BTC, {"mgnMode": "cross"})
    await ex.create_order(BTC, "market", "buy", 1500)  # 15 BTC at 60000, fee 450, cash 9550
    # At 59550: equity 9550 - 15 x 450 = 2800 <= mmr 15 x 59550 x 0.4 % = 3573. Liquidating half
    # (7.5 BTC) costs a penalty of 7.5 x 59550 x 0.2 % = 893.25 and leaves equity 1906.75 against
    # mmr 1786.5: enough, so only half goes.
    await post(srv, "/sim/v1/price", {"instId": BTC_ID, "px": "59550"})
    [pos] = await ex.fetch_positions([BTC])
    assert pos["contracts"] == 750
    h = await history(ex)
    assert (h["type"], h["closeTotalPos"], h["closeAvgPx"], h["triggerPx"]) == ("4", "750", "59550", "59550")
    assert (D(h["pnl"]), D(h["fee"]), D(h["liqPenalty"])) == (D(-3375), D(-450), D("-893.25"))
    assert D(h["realizedPnl"]) == D("-4718.25") == await cash(ex) - 10000
    assert D(pos["info"]["mgnRatio"]) == (D("1906.75") / D("1786.5")).quantize(D("1e-8"))
    [o] = [o for o in await orders_history(ex) if o["category"] == "partial_liquidation"]
    assert (o["accFillSz"], o["fillPx"], o["fee"]) == ("750", "59550", "0")
    liq_fill = (await fills(ex))[-1]
    assert (liq_fill["subType"], liq_fill["fee"], liq_fill["fillPnl"], liq_fill["fillSz"]) == ("103", "0", "-3375", "750")
    bills = (await ex.private_get_account_bills({"instType": "SWAP", "type": "5"}))["data"]
    assert sorted((b["subType"], b["balChg"]) for b in bills) == [("103", "-3375"), ("109", "-893.25")]

    # the owner closes the rest at 59600: pnl 7.5 x -400 = -3000, fee 7.5 x 59600 x 0.05 % = 223.5
    await post(srv, "/sim/v1/price", {"instId": BTC_ID, "px": "59600"})
    await ex.create_order(BTC, "market", "sell", 750, None, {"reduceOnly": True})
    h = await history(ex)
    assert (h["type"], h["closeTotalPos"]) == ("2", "1500")
    assert (D(h["pnl"]), D(h["fee"]), D(h["liqPenalty"])) == (D(-6375), D("-673.5"), D("-893.25"))
    assert D(h["realizedPnl"]) == D("-7941.75") == await cash(ex) - 10000


async def test_partial_liquidation_then_full(sim) -> None:
    """A second drop the half-tier cannot fix liquidates the rest in full (type 3)."""
    srv, ex = sim
    await ex.set_leverage(100, BTC, {"mgnMode": "cross"})
    await ex.create_order(BTC, "market", "buy", 1500)
    await post(srv, "/sim/v1/price", {"instId": BTC_ID, "px": "59550"})  # half goes, as above
    # At 59450: equity 5281.75 - 7.5 x 550 = 1156.75 <= mmr 7.5 x 59450 x 0.4 % = 1783.5; half of
    # the rest would leave 1156.75 - 445.875 = 710.875 against 891.75: not enough, all of it goes
    # with a penalty of 7.5 x 59450 x 0.2 % = 891.75 (less than the equity left, so not capped).
    await post(srv, "/sim/v1/price", {"instId": BTC_ID, "px": "59450"})
    assert await ex.fetch_positions([BTC]) == []
    h = await history(ex)
    assert (h["type"], h["closeTotalPos"], h["triggerPx"]) == ("3", "1500", "59450")
    assert (D(h["pnl"]), D(h["fee"]), D(h["liqPenalty"])) == (D(-7500), D(-450), D("-1785"))
    assert D(h["realizedPnl"]) == D(-9735) == await cash(ex) - 10000
    cats = [o["category"] for o in reversed(await orders_history(ex))]
    assert cats == ["normal", "partial_liquidation", "full_liquidation"]
    assert [f["subType"] for f in await fills(ex)] == ["1", "103", "107"]


async def test_partial_liquidation_push(sim) -> None:
    """The partial liquidation's order push carries category and penalty; b&p says liquidation."""
    srv, ex = sim
    await ex.set_leverage(100, BTC, {"mgnMode": "cross"})
    await ex.create_order(BTC, "market", "buy", 1500)
    async with websockets.connect(srv.ws_url + "/private") as ws:
        await ws.send(login_msg())
        await recv(ws, lambda m: m.get("event") == "login")
        await ws.send(json.dumps({"op": "subscribe", "args": [
            {"channel": "orders", "instType": "SWAP"}, {"channel": "balance_and_position"}]}))
        for _ in range(2):
            await recv(ws, lambda m: m.get("event") == "subscribe")
        await post(srv, "/sim/v1/price", {"instId": BTC_ID, "px": "59550"})
        o = (await recv(ws, push_of("orders", category="partial_liquidation")))["data"][0]
        assert (o["fillSz"], o["fillFee"], o["fillPnl"], o["liqPenalty"]) == ("750", "0", "-3375", "-893.25")
        bp = (await recv(ws, push_of("balance_and_position", eventType="liquidation")))["data"][0]
        assert bp["balData"][0]["cashBal"] == "5281.75" and bp["posData"][0]["pos"] == "750"
