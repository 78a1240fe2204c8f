"""Backfill of a Bybit account (core/venue/bybit_history.py) on the simulator's Bybit face.

The account's history spans 25 days, more than Bybit's 7-day request window, and the page size is
forced down to 2 rows so every window pages: the backfill must return every execution (trades and
funding) exactly once and every closing order's closed-PnL record, where one plain request cannot.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from ccxt.base.errors import BadRequest

from core.model import Instrument
from core.sim.server import SimServer
from core.venue.bybit_history import backfill, windows
from tests.helpers.engine_helpers import control
from tests.helpers.sim_ccxt import bybit_sim

BTC = Instrument("BTC/USDT:USDT", "BTCUSDT", D(1), D("0.0001"), D("0.0001"), D("0.1"))
DAY_MS = 24 * 3600 * 1000


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SimServer, Any]]:
    async with bybit_sim() as pair:
        yield pair


def backdate(srv: SimServer, fills_from: int, bills_from: int, days: int) -> None:
    """Move the account's records from these indices ``days`` into the past (a history the
    simulator would have built had it run for weeks)."""
    acct = srv.account
    shift = days * DAY_MS
    for f in acct.fills[fills_from:]:
        f.ts -= shift
    for b in acct.bills[bills_from:]:
        b.ts -= shift
    for o in acct.orders.values():
        if any(f.ord_id == o.ord_id for f in acct.fills[fills_from:]):
            o.c_time -= shift
            o.u_time -= shift


async def round_trip(srv: SimServer, ex: Any, px_out: str) -> None:
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "60000"})
    await ex.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
    await control(srv, "/sim/v1/funding", {"instId": "BTCUSDT", "rate": "0.0001"})
    await control(srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": px_out})
    await ex.create_order("BTC/USDT:USDT", "market", "sell", 0.01, params={"reduceOnly": True})


def test_windows_cover_without_overlap() -> None:
    w = windows(0, 20 * DAY_MS)
    assert w[0][0] == 0 and w[-1][1] == 20 * DAY_MS and len(w) == 3
    assert all(b[0] == a[1] + 1 and a[1] - a[0] <= 7 * DAY_MS for a, b in zip(w, w[1:], strict=False))


async def test_backfill_walks_every_window_and_page(sim: tuple[SimServer, Any]) -> None:
    srv, ex = sim
    await round_trip(srv, ex, "61000")
    backdate(srv, 0, 0, 20)
    marks = (len(srv.account.fills), len(srv.account.bills))
    await round_trip(srv, ex, "59000")
    backdate(srv, *marks, 10)
    await round_trip(srv, ex, "60500")
    now = datetime.now(UTC)

    # one plain request cannot: Bybit refuses a span over 7 days, and by default answers 7 days
    with pytest.raises(BadRequest):
        await ex.privateGetV5ExecutionList({"category": "linear", "startTime": int((now - timedelta(days=25))
                                            .timestamp() * 1000), "endTime": int(now.timestamp() * 1000)})
    recent = (await ex.privateGetV5ExecutionList({"category": "linear"}))["result"]["list"]
    assert len(recent) == 3  # the last round trip only: 2 trades and 1 funding

    got = await backfill(ex, {"BTCUSDT": BTC}, now - timedelta(days=25), now, page=2)
    assert len(got.fills) == 6 and len({f.fill_id for f in got.fills}) == 6
    assert len(got.funding) == 3 and all(b.amount == -D("0.01") * 60000 * D("0.0001") for b in got.funding)
    assert [c.closed_pnl + (c.open_fee or 0) + (c.close_fee or 0) for c in got.closes] == [
        D("0.01") * 1000, D("0.01") * -1000, D("0.01") * 500]  # gross PnL of each close, oldest first
    # the books add up to the wallet: closes (fees in) plus funding
    wallet = (await ex.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"}))["result"]["list"][0]
    total = sum((c.closed_pnl for c in got.closes), D(0)) + sum((b.amount for b in got.funding), D(0))
    assert D(wallet["coin"][0]["walletBalance"]) == D(10000) + total
    assert got.skipped == 0
