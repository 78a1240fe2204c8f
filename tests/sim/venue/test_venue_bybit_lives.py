"""Position lives built from Bybit's executions and closed-PnL records (core/venue/bybit_lives.py),
held to the exchange core's own per-life record of the same trades.

The simulator keeps OKX's positions-history for every life it runs (what its OKX face serves); the
Bybit face of the same core tells the same trades as executions and per-order closed PnL. The
lives rebuilt from the Bybit side must give the same money, to the last digit: gross PnL, fees,
funding, realized PnL, average prices and closed size.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from core.model import Instrument
from core.sim.server import SimServer
from core.venue.bybit_history import backfill
from core.venue.bybit_lives import lives
from tests.helpers.engine_helpers import control
from tests.helpers.sim_ccxt import bybit_sim

BTC = Instrument("BTC/USDT:USDT", "BTCUSDT", D(1), D("0.0001"), D("0.0001"), D("0.1"))
SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SimServer, Any]]:
    async with bybit_sim() as pair:
        yield pair


async def at(srv: SimServer, px: str) -> None:
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": px})


async def test_lives_match_the_exchange_cores_own_records(sim: tuple[SimServer, Any]) -> None:
    srv, ex = sim
    # life 1: long 0.02, funding, partial close, add at a higher price, limit close as maker
    await ex.create_order(SYMBOL, "market", "buy", 0.02)
    await control(srv, "/sim/v1/funding", {"instId": "BTCUSDT", "rate": "0.0003"})
    await at(srv, "61000")
    await ex.create_order(SYMBOL, "market", "sell", 0.01, params={"reduceOnly": True})
    await at(srv, "62000")
    await ex.create_order(SYMBOL, "market", "buy", 0.01)
    await ex.create_order(SYMBOL, "limit", "sell", 0.02, 63000)
    await at(srv, "63000")  # the resting sell fills: life 1 ends
    # life 2 and 3: short, then a flip into a long that is still open with a partial close
    await ex.create_order(SYMBOL, "market", "sell", 0.03)
    await control(srv, "/sim/v1/funding", {"instId": "BTCUSDT", "rate": "-0.0002"})
    await at(srv, "62500")
    await ex.create_order(SYMBOL, "market", "buy", 0.05)  # closes the short, opens long 0.02
    await at(srv, "62700")
    await ex.create_order(SYMBOL, "market", "sell", 0.005, params={"reduceOnly": True})

    now = datetime.now(UTC)
    got = await backfill(ex, {"BTCUSDT": BTC}, now - timedelta(days=1), now + timedelta(minutes=1))
    records = lives(got.fills, got.funding, got.closes)
    core = srv.account.pos_history  # the core's per-life records, oldest first
    ct_val = srv.exchange.specs["BTC-USDT-SWAP"].ct_val
    assert len(records) == len(core) == 3
    for rec, h in zip(records, core, strict=True):
        assert rec.direction == h.direction
        assert rec.pnl == h.pnl and rec.fee == h.fee and rec.funding_fee == h.funding_fee
        assert rec.realized_pnl == h.realized_pnl
        assert rec.closed_contracts == h.close_total_pos * ct_val
        # averages are not money: the core rounds them to 12 decimals, the rebuilt ones are exact
        assert abs(rec.open_avg_price - h.open_avg_px) < D("1e-9")
        assert abs(rec.close_avg_price - h.close_avg_px) < D("1e-9")
        assert rec.close_type == int(h.type)
    assert [r.close_type for r in records] == [2, 2, 1]
    assert records[0].funding_fee == -D("0.02") * 60000 * D("0.0003")  # the long paid
    assert records[1].funding_fee == -D("0.03") * 63000 * D("0.0002")  # a negative rate: shorts pay longs


async def test_hedge_mode_lives_are_per_leg_and_match_the_cores_records(sim: tuple[SimServer, Any]) -> None:
    """Hedge mode: the long and short legs of one symbol, open at once, each with its funding;
    the fills take their orders' legs (the order history) and each leg's lives give the core's
    own per-leg record, to the digit."""
    srv, ex = sim
    await ex.set_position_mode(True, SYMBOL)
    long_, short = {"positionIdx": 1}, {"positionIdx": 2}
    await ex.create_order(SYMBOL, "market", "buy", 0.02, params=long_)
    await ex.create_order(SYMBOL, "market", "sell", 0.03, params=short)
    await control(srv, "/sim/v1/funding", {"instId": "BTCUSDT", "rate": "0.0003"})
    await at(srv, "61000")
    await ex.create_order(SYMBOL, "market", "sell", 0.02, params={**long_, "reduceOnly": True})  # long ends
    await at(srv, "60500")
    await ex.create_order(SYMBOL, "market", "buy", 0.01, params={**short, "reduceOnly": True})  # short partly

    now = datetime.now(UTC)
    got = await backfill(ex, {"BTCUSDT": BTC}, now - timedelta(days=1), now + timedelta(minutes=1), legs={})
    assert [f.pos_side for f in got.fills] == ["long", "short", "long", "short"]
    records = {r.pos_side: r for r in lives(got.fills, got.funding, got.closes)}
    core = {h.pos_side: h for h in srv.account.pos_history}
    assert set(records) == set(core) == {"long", "short"}
    for leg, rec in records.items():
        h = core[leg]
        assert rec.direction == h.direction == leg
        assert rec.pnl == h.pnl and rec.fee == h.fee and rec.funding_fee == h.funding_fee
        assert rec.realized_pnl == h.realized_pnl
    assert records["long"].funding_fee == -D("0.02") * 60000 * D("0.0003")  # the long leg paid
    assert records["short"].funding_fee == D("0.03") * 60000 * D("0.0003")  # the short leg received
    assert records["long"].close_type == 2 and records["short"].close_type == 1
