"""Hostile input to the simulator: numbers OKX refuses, funding rates that are no rates, and a
control API that a web page in the trader's browser must not be able to reach."""
from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import aiohttp
import pytest

from core.sim.control import CONTROL_TOKEN_HEADER
from core.sim.server import SimServer
from tests.okx_raw import control, data, rest

BTC = "BTC-USDT-SWAP"




@pytest.mark.parametrize("rate", ["Infinity", "NaN", "1e50", "-Infinity", "5"])
async def test_funding_rate_that_is_no_rate_is_refused_before_booking(srv: SimServer, rate: str) -> None:
    await data(srv, "POST", "trade/order", body={"instId": BTC, "side": "buy", "ordType": "market",
                                                 "tdMode": "cross", "sz": "1"})
    bills_before = len(srv.account.bills)
    status, payload = await control(srv, "/sim/v1/funding", {"instId": BTC, "rate": rate})
    assert status == 400 and payload["code"] == "51000"
    assert len(srv.account.bills) == bills_before
    status, payload = await rest(srv, "GET", "account/positions")
    assert status == 200 and payload["data"][0]["fundingFee"] == "0"
    async with aiohttp.ClientSession() as s, s.get(srv.url + "/sim/v1/state") as r:
        assert r.status == 200


@pytest.mark.parametrize("field,value", [("sz", "1_0"), ("sz", " 1 "), ("sz", 1.0),
                                         ("reduceOnly", "yes"), ("px", "59_000")])
async def test_order_numbers_and_flags_okx_refuses(srv: SimServer, field: str, value: Any) -> None:
    body = {"instId": BTC, "side": "buy", "ordType": "limit", "px": "59000", "tdMode": "cross", "sz": "1",
            field: value}
    status, payload = await rest(srv, "POST", "trade/order", body=body)
    assert payload["code"] == "1" and payload["data"][0]["sCode"] == "51000", payload
    assert not srv.account.orders


async def _post(srv: SimServer, path: str, body: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(srv.url + path, data=body, headers=headers) as r:
        return r.status, await r.json()


async def test_control_refuses_text_plain_and_any_origin(srv: SimServer) -> None:
    body = '{"instId": "BTC-USDT-SWAP", "px": "1000"}'
    status, _ = await _post(srv, "/sim/v1/price", body, {"Content-Type": "text/plain"})
    assert status == 415
    status, _ = await _post(srv, "/sim/v1/price", body, {"Content-Type": "application/json",
                                                         "Origin": "https://evil.example"})
    assert status == 403
    async with aiohttp.ClientSession() as s, s.get(srv.url + "/sim/v1/state",
                                                   headers={"Origin": "http://127.0.0.1:1"}) as r:
        assert r.status == 403
    assert srv.market.prices[BTC] == D(60000)
    status, _ = await _post(srv, "/sim/v1/price", body, {"Content-Type": "application/json"})
    assert status == 200 and srv.market.prices[BTC] == D(1000)


async def test_allow_remote_control_needs_the_token() -> None:
    srv = SimServer(speed=0, allow_remote=True)
    await srv.start()
    try:
        assert srv.control_token
        body = '{"instId": "BTC-USDT-SWAP", "px": "1000"}'
        json_ct = {"Content-Type": "application/json"}
        assert (await _post(srv, "/sim/v1/price", body, json_ct))[0] == 401
        assert (await _post(srv, "/sim/v1/price", body, {**json_ct, CONTROL_TOKEN_HEADER: "guess"}))[0] == 401
        assert srv.market.prices[BTC] == D(60000)
        status, _ = await _post(srv, "/sim/v1/price", body, {**json_ct, CONTROL_TOKEN_HEADER: srv.control_token})
        assert status == 200 and srv.market.prices[BTC] == D(1000)
    finally:
        await srv.stop()
