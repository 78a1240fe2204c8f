"""Hostile input to the simulator: numbers OKX refuses, funding rates that are no rates, and a
control API that a web page in the trader's browser must not be able to reach."""
from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.sim.control import CONTROL_TOKEN_HEADER
from core.sim.server import SimServer
from tests.helpers.okx_raw import control, data, rest

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


async def _post(srv: SimServer, path: str, body: str | bytes, headers: dict[str, str]) -> tuple[int, Any]:
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


# ------------------------------------------------------------------ numbers Python takes and OKX does not

@pytest.mark.parametrize("field,value", [("sz", "１"), ("sz", "٣"), ("px", "５９０００"), ("sz", "1e999999"),
                                         ("px", "1e999999"), ("px", "-1e999999"), ("sz", "1e-999999"),
                                         ("px", "1" * 70)])
async def test_non_ascii_and_absurd_numbers_are_a_parameter_error(srv: SimServer, field: str, value: str) -> None:
    body = {"instId": BTC, "side": "buy", "ordType": "limit", "px": "59000", "tdMode": "cross", "sz": "1",
            field: value}
    status, payload = await rest(srv, "POST", "trade/order", body=body)
    assert status == 200 and payload["data"][0]["sCode"] == "51000", payload
    assert payload["data"][0]["sMsg"] == f"Parameter {field} error"
    assert not srv.account.orders


@pytest.mark.parametrize("path,query", [("account/bills", {"after": "x"}), ("account/bills", {"begin": "１"}),
                                        ("trade/fills", {"limit": "٣"}), ("market/books", {"instId": BTC, "sz": "x"}),
                                        ("market/candles", {"instId": BTC, "before": "1.5"})])
async def test_query_integers_are_ascii_digits(srv: SimServer, path: str, query: dict[str, str]) -> None:
    status, payload = await rest(srv, "GET", path, query)
    assert (status, payload["code"]) == (200, "51000"), payload


# ------------------------------------------------------------------ fuzz: no input is a 500

HOSTILE_TEXT = ["１", "٣", "1e999999", "-1e999999", "1e-999999", "NaN", "-Infinity", "sNaN", " 1", "1_0",
                "x" * 5000, "\x00", "-0", "-1", "99999999999999999999999", "true", ",", f"{BTC},"]
HOSTILE_JSON: list[Any] = [True, None, 0, -1, 1.5e308, 2**70, [], {}, [{}], [{"tpTriggerPx": "1e999999"}],
                           [{"attachAlgoId": 1, "newSlTriggerPx": "NaN"}], {"a": "b"}]
BODIES: list[Any] = [None, 1, "x", [], [1], [[]], {}, [{}], [{"instId": BTC}] * 21]
MINIMAL = {"instId": BTC, "instType": "SWAP", "tdMode": "cross", "mgnMode": "cross", "side": "buy",
           "ordType": "market", "sz": "1", "lever": "5", "posMode": "net_mode", "algoId": "1"}


async def test_no_input_to_any_endpoint_is_a_server_error(srv: SimServer) -> None:
    """Every declared field of every endpoint with values Python's parsers take and OKX refuses,
    and every POST with bodies of the wrong shape: an OKX error code, never a 500 (the handlers
    run in-process for speed; a few go over HTTP above)."""
    from core.sim import params
    from core.sim.exchange import SimError

    await data(srv, "POST", "trade/order", body={"instId": BTC, "side": "buy", "ordType": "market",
                                                 "tdMode": "cross", "sz": "2"})
    failures = []

    def call(route: tuple[str, str], q: dict[str, Any], body: Any) -> None:
        private, handler = srv.rest.routes[route]
        try:
            handler(srv.account if private else None, q, body)
        except SimError as e:
            if e.code == "50026":
                failures.append((route, q, str(body)[:80]))
        srv.flush()

    for route, fields in params.ENDPOINTS.items():
        base = {f: MINIMAL[f] for f in fields.required}
        names = fields.required + fields.optional
        for name in names:
            values = HOSTILE_TEXT if route[0] == "GET" else HOSTILE_TEXT + HOSTILE_JSON
            for v in values:
                req = {**base, name: v}
                if route[0] == "GET":
                    call(route, req, None)
                else:
                    call(route, {}, [req] if fields.items else req)
        if route[0] == "POST":
            for body in BODIES:
                call(route, {}, body)
    assert not failures, failures
    status, payload = await rest(srv, "GET", "account/balance")
    assert (status, payload["code"]) == (200, "0")


# ------------------------------------------------------------------ bytes no check foresaw: an OKX error, not a 500

def _headers(**given: str) -> dict[str, str]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    ts = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    h = {"OK-ACCESS-KEY": "perpdesk-demo", "OK-ACCESS-PASSPHRASE": "perpdesk-demo", "OK-ACCESS-TIMESTAMP": ts,
         "OK-ACCESS-SIGN": "x", "x-simulated-trading": "1", **given}
    return {k: v.encode().decode("latin-1") for k, v in h.items()}  # as the bytes go on the wire


@pytest.mark.parametrize("given,code", [({"OK-ACCESS-PASSPHRASE": "pé"}, "50105"),
                                        ({"OK-ACCESS-SIGN": "signé"}, "50113")])
async def test_non_ascii_credentials_are_refused_not_a_500(srv: SimServer, given: dict[str, str], code: str) -> None:
    async with aiohttp.ClientSession() as s, s.get(srv.url + "/api/v5/account/balance",
                                                   headers=_headers(**given)) as r:
        assert (r.status, (await r.json())["code"]) == (401, code)


async def test_a_body_that_is_not_utf8_is_a_json_error(srv: SimServer) -> None:
    status, payload = await _post(srv, "/api/v5/trade/order", b'\xff{"instId": "BTC-USDT-SWAP"}',
                                  {"Content-Type": "application/json"})
    assert (status, payload["code"]) == (400, "50002")


async def test_ws_login_with_a_non_ascii_sign_is_a_login_error(srv: SimServer) -> None:
    import json
    import time

    async with aiohttp.ClientSession() as s, s.ws_connect(srv.ws_url + "/private") as ws:
        await ws.send_str(json.dumps({"op": "login", "args": [{"apiKey": "perpdesk-demo", "passphrase": "perpdesk-demo",
                                                               "timestamp": str(int(time.time())), "sign": "é"}]}))
        msg = json.loads((await ws.receive(timeout=3)).data)
        assert (msg["event"], msg["code"]) == ("error", "60009")
        await ws.send_str("ping")
        assert (await ws.receive(timeout=3)).data == "pong"  # the connection is still served


@pytest.mark.parametrize("given", [{"delay": "nan"}, {"delay": "inf"}, {"delay": -1}, {"count": 0}, {"count": "1e9"}])
async def test_a_fault_that_is_no_fault_is_refused(srv: SimServer, given: dict[str, Any]) -> None:
    status, payload = await control(srv, "/sim/v1/fault", {"kind": "timeout", **given})
    assert (status, payload["code"]) == (400, "51000") and not srv.faults


async def test_a_deeply_nested_body_is_an_error_not_a_500(srv: SimServer) -> None:
    deep: Any = "x"
    for _ in range(900):
        deep = [deep]
    body = {"instId": BTC, "side": "buy", "ordType": "market", "tdMode": "cross", "sz": "1", "attachAlgoOrds": deep}
    status, payload = await rest(srv, "POST", "trade/order", body=body)
    assert status == 200 and payload["code"] == "1" and payload["data"][0]["sCode"] == "51000", payload


def test_a_request_aiohttp_cannot_parse_prints_no_traceback(tmp_path: Path) -> None:
    """`perpdesk sim` given a request line over 8 KB and a broken header: HTTP 400 each, and
    nothing on its terminal but its own lines (aiohttp's complaint is one line in the log)."""
    import socket
    from urllib.parse import urlsplit

    from tests.helpers.sim_cli import _start_cli, _stop_cli

    proc, url = _start_cli(tmp_path)
    try:
        host, port = urlsplit(url).hostname, urlsplit(url).port
        for raw in (b"GET /api/v5/public/time?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /api/v5/public/time HTTP/1.1\r\nHost x\r\n\r\n"):
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(raw)
                assert s.recv(100).split(b" ")[1] == b"400", raw[:40]
    finally:
        _stop_cli(proc)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "Traceback" not in err and "Error handling request" not in err, err
