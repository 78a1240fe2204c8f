"""The engine, journal and the native bybit venue on the simulator's Bybit face, end to end.

The same checks as the OKX engine tests of closes and funding, on Bybit's books: every execution
journaled once by execId, fees from execFee, the funding row from the Funding execution, close
rows adding up to the life rebuilt from Bybit's per-order closed PnL, and a restart that finds
nothing new to write (the backfill after a stop is idempotent).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import ccxt.async_support
import pytest
from loguru import logger

from core.engine import Engine
from core.events import PlaceOrder
from core.journal import Journal, read_fills, read_funding, read_trades
from core.model import OrderSide
from core.reconcile.compare import reconcile_with_venue
from core.service.runner import build_stack
from core.settings.config import ExchangeSettings, JournalSettings, Settings, SimSettings
from core.sim.ccxt_client import bybit_client
from core.sim.server import SimServer
from core.venue.bybit import BybitVenue
from tests.helpers.engine_helpers import control, wait_for

BTC = "BTC/USDT:USDT"


class Creds:
    api_key = "perpdesk-demo"
    secret = "perpdesk-demo-secret"


class Stack:
    def __init__(self, srv: SimServer, journal_dir: Path) -> None:
        self.srv = srv
        self.journal_dir = journal_dir
        self.engine: Engine | None = None
        self.journal: Journal | None = None
        self.venue: BybitVenue | None = None

    async def start(self) -> Engine:
        self.venue = BybitVenue(ExchangeSettings(venue="bybit", url=self.srv.url, symbols=(BTC,)), Creds())
        await self.venue.connect()
        self.journal = Journal(self.journal_dir)
        self.engine = Engine(self.venue, self.journal)
        await self.engine.start()
        return self.engine

    async def stop(self) -> None:
        if self.engine is not None:
            await self.engine.stop()
        if self.journal is not None:
            await self.journal.close()
        self.engine = self.journal = None

    async def rows(self, reader: Any, n: int) -> list[dict[str, Any]]:
        async def have() -> bool:
            assert self.journal is not None
            await self.journal.flush()
            return len(reader(self.journal_dir)) >= n
        await wait_for(have, 15, f"{n} rows of {reader.__name__}")
        return list(reader(self.journal_dir))


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    srv = SimServer(speed=0, protocol="bybit", slippage=D(0), spread_ticks=0)
    await srv.start()
    st = Stack(srv, tmp_path / "journal")
    try:
        yield st
    finally:
        await st.stop()
        await srv.stop()


async def test_trade_funding_tp_close_and_restart(stack: Stack) -> None:
    said: list[str] = []
    handler = logger.add(lambda m: said.append(str(m)), level="INFO")
    try:
        await _scenario(stack)
    finally:
        logger.remove(handler)
    # the close row was confirmed against the life rebuilt from Bybit's closed PnL, not given up on
    assert not [m for m in said if "UNCONFIRMED" in m], said


async def _scenario(stack: Stack) -> None:
    engine = await stack.start()
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("0.02"), take_profit=D("62000")))
    assert res.ok, res
    await stack.rows(read_fills, 1)
    await control(stack.srv, "/sim/v1/funding", {"instId": "BTCUSDT", "rate": "0.0001"})
    (fund,) = await stack.rows(read_funding, 1)
    assert D(fund["amount"]) == -D("0.02") * 60000 * D("0.0001")
    await control(stack.srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "62000"})
    (close,) = await stack.rows(read_trades, 1)
    assert close["reason"] == "tp" and close["size_closed"] == D("0.02")
    assert close["gross_pnl"] == D("0.02") * 2000
    assert close["fee"] == D("0.02") * 60000 * D("0.0005") + D("0.02") * 62000 * D("0.0005")
    assert close["funding"] == D(fund["amount"])
    assert close["net_pnl"] == close["gross_pnl"] - close["fee"] + close["funding"]
    assert stack.venue is not None
    (life,) = await stack.venue.fetch_positions_history(None)
    assert close["net_pnl"] == life.realized_pnl
    fills = read_fills(stack.journal_dir)
    assert len(fills) == 2 and Counter(f["fill_id"] for f in fills).most_common(1)[0][1] == 1
    exchange_ids = {f.fill_id for f in await stack.venue.fetch_fills(None)}
    assert {f["fill_id"] for f in fills} == exchange_ids

    # a restart backfills what it missed and writes nothing twice
    await stack.stop()
    await stack.start()
    assert stack.engine is not None
    assert await stack.engine.settle()
    assert stack.journal is not None
    await stack.journal.flush()
    assert (len(read_fills(stack.journal_dir)), len(read_trades(stack.journal_dir)),
            len(read_funding(stack.journal_dir))) == (2, 1, 1)

    # perpdesk reconcile's comparison of the journal with Bybit's books: clean, and not empty
    report = await reconcile_with_venue(stack.venue, stack.journal_dir, settle=stack.engine.settle)
    assert report.ok, [r for r in report.rows if not r.ok]
    assert {r.field for r in report.rows} >= {"closed contracts", "net pnl", "fee", "funding sum", "fills"}


async def test_embedded_simulator_with_the_bybit_face(tmp_path: Path) -> None:
    """venue "sim" with [sim] protocol = "bybit": the runner starts the simulator's Bybit face and
    trades on it through the bybit venue with the demo account, as it does with OKX's by default."""
    settings = Settings(exchange=ExchangeSettings(venue="sim", symbols=(BTC,)),
                        sim=replace(SimSettings(), speed=0, protocol="bybit"),
                        journal=JournalSettings(dir=tmp_path / "journal"))
    async with build_stack(settings) as st:
        assert isinstance(st.venue, BybitVenue) and st.sim is not None
        assert st.sim.protocol == "bybit"  # type: ignore[attr-defined]
        res = await st.engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("0.01")))
        assert res.ok, res

        async def journaled() -> bool:
            await st.journal.flush()
            return len(read_fills(tmp_path / "journal")) == 1
        await wait_for(journaled, 15, "the fill")
    (fill,) = read_fills(tmp_path / "journal")
    assert D(fill["contracts"]) == D("0.01") and D(fill["contract_size"]) == 1
    assert (tmp_path / "journal" / "sim-state.json").exists()


async def test_fills_made_while_the_streams_are_down_are_journaled_once(stack: Stack) -> None:
    """Every stream dropped, and another client trades before they are back: the engine's resync
    (the execution list) journals what it missed, and nothing twice."""
    engine = await stack.start()
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("0.02")))).ok
    await stack.rows(read_fills, 1)
    ext = bybit_client(ccxt.async_support.bybit, stack.srv.url)
    try:
        await control(stack.srv, "/sim/v1/drop", {})
        await ext.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
        await ext.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
    finally:
        await ext.close()
    trades = await stack.rows(read_trades, 2)
    assert await engine.settle()
    assert stack.journal is not None
    await stack.journal.flush()
    fills = read_fills(stack.journal_dir)
    assert len(fills) == 3 and len({f["fill_id"] for f in fills}) == 3
    assert len(read_trades(stack.journal_dir)) == 2 and trades[-1]["size_after"] == 0


async def test_liquidation_close_rows_add_up_to_the_wallet(stack: Stack) -> None:
    """A partial takeover with its liquidation fee, then the rest: the close rows (reason
    liquidation) carry the fee in their fee and add up to what the wallet lost."""
    engine = await stack.start()
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1.6")))).ok
    await stack.rows(read_fills, 1)
    await control(stack.srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "53990"})
    await control(stack.srv, "/sim/v1/price", {"instId": "BTCUSDT", "px": "53000"})
    trades = await stack.rows(read_trades, 2)
    assert await engine.settle()
    assert [r["reason"] for r in trades] == ["liquidation", "liquidation"] and trades[-1]["size_after"] == 0
    assert stack.venue is not None
    wallet = (await stack.venue.fetch_balance()).equity
    assert sum((r["net_pnl"] for r in read_trades(stack.journal_dir)), D(0)) == wallet - D(10000)
    (life,) = await stack.venue.fetch_positions_history(None)
    assert life.close_type == 3 and life.realized_pnl == wallet - D(10000)
