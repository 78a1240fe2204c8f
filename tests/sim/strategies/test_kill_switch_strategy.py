"""The kill switch while a strategy keeps trading: it stops the strategy first, then cancels and
closes whatever exists at that moment and re-reads until flat; from the console, `K`, the word
KILL and Enter send it at once however the positions moved under the dialog. On the simulator,
through the real engine, strategy host and console; the exchange's state is the judge. On both
faces of the simulator (OKX v5, and Bybit v5 through the native bybit venue: its TP/SL are
conditional orders the kill cancels one by one)."""
from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

import pytest

from console.app import build_app
from console.screens.kill import KillScreen
from core.events import KillSwitch, PlaceOrder, RiskStatus, TradingState
from core.model import OrderSide, OrderType
from core.strategies.base import Context, Strategy
from core.strategies.host import StrategyHost
from tests.helpers.console_helpers import SIZE, screen_text
from tests.helpers.engine_helpers import BTC, ETH, VENUES, Rig, flat_and_nothing_resting, wait_for
from tests.helpers.pilot import rows_shown

pytestmark = [pytest.mark.timeout(120), pytest.mark.parametrize("venue", VENUES)]


class Opener(Strategy):
    """Opens more every tick: a BTC buy with TP/SL, an ETH sell, and a resting BTC limit buy."""

    name = "opener"
    tick_s = 0.1

    def __init__(self, rig: Rig) -> None:
        self.sent = 0  # commands the strategy tried to send
        self.placed = 0
        self.btc, self.eth = rig.ct(1, BTC), rig.ct(1, ETH)  # one contract each, as the venue counts

    async def on_tick(self, ctx: Context) -> None:
        orders = [PlaceOrder(BTC, OrderSide.BUY, self.btc, take_profit=D("66000"), stop_loss=D("54000")),
                  PlaceOrder(ETH, OrderSide.SELL, self.eth),
                  PlaceOrder(BTC, OrderSide.BUY, self.btc, OrderType.LIMIT, D("50000"))]
        self.sent += len(orders)
        results = await asyncio.gather(*(ctx.submit(o) for o in orders))
        self.placed += sum(r.ok for r in results)


async def start_opener(rig: Rig) -> tuple[Any, StrategyHost, Opener]:
    engine = await rig.start_engine()
    strategy = Opener(rig)
    host = StrategyHost(strategy, engine)
    await host.start()
    await wait_for(lambda: len(engine.positions()) == 2 and strategy.placed >= 9, what="strategy trading")
    return engine, host, strategy


async def test_kill_stops_the_strategy_first_and_leaves_the_exchange_flat(rig: Rig) -> None:
    engine, host, strategy = await start_opener(rig)
    try:
        res = await engine.submit(KillSwitch())
        assert res.ok, res
        assert not host.running
        assert engine.trading_state is TradingState.HALTED
        assert await flat_and_nothing_resting(rig)
        tried = strategy.sent
        await asyncio.sleep(1.0)  # ten ticks later: the strategy sent nothing more, nothing reopened
        assert strategy.sent == tried
        assert await flat_and_nothing_resting(rig)
        status = engine.risk_status()
        assert status.strategy == "opener" and not status.strategy_running
    finally:
        await host.stop()


async def test_console_kill_goes_through_while_a_strategy_keeps_opening(rig: Rig) -> None:
    engine, host, strategy = await start_opener(rig)
    app = build_app(engine)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await rows_shown(app, 2, "the positions on screen")
            await pilot.press("K")
            assert isinstance(app.screen, KillScreen)
            await pilot.press(*"KILL")
            before = strategy.placed
            await wait_for(lambda: strategy.placed >= before + 6, what="the strategy trading on")
            await pilot.press("enter")  # the first Enter sends it: the position moved, no matter
            await wait_for(lambda: engine.trading_state is TradingState.HALTED, timeout=5,
                           what="the kill switch sent on the first Enter")
            assert not isinstance(app.screen, KillScreen)
            assert "changed since it was shown" not in screen_text(app)
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert not host.running
            assert await flat_and_nothing_resting(rig)
            await asyncio.sleep(1.0)
            assert await flat_and_nothing_resting(rig)
            assert any(isinstance(e, RiskStatus) and not e.strategy_running for e in rig.events)
    finally:
        await host.stop()
