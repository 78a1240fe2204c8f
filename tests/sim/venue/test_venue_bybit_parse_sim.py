"""The Bybit parsers on what a running simulator sends."""
from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import pytest

from core.model import Origin
from core.sim.server import SimServer
from core.venue import bybit_parse as bp
from tests.helpers.bybit_parse import BTC
from tests.helpers.engine_helpers import control
from tests.helpers.sim_ccxt import bybit_sim


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SimServer, Any]]:
    async with bybit_sim() as pair:
        yield pair


async def test_executions_funding_and_closes_from_the_simulator(sim: tuple[SimServer, Any]) -> None:
    """The books a journal would write from Bybit's own fields: every execution once by execId,
    fees from execFee, funding from Funding executions, closes from closed-pnl; they add up to
    what the wallet moved."""
    srv, ex = sim
    await ex.create_order("BTC/USDT:USDT", "market", "buy", 0.02, params={"takeProfit": 62000})
    await control(srv, "/sim/v1/funding", {"instId": "BTCUSDT", "rate": "0.0002"})
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "62000"})  # the TP closes it all
    raw = await ex.privateGetV5ExecutionList({"category": "linear", "symbol": "BTCUSDT"})
    items = raw["result"]["list"]
    fills = [bp.parse_execution(i, BTC) for i in items if bp.is_trade(i)]
    funding = [bp.parse_funding_execution(i, BTC) for i in items if bp.is_funding(i)]
    assert len({f.fill_id for f in fills}) == len(fills) == 2
    assert [f.origin for f in sorted(fills, key=lambda f: f.ts)] in ([Origin.EXTERNAL, Origin.TP],)
    assert len(funding) == 1 and funding[0].amount == -D("0.02") * 60000 * D("0.0002")
    closes = [bp.parse_closed_pnl(i, BTC) for i in
              (await ex.privateGetV5PositionClosedPnl({"category": "linear"}))["result"]["list"]]
    assert len(closes) == 1 and closes[0].closed_coins == D("0.02")
    gross = sum((f.fill_pnl or D(0) for f in fills), D(0))
    assert closes[0].closed_pnl == gross - sum((f.fee for f in fills), D(0))  # both fees: open and close
    wallet = await ex.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"})
    snap = bp.parse_wallet(wallet["result"]["list"][0], "USDT", wallet["time"])
    assert snap is not None and snap.equity == D(10000) + closes[0].closed_pnl + funding[0].amount
    pos = (await ex.privateGetV5PositionList({"category": "linear", "symbol": "BTCUSDT"}))["result"]["list"]
    assert bp.parse_position(pos[0], BTC).contracts == 0
