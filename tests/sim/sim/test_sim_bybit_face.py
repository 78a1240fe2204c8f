"""`perpdesk sim` with the Bybit v5 face, chosen by ``[sim] protocol`` or ``--protocol`` (real processes)."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import urllib.request
from decimal import Decimal as D
from pathlib import Path

import aiohttp
import ccxt.async_support

from core.settings.demo import DEMO_KEY, DEMO_SECRET
from core.sim.ccxt_client import bybit_client
from core.sim.server import SimServer

PERPDESK = Path(sys.executable).with_name("perpdesk")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}


def test_config_protocol_bybit_serves_bybit_v5(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[sim]\nprotocol = "bybit"\n')
    proc = subprocess.Popen([str(PERPDESK), "--config", "c.toml", "sim", "--port", "0", "--speed", "0"],
                            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]
        assert "Bybit v5 simulator" in lines[0], lines
        assert any('venue = "bybit"' in line for line in lines), lines
        url = lines[1].split()[1].removesuffix("/v5/...")
        with urllib.request.urlopen(url + "/v5/market/tickers?category=linear&symbol=BTCUSDT", timeout=10) as r:
            body = json.loads(r.read())
        assert body["retCode"] == 0 and body["result"]["list"][0]["symbol"] == "BTCUSDT"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_unknown_protocol_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[sim]\nprotocol = "binance"\n')
    proc = subprocess.run([str(PERPDESK), "--config", "c.toml", "sim", "--port", "0"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "protocol" in proc.stderr and '"okx" or "bybit"' in proc.stderr and "Traceback" not in proc.stderr


async def test_bybit_face_resumes_from_the_state_file(tmp_path: Path) -> None:
    """The Bybit face keeps nothing of its own: what it serves after a restart comes from the saved
    exchange (executions, closed PnL, the orderLinkId kept on the order)."""
    state = tmp_path / "sim.json"
    for round_ in (1, 2):
        srv = SimServer(speed=0, protocol="bybit", state_path=state, slippage=D(0), spread_ticks=0)
        await srv.start()
        ex = bybit_client(ccxt.async_support.bybit, srv.url)
        try:
            if round_ == 1:
                await ex.create_order("BTC/USDT:USDT", "market", "buy", 0.01, params={"orderLinkId": "keep-me"})
                await ex.create_order("BTC/USDT:USDT", "market", "sell", 0.01, params={"reduceOnly": True})
            else:
                assert srv.resumed
            execs = (await ex.privateGetV5ExecutionList({"category": "linear"}))["result"]["list"]
            closed = (await ex.privateGetV5PositionClosedPnl({"category": "linear"}))["result"]["list"]
            assert len(execs) == 2 and len(closed) == 1
            assert {e["orderLinkId"] for e in execs} == {"keep-me", ""}
        finally:
            await ex.close()
            await srv.stop()


async def test_order_refusals_speak_bybit_units() -> None:
    """A refused order names Bybit's own units (coins, qtyStep, minOrderQty), never the core's contracts."""
    srv = SimServer(speed=0, protocol="bybit")
    await srv.start()

    async def create(body: dict[str, str]) -> dict[str, object]:
        text = json.dumps({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", **body})
        ts = str(srv.exchange.clock())
        sig = hmac.new(DEMO_SECRET.encode(), (ts + DEMO_KEY + "5000" + text).encode(), hashlib.sha256).hexdigest()
        headers = {"X-BAPI-API-KEY": DEMO_KEY, "X-BAPI-TIMESTAMP": ts, "X-BAPI-RECV-WINDOW": "5000",
                   "X-BAPI-SIGN": sig, "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as s, s.post(srv.url + "/v5/order/create", data=text, headers=headers) as r:
            out: dict[str, object] = await r.json()
            return out

    try:
        off_step = await create({"qty": "0.00015"})
        assert off_step["retCode"] == 10001 and "qtyStep 0.0001" in str(off_step["retMsg"])
        assert (await create({"qty": "0"}))["retCode"] == 10001
        assert (await create({"qty": "0.0001"}))["retCode"] == 0  # the minOrderQty itself is fine
        assert (await create({"qty": "0.001", "side": "buy"}))["retCode"] == 10001  # Bybit's sides are Buy/Sell
    finally:
        await srv.stop()


async def test_hostile_parameters_are_params_errors_not_server_errors() -> None:
    srv = SimServer(speed=0, protocol="bybit")
    await srv.start()

    async def post(path: str, body: object) -> tuple[int, dict[str, object]]:
        text = json.dumps(body)
        ts = str(srv.exchange.clock())
        sig = hmac.new(DEMO_SECRET.encode(), (ts + DEMO_KEY + "5000" + text).encode(), hashlib.sha256).hexdigest()
        headers = {"X-BAPI-API-KEY": DEMO_KEY, "X-BAPI-TIMESTAMP": ts, "X-BAPI-RECV-WINDOW": "5000",
                   "X-BAPI-SIGN": sig, "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as s, s.post(srv.url + path, data=text, headers=headers) as r:
            return r.status, await r.json()

    base = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.001"}
    try:
        for path, body in (("/v5/order/create", {**base, "positionIdx": "x"}),
                           ("/v5/order/create", {**base, "qty": [1]}),
                           ("/v5/order/create", {**base, "qty": "NaN"}),
                           ("/v5/order/create", {**base, "takeProfit": {"a": 1}}),
                           ("/v5/position/trading-stop", {**base, "positionIdx": "x", "takeProfit": "1"}),
                           ("/v5/order/create", ["not", "an", "object"])):
            status, out = await post(path, body)
            assert status == 200 and out["retCode"] == 10001, (body, out)
        assert srv.account.positions == {} or all(p.pos == 0 for p in srv.account.positions.values())
    finally:
        await srv.stop()


async def test_control_state_speaks_bybit() -> None:
    srv = SimServer(speed=0, protocol="bybit", slippage=D(0), spread_ticks=0)
    await srv.start()
    ex = bybit_client(ccxt.async_support.bybit, srv.url)
    try:
        await ex.create_order("BTC/USDT:USDT", "market", "buy", 0.01, params={"takeProfit": 65000})
        async with aiohttp.ClientSession() as s, s.get(srv.url + "/sim/v1/state") as r:
            (state,) = (await r.json())["data"]
        assert state["protocol"] == "bybit" and state["prices"]["BTCUSDT"] == "60000"
        (acct,) = state["accounts"]
        (pos,) = acct["positions"]
        assert (pos["symbol"], pos["size"], pos["side"], pos["takeProfit"]) == ("BTCUSDT", "0.01", "Buy", "65000")
        assert acct["balance"]["accountType"] == "UNIFIED"
        assert [a["stopOrderType"] for a in acct["liveAlgos"]] == ["TakeProfit"]
    finally:
        await ex.close()
        await srv.stop()
