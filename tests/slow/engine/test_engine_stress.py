"""A busy market for a few seconds: the demo scalper trading with exchange-side TP/SL, an outside
client trading on the same account, funding settling, and every WebSocket dropped again and again.
Afterwards the journal must reconcile with the exchange position by position, with no fill twice.
On both faces of the embedded simulator (`[sim] protocol`: OKX v5, or Bybit v5 through the
native bybit venue)."""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from core.events import CloseAll
from core.journal import read_fills, read_funding, read_trades
from core.service.runner import build_stack
from core.settings.config import ExchangeSettings, JournalSettings, Settings, SimSettings, StrategySettings
from tests.helpers.engine_helpers import VENUES, Rig, control, outside_client, wait_for

pytestmark = pytest.mark.timeout(120)
SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")


@pytest.mark.parametrize("venue", VENUES)
async def test_busy_market_with_drops_reconciles(tmp_path: Path, venue: str) -> None:
    seed = 11
    settings = Settings(
        exchange=ExchangeSettings(venue="sim", symbols=SYMBOLS),
        sim=SimSettings(speed=60, seed=seed, funding_interval_s=120, protocol=venue),
        journal=JournalSettings(dir=tmp_path / "journal"),
        strategy=StrategySettings(name="demo_scalper", params=dict(
            interval_s=0.2, max_positions=3, partial_chance=0.3, seed=seed, notional=1500,
            tp_pct=0.002, sl_pct=0.002)),
        config_path=tmp_path / "config.toml")
    rng = random.Random(seed)
    async with build_stack(settings) as stack:
        assert stack.sim is not None and stack.strategy is not None
        ext = outside_client(stack.sim)  # type: ignore[arg-type]
        rig = Rig(srv=stack.sim, ext=ext, journal_dir=settings.journal.dir)  # type: ignore[arg-type]
        try:
            await ext.load_markets()
            loop = asyncio.get_running_loop()
            end = loop.time() + 12
            drops = 0
            while loop.time() < end:
                await asyncio.sleep(rng.uniform(0.3, 1.2))
                x = rng.random()
                if x < 0.35:
                    await control(stack.sim, "/sim/v1/drop", {})  # type: ignore[arg-type]
                    drops += 1
                elif x < 0.6:
                    symbol = rng.choice(SYMBOLS[:2])
                    await ext.create_order(symbol, "market", rng.choice(["buy", "sell"]), rig.amt(1, symbol))
                elif x < 0.75:
                    await control(stack.sim, "/sim/v1/funding",  # type: ignore[arg-type]
                                  {"instId": rng.choice(["BTC-USDT-SWAP", "ETH-USDT-SWAP",
                                                         "SOL-USDT-SWAP"]), "rate": "0.0003"})
            assert drops >= 2
            await stack.strategy.stop()  # the strategy stops sending; the engine goes on
            # Freeze the market, then close from a view that agrees with the exchange: a TP/SL
            # firing between the engine's view and the close order fails the close with
            # "position does not exist" (51023), and a loaded machine widens that window.
            await stack.sim.pause()

            async def engine_matches_exchange() -> bool:
                theirs = {(p["symbol"], p["side"], Decimal(str(p["contracts"])))
                          for p in await ext.fetch_positions() if p["contracts"]}
                ours = {(p.symbol, p.side.value, p.contracts) for p in stack.engine.positions()}
                return ours == theirs

            await wait_for(engine_matches_exchange, 15, "the engine's positions to match the exchange's")
            result = await stack.engine.submit(CloseAll())
            assert result.ok, result
            await wait_for(lambda: stack.engine.positions() == [], 15, "flat")
            assert await stack.engine.settle(20)
            report = await stack.engine.reconcile()
            assert report.ok, "\n".join(report.lines())
            exchange_ids = set()
            resp = {"data": []} if rig.bybit else await ext.private_get_trade_fills_history(
                {"instType": "SWAP", "limit": "100"})
            if rig.bybit:
                exchange_ids = set(await rig.exchange_fill_ids())
            after = None
            while not rig.bybit:
                exchange_ids |= {f["tradeId"] for f in resp["data"]}
                if len(resp["data"]) < 100:
                    break
                after = resp["data"][-1]["billId"]
                resp = await ext.private_get_trade_fills_history(
                    {"instType": "SWAP", "limit": "100", "after": after})
        finally:
            await ext.close()
    fills = read_fills(settings.journal.dir)
    ids = Counter(f["fill_id"] for f in fills)
    assert max(ids.values()) == 1 and set(ids) == exchange_ids
    trades = read_trades(settings.journal.dir)
    reasons = Counter(r["reason"] for r in trades)
    assert reasons["strategy"] and reasons["tp"] + reasons["sl"] and reasons["manual"]
    funding = read_funding(settings.journal.dir)
    assert funding and all(f["position_id"] for f in funding)
    bill_ids = Counter(f["bill_id"] for f in funding)
    assert max(bill_ids.values()) == 1
