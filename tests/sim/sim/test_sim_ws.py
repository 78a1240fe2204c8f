"""The simulator's WebSocket side with a raw client (websockets), plus the standalone entry.

Checks what ccxt.pro does not show: login errors, 60011, ping/pong, the echoed arg + uid,
eventType of positions/account/balance_and_position, orders-algo on /business, /sim/v1/drop.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import aiohttp
import pytest
import websockets

from core.sim.server import SimServer
from tests.helpers.okx_ws import login_msg, push_of, recv
from tests.helpers.paths import REPO

ROOT = REPO


async def post(srv: SimServer, path: str, body: dict) -> dict:
    async with aiohttp.ClientSession() as s, s.post(srv.url + path, json=body) as r:
        return await r.json()


async def test_ping_login_errors_and_public(sim):
    srv, _ = sim
    async with websockets.connect(srv.ws_url + "/private") as ws:
        await ws.send("ping")
        assert await recv(ws) == "pong"
        await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"}]}))
        m = await recv(ws)
        assert m["event"] == "error" and m["code"] == "60011"
        await ws.send(login_msg(secret="nope"))
        m = await recv(ws)
        assert m["event"] == "error" and m["code"] == "60009"
        await ws.send(login_msg(ts=str(int(time.time()) - 120)))
        assert (await recv(ws))["code"] == "60006"
        await ws.send(login_msg())
        m = await recv(ws)
        assert m == {"event": "login", "code": "0", "msg": "", "connId": m["connId"]}
    async with websockets.connect(srv.ws_url + "/public") as ws:
        arg = {"channel": "tickers", "instId": "ETH-USDT-SWAP"}
        await ws.send(json.dumps({"op": "subscribe", "args": [arg, {"channel": "mark-price", "instId": "ETH-USDT-SWAP"},
                                                             {"channel": "funding-rate", "instId": "ETH-USDT-SWAP"}]}))
        ack = await recv(ws)
        assert ack["event"] == "subscribe" and ack["arg"] == arg
        snap = await recv(ws, push_of("tickers"))
        assert snap["data"][0]["last"] == "3000"
        fr = await recv(ws, push_of("funding-rate"))
        assert fr["data"][0]["fundingRate"] and int(fr["data"][0]["nextFundingTime"]) > int(fr["data"][0]["fundingTime"])
        await post(srv, "/sim/v1/price", {"instId": "ETH-USDT-SWAP", "px": "3123.45"})
        mp = await recv(ws, lambda m: push_of("mark-price")(m) and m["data"][0]["markPx"] == "3123.45")
        assert mp["arg"]["instId"] == "ETH-USDT-SWAP"
        t = await recv(ws, lambda m: push_of("tickers")(m) and m["data"][0]["last"] == "3123.45")
        assert t["arg"] == arg
        await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "tickers", "instId": "NOPE-USDT-SWAP"}]}))
        assert (await recv(ws, lambda m: m.get("event") == "error"))["code"] == "60018"


async def test_private_pushes(sim):
    srv, ex = sim
    uid = srv.account.uid
    async with websockets.connect(srv.ws_url + "/private") as ws:
        await ws.send(login_msg())
        await recv(ws, lambda m: m.get("event") == "login")
        args = [{"channel": "orders", "instType": "SWAP", "instId": "BTC-USDT-SWAP"},
                {"channel": "positions", "instType": "ANY"},
                {"channel": "account"}, {"channel": "balance_and_position"}]
        await ws.send(json.dumps({"op": "subscribe", "args": args}))
        snaps: dict[str, dict] = {}
        while len(snaps) < 3:
            m = await recv(ws, lambda m: "data" in m)
            snaps[m["arg"]["channel"]] = m
        acc, pos, bp = snaps["account"], snaps["positions"], snaps["balance_and_position"]
        assert acc["eventType"] == "snapshot" and acc["arg"] == {"channel": "account", "uid": uid}
        assert acc["data"][0]["details"][0]["cashBal"] == "10000"
        assert pos["eventType"] == "snapshot" and pos["data"] == []
        assert bp["data"][0]["eventType"] == "snapshot"

        o = await ex.create_order("BTC/USDT:USDT", "market", "buy", 2)
        m = await recv(ws, push_of("orders"))
        assert m["arg"] == dict(args[0], uid=uid)
        item = m["data"][0]
        assert item["ordId"] == o["id"] and item["state"] == "filled" and item["fillSz"] == "2"
        assert item["fillPx"] == "60000" and item["fillFee"] == "-0.6" and item["execType"] == "T"
        assert item["reduceOnly"] == "false" and item["category"] == "normal" and item["accFillSz"] == "2"
        p = await recv(ws, push_of("positions"))
        assert p["eventType"] == "event_update" and p["data"][0]["pos"] == "2" and p["arg"]["uid"] == uid
        bp = await recv(ws, push_of("balance_and_position"))
        d = bp["data"][0]
        assert d["eventType"] == "filled" and d["trades"][0]["tradeId"] == item["tradeId"]
        assert d["balData"][0]["cashBal"] == "9999.4"

        await post(srv, "/sim/v1/funding", {"instId": "BTC-USDT-SWAP", "rate": "0.001"})
        bp = await recv(ws, lambda m: push_of("balance_and_position")(m) and m["data"][0]["eventType"] == "funding_fee")
        assert bp["data"][0]["balData"][0]["cashBal"] == "9998.2"
        p = await recv(ws, lambda m: push_of("positions")(m) and m["data"][0]["fundingFee"] == "-1.2")

        await ex.set_leverage(100, "BTC/USDT:USDT", {"mgnMode": "cross"})
        await ex.create_order("BTC/USDT:USDT", "market", "buy", 1400)
        await post(srv, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "59000"})
        liq = await recv(ws, lambda m: push_of("orders")(m) and m["data"][0]["category"] == "full_liquidation")
        assert liq["data"][0]["accFillSz"] == "1402" and liq["data"][0]["fillPx"] == "59000"
        bp = await recv(ws, lambda m: push_of("balance_and_position")(m) and m["data"][0]["eventType"] == "liquidation")
        flat = await recv(ws, lambda m: push_of("positions")(m) and m["data"][0]["pos"] == "0")
        assert flat["data"][0]["posSide"] == "net"


async def test_orders_algo_on_business(sim):
    srv, ex = sim
    async with websockets.connect(srv.ws_url + "/business") as ws:
        await ws.send(login_msg())
        await recv(ws, lambda m: m.get("event") == "login")
        await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "orders-algo", "instType": "SWAP"}]}))
        await recv(ws, lambda m: m.get("event") == "subscribe")
        await ex.create_order("BTC/USDT:USDT", "market", "sell", 1)
        tp = await ex.create_order("BTC/USDT:USDT", "market", "buy", 1, None,
                                   {"reduceOnly": True, "takeProfitPrice": 59000, "stopLossPrice": 61000})
        live = await recv(ws, push_of("orders-algo"))
        item = live["data"][0]
        assert item["algoId"] == tp["id"] and item["state"] == "live" and item["ordType"] == "oco"
        assert item["tpTriggerPx"] == "59000" and item["slTriggerPx"] == "61000"
        await post(srv, "/sim/v1/price", {"instId": "BTC-USDT-SWAP", "px": "61000.5"})
        eff = await recv(ws, lambda m: push_of("orders-algo")(m) and m["data"][0]["state"] == "effective")
        assert eff["data"][0]["actualSide"] == "sl" and eff["data"][0]["ordId"]
        spawned = (await ex.private_get_trade_order({"instId": "BTC-USDT-SWAP", "ordId": eff["data"][0]["ordId"]}))
        assert spawned["data"][0]["algoId"] == tp["id"] and spawned["data"][0]["state"] == "filled"


async def test_drop_closes_every_socket(sim):
    srv, _ = sim
    async with websockets.connect(srv.ws_url + "/public") as a, websockets.connect(srv.ws_url + "/private") as b:
        await a.send("ping")
        await recv(a)
        res = await post(srv, "/sim/v1/drop", {})
        assert res["data"][0]["closed"] == "2"
        for ws in (a, b):
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
    async with aiohttp.ClientSession() as s, s.get(srv.url + "/sim/v1/state") as r:
        state = (await r.json())["data"][0]
    assert state["accounts"][0]["balance"]["totalEq"] == "10000" and state["prices"]["BTC-USDT-SWAP"] == "60000"


def test_standalone_prints_and_stops_on_sigint():
    code = "from core.sim.standalone import main; import sys; sys.exit(main(port=0, speed=0))"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        lines = []
        deadline = time.time() + 15
        while time.time() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        assert "REST      http://127.0.0.1:" in text and "ws://127.0.0.1:" in text
        assert "perpdesk-demo-secret" in text and "passphrase perpdesk-demo" in text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_standalone_refuses_remote_bind():
    from core.sim.standalone import main
    assert main(host="0.0.0.0", port=0) == 2
    with pytest.raises(ValueError):
        SimServer(host="0.0.0.0")
