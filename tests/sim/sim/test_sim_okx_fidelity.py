"""The simulator against what OKX documents (issue "Real OKX"): funding and trade bills, the
demo-trading header, GET order's attached algos, amends, size limits and candles.

Raw REST/WS (tests/helpers/okx_raw.py), so what is checked is the wire format a client sees.
"""
from __future__ import annotations

from decimal import Decimal as D

from core.sim.server import SimServer
from tests.helpers.okx_raw import Ws, control, data, rest

BTC, ETH = "BTC-USDT-SWAP", "ETH-USDT-SWAP"




def order(inst: str, side: str, sz: str, **kw: object) -> dict[str, object]:
    return {"instId": inst, "side": side, "ordType": "market", "tdMode": "cross", "sz": sz, **kw}


async def place(srv: SimServer, body: dict[str, object]) -> dict[str, str]:
    (item,) = await data(srv, "POST", "trade/order", body=body)
    return item


# ------------------------------------------------------------------ demo header (item 11)

async def test_demo_key_needs_the_simulated_trading_header(srv: SimServer) -> None:
    status, payload = await rest(srv, "GET", "account/balance", demo_header=False)
    assert (status, payload["code"]) == (401, "50101")
    assert "does not match current environment" in payload["msg"]
    status, payload = await rest(srv, "GET", "account/balance")
    assert (status, payload["code"]) == (200, "0")


# ------------------------------------------------------------------ bills (items 8, 9)

async def test_funding_bills_pnl_cross_and_isolated(srv: SimServer) -> None:
    await place(srv, order(BTC, "buy", "5"))
    await data(srv, "POST", "account/set-leverage", body={"instId": ETH, "mgnMode": "isolated", "lever": "5"})
    await place(srv, order(ETH, "sell", "10", tdMode="isolated"))
    status, _ = await control(srv, "/sim/v1/funding", {"instId": BTC, "rate": "0.0001"})
    assert status == 200
    status, _ = await control(srv, "/sim/v1/funding", {"instId": ETH, "rate": "0.0001"})
    assert status == 200
    bills = {b["mgnMode"]: b for b in await data(srv, "GET", "account/bills", {"type": "8"})}
    cross, iso = bills["cross"], bills["isolated"]
    assert D(cross["balChg"]) == D("-0.3") and cross["pnl"] == cross["balChg"] and D(cross["posBalChg"]) == 0
    assert D(iso["balChg"]) == 0 and D(iso["posBalChg"]) == D("0.3") and D(iso["pnl"]) == D("0.3")
    (pos,) = [p for p in await data(srv, "GET", "account/positions") if p["mgnMode"] == "isolated"]
    assert D(iso["posBal"]) == D(pos["margin"])


async def test_trade_bills_and_order_pushes_carry_clordid_and_fill_mark_px(srv: SimServer) -> None:
    ws = await Ws.open(srv, "private", login=True, subs=[{"channel": "orders", "instType": "SWAP"}])
    try:
        await place(srv, order(BTC, "buy", "2", clOrdId="mine1"))
        push = await ws.next_push("orders", lambda o: o["state"] == "filled")
    finally:
        await ws.close()
    assert push["data"][0]["fillMarkPx"] == "60000"
    (bill,) = await data(srv, "GET", "account/bills", {"type": "2"})
    assert bill["clOrdId"] == "mine1" and bill["fillMarkPx"] == "60000"


# ------------------------------------------------------------------ GET order (item 10)

async def test_get_order_echoes_attached_algos(srv: SimServer) -> None:
    attach = [{"attachAlgoClOrdId": "tpsl1", "tpTriggerPx": "62000", "tpOrdPx": "-1", "slTriggerPx": "58000",
               "slOrdPx": "-1"}]
    placed = await place(srv, {"instId": BTC, "side": "buy", "ordType": "limit", "px": "59000", "tdMode": "cross",
                               "sz": "1", "attachAlgoOrds": attach})
    (o,) = await data(srv, "GET", "trade/order", {"instId": BTC, "ordId": placed["ordId"]})
    assert o["attachAlgoClOrdId"] == "tpsl1"
    (a,) = o["attachAlgoOrds"]
    assert a["attachAlgoId"] and a["attachAlgoClOrdId"] == "tpsl1"
    assert (a["tpTriggerPx"], a["slTriggerPx"], a["tpTriggerPxType"], a["slOrdPx"]) == ("62000", "58000", "last", "-1")
    status, _ = await control(srv, "/sim/v1/price", {"instId": BTC, "px": "59000"})
    assert status == 200
    (algo,) = await data(srv, "GET", "trade/orders-algo-pending", {"ordType": "oco"})
    assert algo["algoId"] == a["attachAlgoId"] and algo["algoClOrdId"] == "tpsl1"


# ------------------------------------------------------------------ amends (item 12)

async def test_amend_order_size_price_and_attached_tp(srv: SimServer) -> None:
    placed = await place(srv, {"instId": BTC, "side": "buy", "ordType": "limit", "px": "59000", "tdMode": "cross",
                               "sz": "1", "attachAlgoOrds": [{"attachAlgoClOrdId": "a1", "slTriggerPx": "57000"}]})
    (res,) = await data(srv, "POST", "trade/amend-order",
                        body={"instId": BTC, "ordId": placed["ordId"], "newSz": "2", "newPx": "59500", "reqId": "r1",
                              "attachAlgoOrds": [{"attachAlgoClOrdId": "a1", "newSlTriggerPx": "57500"}]})
    assert (res["ordId"], res["reqId"], res["sCode"]) == (placed["ordId"], "r1", "0")
    (o,) = await data(srv, "GET", "trade/order", {"instId": BTC, "ordId": placed["ordId"]})
    assert (o["sz"], o["px"], o["state"], o["attachAlgoOrds"][0]["slTriggerPx"]) == ("2", "59500", "live", "57500")
    # a price through the book fills the rest as a taker
    await data(srv, "POST", "trade/amend-order", body={"instId": BTC, "ordId": placed["ordId"], "newPx": "60500"})
    (o,) = await data(srv, "GET", "trade/order", {"instId": BTC, "ordId": placed["ordId"]})
    assert (o["state"], o["accFillSz"], o["avgPx"]) == ("filled", "2", "60000")
    status, payload = await rest(srv, "POST", "trade/amend-order",
                                 body={"instId": BTC, "ordId": placed["ordId"], "newSz": "3"})
    assert payload["code"] == "1" and payload["data"][0]["sCode"] == "51510"


async def test_amend_algos_moves_the_stop_and_it_fires_there(srv: SimServer) -> None:
    await place(srv, order(BTC, "buy", "1"))
    (a,) = await data(srv, "POST", "trade/order-algo",
                      body={"instId": BTC, "side": "sell", "ordType": "conditional", "tdMode": "cross", "sz": "1",
                            "reduceOnly": True, "slTriggerPx": "58000", "slOrdPx": "-1", "algoClOrdId": "sl1"})
    (res,) = await data(srv, "POST", "trade/amend-algos",
                        body={"instId": BTC, "algoId": a["algoId"], "newSlTriggerPx": "59500", "reqId": "x"})
    assert (res["algoId"], res["algoClOrdId"], res["reqId"], res["sCode"]) == (a["algoId"], "sl1", "x", "0")
    (live,) = await data(srv, "GET", "trade/orders-algo-pending", {"ordType": "conditional"})
    assert live["slTriggerPx"] == "59500"
    status, payload = await rest(srv, "POST", "trade/amend-algos",
                                 body={"instId": BTC, "algoId": a["algoId"], "newSlTriggerPx": "60500"})
    assert payload["data"][0]["sCode"] == "51280"  # a stop above the last price would fire at once
    await control(srv, "/sim/v1/price", {"instId": BTC, "px": "59500"})
    (done,) = await data(srv, "GET", "trade/order-algo", {"algoId": a["algoId"]})
    assert (done["state"], done["actualSide"]) == ("effective", "sl")


# ------------------------------------------------------------------ size limits (item 12)

async def test_max_size_and_max_avail_size(srv: SimServer) -> None:
    (m,) = await data(srv, "GET", "account/max-size", {"instId": BTC, "tdMode": "cross"})
    per_contract = D("0.01") * 60000 * (D("0.1") + D("0.0005"))  # lever 10, taker fee reserved
    opens = (D(10000) / per_contract).quantize(D("0.01"), "ROUND_FLOOR")
    assert (m["instId"], m["ccy"], D(m["maxBuy"]), D(m["maxSell"])) == (BTC, "USDT", opens, opens)
    await place(srv, order(BTC, "buy", "5"))
    (m,) = await data(srv, "GET", "account/max-size", {"instId": BTC, "tdMode": "cross"})
    assert D(m["maxSell"]) - D(m["maxBuy"]) == 5  # the long closes on the sell side too
    (a,) = await data(srv, "GET", "account/max-avail-size", {"instId": BTC, "tdMode": "cross"})
    (bal,) = await data(srv, "GET", "account/balance")
    assert a["availBuy"] == a["availSell"] == bal["details"][0]["availBal"]


# ------------------------------------------------------------------ candles (item 12)

async def test_candles_history_newest_first_with_paging(srv: SimServer) -> None:
    rows = await data(srv, "GET", "market/candles", {"instId": BTC, "bar": "1m", "limit": "300"})
    assert len(rows) == 300 and all(len(r) == 9 for r in rows)
    ts = [int(r[0]) for r in rows]
    assert ts == sorted(ts, reverse=True) and {a - b for a, b in zip(ts, ts[1:], strict=False)} == {60_000}
    assert rows[0][8] == "0" and {r[8] for r in rows[1:]} == {"1"} and rows[0][4] == "60000"
    assert all(D(r[2]) >= max(D(r[1]), D(r[4])) and D(r[3]) <= min(D(r[1]), D(r[4])) for r in rows)
    assert all(rows[i][1] == rows[i + 1][4] for i in range(len(rows) - 1))  # open = previous close
    older = await data(srv, "GET", "market/history-candles", {"instId": BTC, "after": rows[-1][0], "limit": "500"})
    assert len(older) == 100 and int(older[0][0]) == ts[-1] - 60_000
    five = await data(srv, "GET", "market/candles", {"instId": BTC, "bar": "5m", "limit": "20"})
    assert all(int(r[0]) % 300_000 == 0 for r in five) and five[0][4] == "60000"
    status, payload = await rest(srv, "GET", "market/candles", {"instId": BTC, "bar": "7m"})
    assert payload["code"] == "51000"


async def test_candle_channel_on_business_follows_the_price(srv: SimServer) -> None:
    ws = await Ws.open(srv, "business", login=False, subs=[{"channel": "candle1m", "instId": BTC},
                                                          {"channel": "candle5m", "instId": BTC}])
    try:
        first = await ws.next_push("candle1m")
        assert len(first["data"][0]) == 9 and first["data"][0][4] == "60000"
        await control(srv, "/sim/v1/price", {"instId": BTC, "px": "61000"})
        push = await ws.next_push("candle1m", lambda row: row[4] == "61000")
        assert D(push["data"][0][2]) >= D("61000") and push["arg"] == {"channel": "candle1m", "instId": BTC}
        five = await ws.next_push("candle5m", lambda row: row[4] == "61000")
        assert int(five["data"][0][0]) % 300_000 == 0
    finally:
        await ws.close()
