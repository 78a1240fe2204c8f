"""The trading-control keys against the real, simulator-backed engine (issue 14 items 4 and 5):
`s` pauses and resumes, `T` moves a stop to break-even and the exchange's algo shows it (and it
fires there), `K` with the typed word leaves the exchange flat with nothing resting, halts, rings
the bell and shows HALTED on the risk line. Checked on the EXCHANGE (GET /sim/v1/state), never
only on the console's own view.
"""
from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from console.app import build_app
from console.screens.confirm import ConfirmScreen
from console.screens.kill import KillScreen
from console.screens.tpsl import TpSlScreen
from core.events import TradingState
from tests.helpers.console_helpers import SIZE, screen_text
from tests.helpers.engine_helpers import (
    BTC,
    ETH,
    VENUES,
    Rig,
    exchange_position,
    flat_and_nothing_resting,
    set_price,
    sim_state,
    wait_for,
)
from tests.helpers.pilot import rows_shown, settle

pytestmark = [pytest.mark.timeout(120), pytest.mark.parametrize("venue", VENUES)]


async def algos(rig: Rig) -> list[dict[str, Any]]:
    return list((await sim_state(rig.srv))["liveAlgos"])


async def tp_sl_on_exchange(rig: Rig) -> tuple[D, D]:
    """(take-profit, stop-loss) triggers of the one position's TP/SL at the exchange: OKX, one
    algo with both; Bybit, a TakeProfit and a StopLoss conditional order."""
    live = await algos(rig)
    if rig.bybit:
        kinds = {a["stopOrderType"]: D(a["triggerPrice"]) for a in live}
        assert len(live) == 2, live
        return kinds["TakeProfit"], kinds["StopLoss"]
    (algo,) = live
    return D(algo["tpTriggerPx"]), D(algo["slTriggerPx"])


async def test_s_t_and_k_on_the_exchange(rig: Rig) -> None:
    engine = await rig.start_engine()
    await rig.outside("buy", 10)  # entry 60000 (speed 0, no spread)
    await set_price(rig.srv, "60200")
    await wait_for(lambda: engine.mark(BTC) == D("60200"), what="mark 60200 at the engine")
    app = build_app(engine)
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await rows_shown(app, 1, "the position on screen")

        # s: pause, then resume, straight through the engine
        await pilot.press("s")
        await settle(app, pilot)
        assert engine.trading_state is TradingState.PAUSED
        await pilot.press("s")
        await settle(app, pilot)
        assert engine.trading_state is TradingState.RUNNING

        # T: take profit 61000, stop to break-even (the entry, 60000), confirmed
        await pilot.press("T")
        assert isinstance(app.screen, TpSlScreen)
        await pilot.press(*"61000", "ctrl+t", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        assert "break-even" in screen_text(app)
        await pilot.press("y")
        await settle(app, pilot)
        assert await tp_sl_on_exchange(rig) == (D("61000"), D("60000"))
        await set_price(rig.srv, "59990")  # the stop fires at the exchange, at break-even

        async def flat() -> bool:
            return await exchange_position(rig) == 0
        await wait_for(flat, what="stopped out at break-even")

        # K: typed KILL -> flat, nothing resting, halted, bell, HALTED on the risk line
        await rig.outside("sell", 5, ETH)
        await rig.ext.create_order(BTC, "limit", "buy", rig.amt(1), 50000)

        def two() -> bool:
            app.flush_now()
            return app.positions.row_count == 1 and len(app.open_orders) == 1
        await wait_for(two, what="the ETH short and a resting order on screen")
        await pilot.press("K")
        assert isinstance(app.screen, KillScreen)
        await pilot.press(*"KILL", "enter")
        await settle(app, pilot)

        await wait_for(lambda: flat_and_nothing_resting(rig), what="the exchange flat with nothing resting")
        assert engine.trading_state is TradingState.HALTED

        async def halted_on_screen() -> bool:
            app.flush_now()
            await pilot.pause()
            return "HALTED" in screen_text(app) and rings != []
        await wait_for(halted_on_screen, what="HALTED on the risk line and the bell")

        # s now asks before resuming
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        assert "Resume trading after a halt?" in screen_text(app)
        await pilot.press("y")
        await settle(app, pilot)
        assert engine.trading_state is TradingState.RUNNING


async def test_k_dialog_counts_the_algos_the_kill_will_cancel(rig: Rig) -> None:
    engine = await rig.start_engine()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        # a position with an attached TP/SL (one algo), another app's trigger (one more), a
        # resting order: the console knows the order, not the algos
        await rig.ext.create_order(BTC, "market", "buy", rig.amt(2), None, {
            "takeProfit": {"triggerPrice": "66000"}, "stopLoss": {"triggerPrice": "54000"}})
        if rig.bybit:  # a conditional market buy, Bybit's trigger order
            await rig.ext.create_order(ETH, "market", "buy", rig.amt(1, ETH), None,
                                       {"triggerPrice": "3500", "triggerDirection": "ascending"})
        else:
            await rig.ext.private_post_trade_order_algo({
                "instId": "ETH-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "trigger",
                "sz": "1", "triggerPx": "3500", "orderPx": "-1"})
        await rig.ext.create_order(BTC, "limit", "buy", rig.amt(1), 50000)
        # OKX: the attached TP+SL is one algo; Bybit: a TakeProfit and a StopLoss order
        triggers = 3 if rig.bybit else 2
        state = await sim_state(rig.srv)
        assert len(state["liveAlgos"]) == triggers and len(state["openOrders"]) == 1

        def shown() -> bool:
            app.flush_now()
            return app.positions.row_count == 1 and len(app.open_orders) == 1
        await wait_for(shown, what="the position and the resting order on screen")
        await pilot.press("K")
        assert isinstance(app.screen, KillScreen)

        async def counted() -> bool:
            await pilot.pause()
            return (f"on the exchange: 1 open order(s), {triggers} TP/SL or trigger order(s)"
                    in screen_text(app))
        await wait_for(counted, timeout=5, what="the exchange's orders and algos counted in the dialog")
        await pilot.press(*"KILL", "enter")
        await settle(app, pilot)

        await wait_for(lambda: flat_and_nothing_resting(rig), what="the exchange flat with nothing resting")
