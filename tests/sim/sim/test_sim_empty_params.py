"""Empty optional parameters are absent, as on OKX (issue 19 item 7).

OKX's official SDKs send every optional field of a request as ``""`` (python-okx's place_order
sends ``reduceOnly: ""``, ``px: ""`` on a market order, ``posSide: ""``...). The simulator reads
them as not given, for every endpoint it serves: the walk below is driven by the simulator's own
declaration (``core.sim.params.ENDPOINTS``), so a new endpoint is covered once it is declared, and
a route left undeclared fails here. A required field given as ``""`` is still OKX's 50014.
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest

from core.sim import params
from core.sim.server import SimServer
from tests.helpers.okx_raw import control, data, rest

BTC = "BTC-USDT-SWAP"


class Scene:
    """A frozen simulator with a long position, a resting order and a live TP/SL algo."""

    def __init__(self, srv: SimServer) -> None:
        self.srv = srv
        self.ord_id = ""
        self.algo_id = ""


async def _scene(srv: SimServer) -> Scene:
    sc = Scene(srv)
    await data(srv, "POST", "trade/order", body={"instId": BTC, "side": "buy", "ordType": "market",
                                                 "tdMode": "cross", "sz": "2"})
    (o,) = await data(srv, "POST", "trade/order", body={"instId": BTC, "side": "buy", "ordType": "limit",
                                                        "px": "50000", "tdMode": "cross", "sz": "1"})
    sc.ord_id = o["ordId"]
    (a,) = await data(srv, "POST", "trade/order-algo", body={"instId": BTC, "side": "sell", "ordType": "conditional",
                                                             "tdMode": "cross", "sz": "1", "reduceOnly": True,
                                                             "slTriggerPx": "45000"})
    sc.algo_id = a["algoId"]
    return sc


# A valid value of each required field, by name: an endpoint whose required fields are all here
# needs no entry below.
REQUIRED = {"instId": BTC, "instType": "SWAP", "tdMode": "cross", "mgnMode": "cross", "side": "buy",
            "ordType": "market", "sz": "1", "lever": "5", "posMode": "net_mode"}
# What an endpoint needs beyond its required fields to succeed (fields kept out of the "" set).
EXTRA: dict[tuple[str, str], Callable[[Scene], dict[str, str]]] = {
    ("POST", "trade/cancel-order"): lambda sc: {"instId": BTC, "ordId": sc.ord_id},
    ("POST", "trade/cancel-batch-orders"): lambda sc: {"instId": BTC, "ordId": sc.ord_id},
    ("POST", "trade/amend-order"): lambda sc: {"instId": BTC, "ordId": sc.ord_id, "newPx": "50100"},
    ("POST", "trade/amend-algos"): lambda sc: {"instId": BTC, "algoId": sc.algo_id, "newSlTriggerPx": "46000"},
    ("POST", "trade/order-algo"): lambda sc: {"ordType": "conditional", "side": "sell", "sz": "1",
                                              "slTriggerPx": "44000"},
    ("POST", "trade/cancel-algos"): lambda sc: {"algoId": sc.algo_id},
    ("GET", "trade/order"): lambda sc: {"ordId": sc.ord_id},
    ("GET", "trade/order-algo"): lambda sc: {"algoId": sc.algo_id},
    ("GET", "trade/orders-algo-history"): lambda sc: {"algoId": sc.algo_id},
}
ROUTES = sorted(params.ENDPOINTS)


def _base(route: tuple[str, str], sc: Scene) -> dict[str, str]:
    fields = params.ENDPOINTS[route]
    extra = EXTRA.get(route, lambda sc: {})(sc)
    missing = [f for f in fields.required if f not in REQUIRED and f not in extra]
    assert not missing, f"{route}: give the test a valid value of {missing}"
    return {**{f: REQUIRED[f] for f in fields.required if f in REQUIRED}, **extra}


async def _call(srv: SimServer, route: tuple[str, str], fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    method, path = route
    if method == "GET":
        return await rest(srv, method, path, query=fields)
    return await rest(srv, method, path, body=[fields] if params.ENDPOINTS[route].items else fields)


def _codes(payload: dict[str, Any]) -> list[str]:
    """The envelope code and every item's sCode (order-style endpoints)."""
    return [payload["code"]] + [str(i["sCode"]) for i in payload["data"] if isinstance(i, dict) and "sCode" in i]


def test_every_route_is_declared() -> None:
    """A route the declaration does not know is one the "" rule was never thought through for."""
    routes = set(SimServer(speed=0).rest.routes)
    assert routes == set(params.ENDPOINTS), (routes ^ set(params.ENDPOINTS))


@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_every_optional_field_empty_is_absent(srv: SimServer, route: tuple[str, str]) -> None:
    sc = await _scene(srv)
    base = _base(route, sc)
    empty = {f: "" for f in params.ENDPOINTS[route].optional if f not in base}
    status, payload = await _call(srv, route, {**base, **empty})
    assert status == 200 and set(_codes(payload)) == {"0"}, (empty, payload)


@pytest.mark.parametrize("route", [r for r in ROUTES if params.ENDPOINTS[r].required],
                         ids=[f"{m} {p}" for m, p in ROUTES if params.ENDPOINTS[m, p].required])
async def test_a_required_field_empty_is_still_required(srv: SimServer, route: tuple[str, str]) -> None:
    sc = await _scene(srv)
    base = _base(route, sc)
    for name in params.ENDPOINTS[route].required:
        status, payload = await _call(srv, route, {**base, name: ""})
        assert payload["code"] == "50014" and payload["msg"] == f"Parameter {name} can not be empty", (name, payload)


@pytest.mark.parametrize("field,value", [("reduceOnly", "yes"), ("sz", "1_0"), ("px", "59_000"),
                                         ("posSide", "long"), ("tdMode", "margin")])
async def test_a_wrong_value_is_still_refused(srv: SimServer, field: str, value: str) -> None:
    body = {"instId": BTC, "side": "buy", "ordType": "limit", "px": "59000", "tdMode": "cross", "sz": "1",
            field: value}
    _, payload = await rest(srv, "POST", "trade/order", body=body)
    assert payload["data"][0]["sCode"] == "51000", payload
    assert not srv.account.orders


# ------------------------------------------------------------------ an official SDK's client, end to end

ORDER_FIELDS = ("ccy", "clOrdId", "tag", "posSide", "px", "reduceOnly", "tgtCcy", "tpTriggerPx", "tpOrdPx",
                "slTriggerPx", "slOrdPx", "tpTriggerPxType", "slTriggerPxType", "quickMgnType", "stpId", "stpMode",
                "pxUsd", "pxVol", "banAmend")
ATTACH_FIELDS = ("attachAlgoClOrdId", "tpTriggerPx", "tpOrdPx", "tpOrdKind", "slTriggerPx", "slOrdPx",
                 "tpTriggerPxType", "slTriggerPxType", "sz", "amendPxOnTriggerType")


class SdkClient:
    """Signed raw requests shaped as python-okx sends them: every optional field present, ``""``
    unless the caller gives it (query strings included: ``?instType=&ccy=...``)."""

    def __init__(self, srv: SimServer) -> None:
        self.srv = srv

    async def post(self, path: str, body: Any) -> list[Any]:
        return await data(self.srv, "POST", path, body=body)

    async def get(self, path: str, **given: str) -> list[Any]:
        query = {f: "" for f in params.ENDPOINTS["GET", path].optional} | given
        return await data(self.srv, "GET", path, query)

    async def place_order(self, inst_id: str, td_mode: str, side: str, ord_type: str, sz: str,
                          attach: dict[str, str] | None = None, **given: str) -> dict[str, Any]:
        body: dict[str, Any] = {"instId": inst_id, "tdMode": td_mode, "side": side, "ordType": ord_type, "sz": sz,
                                **{f: "" for f in ORDER_FIELDS}, **given}
        if attach is not None:
            body["attachAlgoOrds"] = [{f: "" for f in ATTACH_FIELDS} | attach]
        (item,) = await self.post("trade/order", body)
        assert item["sCode"] == "0", item
        return item  # type: ignore[no-any-return]

    async def close_positions(self, inst_id: str, mgn_mode: str) -> dict[str, Any]:
        (item,) = await self.post("trade/close-position", {"instId": inst_id, "mgnMode": mgn_mode, "posSide": "",
                                                           "ccy": "", "autoCxl": "", "clOrdId": "", "tag": ""})
        return item  # type: ignore[no-any-return]


async def test_an_official_sdk_client_trades_end_to_end(srv: SimServer) -> None:
    sdk = SdkClient(srv)
    # an entry with a TP and an SL attached (the SDK's attachAlgoOrds item, the rest "")
    entry = await sdk.place_order(BTC, "cross", "buy", "market", "3",
                                  attach={"tpTriggerPx": "61000", "slTriggerPx": "58000", "slOrdPx": "-1"})
    (pos,) = await sdk.get("account/positions")
    assert (pos["pos"], pos["posSide"]) == ("3", "net")
    (algo,) = await sdk.get("trade/orders-algo-pending", ordType="oco")
    assert (algo["tpTriggerPx"], algo["slTriggerPx"], algo["reduceOnly"]) == ("61000", "58000", "true")
    # a partial close: reduce-only as the SDK spells it
    await sdk.place_order(BTC, "cross", "sell", "market", "1", reduceOnly="true")
    (pos,) = await sdk.get("account/positions")
    assert pos["pos"] == "2"
    # the TP fires on the exchange when the price gets there
    assert (await control(srv, "/sim/v1/price", {"instId": BTC, "px": "61000"}))[0] == 200
    assert await sdk.get("account/positions") == []
    (fired,) = await sdk.get("trade/orders-algo-history", ordType="oco", state="effective")
    assert fired["algoId"] == algo["algoId"] and fired["actualSide"] == "tp"
    # a second life closed with close-position
    await sdk.place_order(BTC, "cross", "sell", "market", "2")
    (pos,) = await sdk.get("account/positions")
    assert pos["pos"] == "-2"
    await sdk.close_positions(BTC, "cross")
    assert await sdk.get("account/positions") == []
    # the exchange's records, asked with every optional filter ""
    fills = await sdk.get("trade/fills-history", instType="SWAP")
    assert [f["fillSz"] for f in reversed(fills)] == ["3", "1", "2", "2", "2"]
    bills = await sdk.get("account/bills")
    assert len(bills) == 5 and sum(D(b["balChg"]) for b in bills) == srv.account.cash - D(10000)
    lives = await sdk.get("account/positions-history")
    assert [(h["direction"], h["openMaxPos"], h["closeTotalPos"], h["type"]) for h in lives] == \
        [("short", "2", "2", "2"), ("long", "3", "3", "2")]
    (o,) = await sdk.get("trade/order", instId=BTC, ordId=entry["ordId"])
    assert (o["state"], o["reduceOnly"], o["posSide"]) == ("filled", "false", "net")
