"""Every field of Bybit's documented examples is present in the Bybit face's answers.

The fixtures in tests/fixtures/bybit_docs/ hold Bybit's own response and stream examples, verbatim,
one file per endpoint or topic, each naming its doc page (``_doc``) and saying what it documents
(``kind`` and ``path`` or ``channel``). For each one this test asks the simulator the same thing on
an account with something in every list (an open position with TP/SL, a resting order, a closed
order, funding, an amended and a canceled order) and fails on any documented field the simulator
leaves out, nested objects and lists of objects included; a documented row (orderbook level,
kline) must have as many fields as the documented row. Fields whose keys are data (a coin name in
``cumFeeDetail``) or that the docs mark as present only for other regions (``extraFees``) are not
required by name.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import aiohttp
import pytest

from core.settings.demo import DEMO_KEY, DEMO_SECRET
from core.sim.server import SimServer
from tests.helpers import paths
from tests.helpers.engine_helpers import control

FIXTURES = paths.FIXTURES / "bybit_docs"
DATA_KEYED = {"cumFeeDetail"}  # keys are coin names
REGIONAL = {"extraFees"}  # "returned only for kyc=Indian user or ...; in other cases an empty string"


def _sign(payload: str, ts: str) -> dict[str, str]:
    window = "5000"
    sig = hmac.new(DEMO_SECRET.encode(), (ts + DEMO_KEY + window + payload).encode(), hashlib.sha256).hexdigest()
    return {"X-BAPI-API-KEY": DEMO_KEY, "X-BAPI-TIMESTAMP": ts, "X-BAPI-RECV-WINDOW": window, "X-BAPI-SIGN": sig,
            "Content-Type": "application/json"}


async def call(srv: SimServer, method: str, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A signed v5 request, as Bybit's docs show it (query string for GET, JSON body for POST)."""
    params = params or {}
    ts = str(srv.exchange.clock())
    async with aiohttp.ClientSession() as s:
        if method == "GET":
            query = "&".join(f"{k}={v}" for k, v in params.items())
            async with s.get(f"{srv.url}{path}" + (f"?{query}" if query else ""), headers=_sign(query, ts)) as r:
                out: dict[str, Any] = await r.json()
        else:
            body = json.dumps(params)
            async with s.post(f"{srv.url}{path}", data=body, headers=_sign(body, ts)) as r:
                out = await r.json()
    assert out["retCode"] == 0, (path, out)
    return out


def _kind(v: Any) -> str | None:
    """The JSON type of a value, None for null (a documented null says nothing about the type)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(v)]


def missing(doc: Any, got: Any, where: str = "") -> list[str]:
    """The documented paths ``got`` lacks or serves with another JSON type (every item of a served
    list is held to the documented first)."""
    if isinstance(doc, dict):
        if not isinstance(got, dict):
            return [f"{where or '.'}: expected an object, got {type(got).__name__}"]
        out: list[str] = []
        for k, v in doc.items():
            if k in REGIONAL:
                continue
            if k not in got:
                out.append(f"{where}.{k}")
            elif k not in DATA_KEYED:
                out.extend(missing(v, got[k], f"{where}.{k}"))
        return out
    if _kind(doc) is not None and _kind(got) is not None and _kind(doc) != _kind(got):
        return [f"{where}: the docs give {_kind(doc)} ({doc!r:.40}), the simulator {_kind(got)} ({got!r:.40})"]
    if isinstance(doc, list) and doc and isinstance(doc[0], (dict, list)):  # a list of strings is data
        if not isinstance(got, list):
            return [f"{where}: expected a list, got {type(got).__name__}"]
        if not got:
            return [f"{where}: empty list, the docs show items"]
        if isinstance(doc[0], list):  # rows: as many fields as the documented row
            return [f"{where}[{i}]: {len(row)} fields, the docs show {len(doc[0])}"
                    for i, row in enumerate(got) if len(row) != len(doc[0])]
        return [m for i, item in enumerate(got) for m in missing(doc[0], item, f"{where}[{i}]")]
    return []


@pytest.fixture
async def scene() -> AsyncIterator[tuple[SimServer, dict[str, Any]]]:
    """A simulator whose account has something in every list, and the private stream messages it pushed."""
    srv = SimServer(speed=0, protocol="bybit", slippage=D(0), spread_ticks=0)
    await srv.start()
    pushed: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(srv.ws_url + "/private") as ws:
            expires = str(int(time.time() * 1000) + 10000)
            sig = hmac.new(DEMO_SECRET.encode(), ("GET/realtime" + expires).encode(), hashlib.sha256).hexdigest()
            await ws.send_json({"req_id": "a1", "op": "auth", "args": [DEMO_KEY, expires, sig]})
            pushed["op:auth"] = await ws.receive_json(timeout=5)
            await ws.send_json({"req_id": "s1", "op": "subscribe", "args": ["order", "execution", "position", "wallet"]})
            pushed["op:subscribe private"] = await ws.receive_json(timeout=5)
            await ws.send_json({"req_id": "p1", "op": "ping"})
            pushed["op:ping private"] = await ws.receive_json(timeout=5)
            ids = await _build(srv)
            await control(srv, "/sim/v1/funding", {"instId": "BTCUSDT", "rate": "0.0001"})
            while not {"order", "execution", "position", "wallet"} <= pushed.keys():
                msg = await ws.receive_json(timeout=5)
                pushed.setdefault(msg.get("topic", ""), msg)
                pushed.setdefault("every " + msg.get("topic", ""), []).append(msg)
            # cancel a TP leg and a resting order so conditional legs and cancels are pushed too
            await call(srv, "POST", "/v5/order/cancel", {"category": "linear", "symbol": "BTCUSDT",
                                                         "orderId": ids["sl_leg"]})
            await call(srv, "POST", "/v5/order/cancel", {"category": "linear", "symbol": "BTCUSDT",
                                                         "orderId": ids["to_cancel_ws"]})
            while True:  # every message until the stream is quiet
                try:
                    msg = await ws.receive_json(timeout=0.5)
                except TimeoutError:
                    break
                pushed.setdefault("every " + msg.get("topic", ""), []).append(msg)
        pushed["ids"] = ids
        yield srv, pushed
    finally:
        await srv.stop()


async def _build(srv: SimServer) -> dict[str, str]:
    ids: dict[str, str] = {}
    base = {"category": "linear", "symbol": "BTCUSDT"}
    await call(srv, "POST", "/v5/order/create", {**base, "side": "Buy", "orderType": "Market", "qty": "0.02",
                                                  "takeProfit": "66000", "stopLoss": "55000",
                                                  "orderLinkId": "entry-1"})
    await call(srv, "POST", "/v5/order/create", {"category": "linear", "symbol": "SOLUSDT", "side": "Buy",
                                                  "orderType": "Market", "qty": "3"})
    await call(srv, "POST", "/v5/order/create", {"category": "linear", "symbol": "SOLUSDT", "side": "Sell",
                                                  "orderType": "Market", "qty": "3", "reduceOnly": True})
    r = await call(srv, "POST", "/v5/order/create", {**base, "side": "Buy", "orderType": "Limit", "qty": "0.01",
                                                      "price": "50000", "orderLinkId": "rest-1"})
    ids["resting"] = r["result"]["orderId"]
    r = await call(srv, "POST", "/v5/order/create", {**base, "side": "Buy", "orderType": "Limit", "qty": "0.01",
                                                      "price": "49000"})
    ids["to_cancel"] = r["result"]["orderId"]
    r = await call(srv, "POST", "/v5/order/create", {**base, "side": "Buy", "orderType": "Limit", "qty": "0.01",
                                                      "price": "48500"})
    ids["to_cancel_ws"] = r["result"]["orderId"]
    legs = (await call(srv, "GET", "/v5/order/realtime", {"category": "linear", "symbol": "BTCUSDT",
                                                          "orderFilter": "StopOrder"}))["result"]["list"]
    ids["sl_leg"] = next(o["orderId"] for o in legs if o["stopOrderType"] == "StopLoss")
    return ids


async def _rest(srv: SimServer, pushed: dict[str, Any], path: str) -> dict[str, Any]:
    method, url = path.split(" ", 1)
    lin = {"category": "linear"}
    btc = {**lin, "symbol": "BTCUSDT"}
    ids = pushed["ids"]
    params: dict[str, dict[str, Any]] = {
        "/v5/market/time": {}, "/v5/market/instruments-info": lin, "/v5/market/tickers": lin,
        "/v5/market/orderbook": btc, "/v5/market/funding/history": btc,
        "/v5/market/kline": {**btc, "interval": "1"}, "/v5/user/query-api": {}, "/v5/account/info": {},
        "/v5/account/wallet-balance": {"accountType": "UNIFIED"}, "/v5/account/fee-rate": lin,
        "/v5/account/transaction-log": lin, "/v5/position/list": {**lin, "settleCoin": "USDT"},
        "/v5/position/set-leverage": {"category": "linear", "symbol": "ETHUSDT", "buyLeverage": "5",
                                      "sellLeverage": "5"},
        "/v5/position/trading-stop": {**btc, "tpslMode": "Full", "positionIdx": 0, "takeProfit": "67000"},
        "/v5/position/closed-pnl": lin,
        "/v5/order/create": {**btc, "side": "Buy", "orderType": "Limit", "qty": "0.01", "price": "48000",
                             "orderLinkId": "made-by-the-test"},
        "/v5/order/cancel": {**btc, "orderId": ids["to_cancel"]},
        "/v5/order/amend": {**btc, "orderId": ids["resting"], "price": "50100"},
        "/v5/order/cancel-all": {"category": "linear", "symbol": "BTCUSDT"},
        "/v5/order/realtime": {**lin, "settleCoin": "USDT"}, "/v5/order/history": lin,
        "/v5/execution/list": lin,
    }
    return await call(srv, method, url, params[url])


FILES = sorted(FIXTURES.glob("*.json"))


def test_fixtures_name_their_doc_page() -> None:
    assert len(FILES) >= 25
    for f in FILES:
        doc = json.loads(f.read_text())
        assert doc["_doc"].startswith("https://bybit-exchange.github.io/docs/v5/"), f.name
        assert doc["kind"] in ("rest", "ws") and ("path" in doc or "channel" in doc), f.name


# order/cancel-all cancels every open order: it runs last, after the endpoints that need one
ORDER = {"order_cancel_all.json": 1}
# asked on an account of its own (Bybit refuses a mode switch with a position open)
ALONE = {"position_switch_mode.json"}


async def test_switch_mode_answer_has_the_documented_fields() -> None:
    srv = SimServer(speed=0, protocol="bybit")
    await srv.start()
    try:
        doc = json.loads((FIXTURES / "position_switch_mode.json").read_text())
        got = await call(srv, "POST", "/v5/position/switch-mode", {"category": "linear", "coin": "USDT", "mode": 3})
        assert not missing(doc["example"], got)
    finally:
        await srv.stop()


async def test_every_documented_field_is_served(scene: tuple[SimServer, dict[str, Any]]) -> None:
    srv, pushed = scene
    problems: list[str] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(srv.ws_url + "/public/linear") as pub:
        await pub.send_json({"req_id": "t1", "op": "subscribe", "args": ["tickers.BTCUSDT"]})
        pushed["op:subscribe public"] = await pub.receive_json(timeout=5)
        pushed["tickers.{symbol}"] = await pub.receive_json(timeout=5)
        await pub.send_json({"req_id": "k1", "op": "subscribe", "args": ["kline.1.BTCUSDT"]})
        assert (await pub.receive_json(timeout=5))["success"] is True
        pushed["kline.{interval}.{symbol}"] = await pub.receive_json(timeout=5)
        await pub.send_json({"req_id": "p2", "op": "ping"})
        pushed["op:ping public"] = await pub.receive_json(timeout=5)
    pushed_orders = [o for m in pushed["every order"] for o in m["data"]]
    assert {("StopLoss", "Deactivated"), ("", "Cancelled")} <= {
        (o["stopOrderType"].replace("UNKNOWN", ""), o["orderStatus"]) for o in pushed_orders}
    for f in sorted((f for f in FILES if f.name not in ALONE), key=lambda f: ORDER.get(f.name, 0)):
        doc = json.loads(f.read_text())
        if doc["kind"] == "rest":
            got = await _rest(srv, pushed, doc["path"])
            problems += [f"{f.name}: {m}" for m in missing(doc["example"], got)]
        else:  # every message of a topic, not just the first
            for got in pushed.get("every " + doc["channel"], [pushed[doc["channel"]]]):
                problems += [f"{f.name}: {m}" for m in missing(doc["example"], got)]
    assert not problems, "\n".join(problems)
