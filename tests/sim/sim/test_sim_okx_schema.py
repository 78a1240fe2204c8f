"""Every field of OKX's documented examples is present in the simulator's answer.

The fixtures in tests/fixtures/okx_docs/ hold OKX's own examples (one file per endpoint or
channel, each naming its doc section). For each one this test asks the simulator the same thing,
on an account with something in every list (positions cross and isolated, funding, a closed
position, a resting order with attached TP/SL, a live algo), and fails on any field the docs list
that the simulator leaves out, nested objects and lists of objects included. A candle row must
have as many fields as the documented row.

Why by path/channel and not by file name: the fixtures are written by more than one hand; the
``kind`` and ``path``/``channel`` inside a file say what it documents. A kind this test expects
but finds no fixture for is skipped naming it; a fixture it does not know how to ask for fails.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from core.sim.server import SimServer
from tests.helpers import paths
from tests.helpers.okx_raw import Ws, control, data

FIXTURES = paths.FIXTURES / "okx_docs"
BTC, ETH, SOL = "BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP"


class Scene:
    """The simulator and the ids of what the scenario created."""

    def __init__(self, srv: SimServer) -> None:
        self.srv = srv
        self.resting_ord_id = ""
        self.filled_ord_id = ""
        self.algo_id = ""


async def _order(srv: SimServer, body: dict[str, Any]) -> str:
    (item,) = await data(srv, "POST", "trade/order", body=body)
    return str(item["ordId"])


async def build(srv: SimServer) -> Scene:
    sc = Scene(srv)
    mkt = {"ordType": "market", "tdMode": "cross"}
    sc.filled_ord_id = await _order(srv, {**mkt, "instId": BTC, "side": "buy", "sz": "2", "clOrdId": "entry1",
                                          "attachAlgoOrds": [{"attachAlgoClOrdId": "tp1", "tpTriggerPx": "65000",
                                                              "slTriggerPx": "55000"}]})
    await data(srv, "POST", "account/set-leverage", body={"instId": ETH, "mgnMode": "isolated", "lever": "5"})
    await _order(srv, {**mkt, "instId": ETH, "side": "sell", "sz": "3", "tdMode": "isolated"})
    await _order(srv, {**mkt, "instId": SOL, "side": "buy", "sz": "5"})
    await _order(srv, {**mkt, "instId": SOL, "side": "sell", "sz": "5"})
    for inst in (BTC, ETH):
        status, _ = await control(srv, "/sim/v1/funding", {"instId": inst, "rate": "0.0001"})
        assert status == 200
    sc.resting_ord_id = await _order(srv, {"instId": BTC, "side": "buy", "ordType": "limit", "px": "50000",
                                           "tdMode": "cross", "sz": "1", "clOrdId": "rest1",
                                           "attachAlgoOrds": [{"attachAlgoClOrdId": "tp2", "tpTriggerPx": "70000",
                                                               "slTriggerPx": "45000"}]})
    (a,) = await data(srv, "POST", "trade/order-algo",
                      body={"instId": BTC, "side": "sell", "ordType": "conditional", "tdMode": "cross", "sz": "1",
                            "reduceOnly": True, "slTriggerPx": "50000", "slOrdPx": "-1"})
    sc.algo_id = str(a["algoId"])
    return sc


Ask = Callable[[Scene], Awaitable[list[Any]]]


def get(path: str, query: dict[str, str] | Callable[[Scene], dict[str, str]] | None = None) -> Ask:
    async def ask(sc: Scene) -> list[Any]:
        q = query(sc) if callable(query) else query
        return await data(sc.srv, "GET", path, q)
    return ask


def post(path: str, body: Callable[[Scene], dict[str, Any]]) -> Ask:
    async def ask(sc: Scene) -> list[Any]:
        return await data(sc.srv, "POST", path, body=body(sc))
    return ask


def ws(kind: str, sub: dict[str, str], login: bool = True, trigger: Callable[[Scene], Awaitable[Any]] | None = None,
       pred: Callable[[Any], bool] = lambda item: True) -> Ask:
    async def ask(sc: Scene) -> list[Any]:
        conn = await Ws.open(sc.srv, kind, login=login, subs=[sub])
        try:
            if trigger is not None:
                await trigger(sc)
            push = await conn.next_push(sub["channel"], pred)
        finally:
            await conn.close()
        return list(push["data"])
    return ask


async def _fill(sc: Scene) -> None:
    await _order(sc.srv, {"instId": BTC, "side": "buy", "ordType": "market", "tdMode": "cross", "sz": "1"})


async def _algo(sc: Scene) -> None:
    await data(sc.srv, "POST", "trade/order-algo",
               body={"instId": BTC, "side": "sell", "ordType": "conditional", "tdMode": "cross", "sz": "1",
                     "reduceOnly": True, "slTriggerPx": "40000", "slOrdPx": "-1"})


REST: dict[str, Ask] = {
    "/api/v5/account/balance": get("account/balance"),
    "/api/v5/account/positions": get("account/positions"),
    "/api/v5/account/positions-history": get("account/positions-history"),
    "/api/v5/account/bills": get("account/bills"),
    "/api/v5/account/bills-archive": get("account/bills-archive"),
    "/api/v5/account/config": get("account/config"),
    "/api/v5/account/max-size": get("account/max-size", {"instId": BTC, "tdMode": "cross"}),
    "/api/v5/account/max-avail-size": get("account/max-avail-size", {"instId": BTC, "tdMode": "cross"}),
    "/api/v5/trade/fills": get("trade/fills"),
    "/api/v5/trade/fills-history": get("trade/fills-history", {"instType": "SWAP"}),
    "/api/v5/trade/order": get("trade/order", lambda sc: {"instId": BTC, "ordId": sc.resting_ord_id}),
    "/api/v5/trade/orders-pending": get("trade/orders-pending"),
    "/api/v5/trade/orders-history": get("trade/orders-history", {"instType": "SWAP"}),
    "/api/v5/trade/order-algo": get("trade/order-algo", lambda sc: {"algoId": sc.algo_id}),
    "/api/v5/trade/orders-algo-pending": get("trade/orders-algo-pending", {"ordType": "conditional"}),
    "/api/v5/trade/amend-order": post("trade/amend-order", lambda sc: {"instId": BTC, "ordId": sc.resting_ord_id,
                                                                       "newPx": "50100", "reqId": "r1"}),
    "/api/v5/trade/amend-algos": post("trade/amend-algos", lambda sc: {"instId": BTC, "algoId": sc.algo_id,
                                                                       "newSlTriggerPx": "51000", "reqId": "r2"}),
    "/api/v5/market/candles": get("market/candles", {"instId": BTC, "bar": "1m"}),
    "/api/v5/market/history-candles": get("market/history-candles", {"instId": BTC, "bar": "1m"}),
    "/api/v5/market/ticker": get("market/ticker", {"instId": BTC}),
    "/api/v5/public/mark-price": get("public/mark-price", {"instType": "SWAP", "instId": BTC}),
    "/api/v5/public/funding-rate": get("public/funding-rate", {"instId": BTC}),
    "/api/v5/public/instruments": get("public/instruments", {"instType": "SWAP"}),
}
WS: dict[str, Ask] = {
    "orders": ws("private", {"channel": "orders", "instType": "SWAP"}, trigger=_fill,
                 pred=lambda o: bool(o.get("tradeId"))),
    "positions": ws("private", {"channel": "positions", "instType": "SWAP"}),
    "account": ws("private", {"channel": "account"}),
    "balance_and_position": ws("private", {"channel": "balance_and_position"}, trigger=_fill,
                               pred=lambda d: d.get("eventType") == "filled"),
    "orders-algo": ws("business", {"channel": "orders-algo", "instType": "SWAP"}, trigger=_algo),
    "mark-price": ws("public", {"channel": "mark-price", "instId": BTC}, login=False),
    "funding-rate": ws("public", {"channel": "funding-rate", "instId": BTC}, login=False),
    "tickers": ws("public", {"channel": "tickers", "instId": BTC}, login=False),
    "candle1m": ws("business", {"channel": "candle1m", "instId": BTC}, login=False),
    "candle5m": ws("business", {"channel": "candle5m", "instId": BTC}, login=False),
}


def fixtures() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, json.loads(p.read_text())) for p in sorted(FIXTURES.glob("*.json"))]


def target(fx: dict[str, Any]) -> tuple[str, str]:
    return (fx["kind"], fx["path"] if fx["kind"] == "rest" else fx["channel"])


def missing(doc: Any, sim: Any, where: str, row: bool = True) -> list[str]:
    """Fields of ``doc`` absent from ``sim``, recursively (dicts, lists of dicts, row lengths).

    A row (a candle: a list of values by position) must be as long as the documented one. A
    field holding a list of values (``tradeQuoteCcyList``: ["USDT"] for the docs' spot example,
    [] for a swap on OKX) has no shape beyond being a list, so there ``row`` is False.
    """
    if isinstance(doc, dict):
        if not isinstance(sim, dict):
            return [f"{where}: expected an object, got {type(sim).__name__}"]
        out = [f"{where}.{k}" for k in doc if k not in sim]
        for k, v in doc.items():
            if k in sim and isinstance(v, (dict, list)) and v:
                out += missing(v, sim[k], f"{where}.{k}", row=False)
        return out
    if isinstance(doc, list) and doc:
        if not isinstance(sim, list):
            return [f"{where}: expected a list, got {type(sim).__name__}"]
        if not row and not isinstance(doc[0], (dict, list)):
            return [f"{where}: expected values, got {sim!r}"] if any(isinstance(x, (dict, list)) for x in sim) else []
        if not sim:
            return [f"{where}: the simulator's list is empty, nothing to compare with"]
        if isinstance(doc[0], (dict, list)):
            return missing(doc[0], sim[0], f"{where}[0]")
        if len(sim) < len(doc):
            return [f"{where}: {len(doc)} fields documented, {len(sim)} served"]
    return []


def test_every_fixture_is_one_the_test_can_ask_for() -> None:
    unknown = []
    for path, fx in fixtures():
        assert {"_doc", "_note", "kind", "example"} <= fx.keys(), f"{path.name}: not in the fixture shape"
        kind, what = target(fx)
        if what not in (REST if kind == "rest" else WS):
            unknown.append(f"{path.name} ({kind} {what})")
    assert not unknown, f"fixtures the schema test cannot request from the simulator: {unknown}"


EXPECTED = [("rest", p) for p in REST] + [("ws", c) for c in WS]


@pytest.mark.parametrize("kind,what", EXPECTED, ids=[w for _, w in EXPECTED])
async def test_simulator_serves_every_documented_field(kind: str, what: str) -> None:
    files = [(p, fx) for p, fx in fixtures() if target(fx) == (kind, what)]
    if not files:
        pytest.skip(f"no fixture for {kind} {what} in tests/fixtures/okx_docs (not written on this branch)")
    srv = SimServer(speed=0, slippage=D(0), spread_ticks=0)  # built only when there is something to check
    await srv.start()
    try:
        answer = await (REST if kind == "rest" else WS)[what](await build(srv))
    finally:
        await srv.stop()
    assert answer, f"the simulator answered no data for {kind} {what}"
    for path, fx in files:
        doc_items = fx["example"]["data"]
        gaps = missing(doc_items[0], answer[0], path.name)
        assert not gaps, f"{path.name} ({fx['_doc']}): the simulator omits {gaps}"
