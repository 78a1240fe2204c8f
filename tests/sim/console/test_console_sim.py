"""The console against the real, simulator-backed engine: keys in, exchange state and journal out.

An outside ccxt client opens positions behind the engine's back (as a second app would); the
console then partially closes, closes and closes all from the keyboard. On both faces of the
simulator (OKX v5, and Bybit v5 through the native bybit venue).
"""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from console.app import build_app
from tests.helpers.console_helpers import SIZE, screen_text
from tests.helpers.engine_helpers import BTC, ETH, VENUES, Rig, wait_position
from tests.helpers.pilot import notes, rows_shown


@pytest.mark.parametrize("venue", VENUES)
async def test_keys_close_positions_on_the_simulator(rig: Rig) -> None:
    engine = await rig.start_engine()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await rig.outside("buy", 40)

        await rows_shown(app, 1, "the outside position in the pane")
        await pilot.pause()
        assert "BTC/USDT" in screen_text(app) and "long" in screen_text(app)

        await pilot.press("p", *"50%", "enter", "y")
        await app.workers.wait_for_complete()

        await wait_position(rig, "20", what="half closed on the exchange")
        said = "closing 0.2 BTC of" if rig.bybit else "closing 20 contracts (0.2 BTC) of"  # Bybit: coins
        assert any(said in note for note in notes(app)), notes(app)

        await pilot.press("c", "y")
        await app.workers.wait_for_complete()
        await wait_position(rig, "0", what="closed on the exchange")
        await rows_shown(app, 0, "row gone")

        await rig.outside("sell", 10)
        await rig.outside("buy", 5, ETH)
        await rows_shown(app, 2, "two positions shown")
        await pilot.press("X", "y")
        await app.workers.wait_for_complete()
        await wait_position(rig, "0", what="BTC flat")
        await wait_position(rig, "0", "ETH-USDT-SWAP", what="ETH flat")
        await rows_shown(app, 0, "panes empty")

    trades = await rig.wait_trades(4)
    manual = [(t["symbol"], t["reason"], t["size_after"]) for t in trades]
    assert manual[:2] == [(BTC, "manual", D("0.2")), (BTC, "manual", D("0"))]
    assert {(s, r) for s, r, _ in manual[2:]} == {(BTC, "manual"), (ETH, "manual")}
