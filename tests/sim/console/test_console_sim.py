"""The console against the real, simulator-backed engine: keys in, exchange state and journal out.

An outside ccxt client opens positions behind the engine's back (as a second app would); the
console then partially closes, closes and closes all from the keyboard. On both faces of the
simulator (OKX v5, and Bybit v5 through the native bybit venue).
"""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from console.app import build_app
from tests.helpers.console_helpers import screen_text
from tests.helpers.engine_helpers import BTC, BTC_ID, ETH, VENUES, Rig, exchange_position, wait_for
from tests.helpers.pilot import notes


@pytest.mark.parametrize("venue", VENUES)
async def test_keys_close_positions_on_the_simulator(rig: Rig) -> None:
    engine = await rig.start_engine()
    app = build_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await rig.outside("buy", 40)

        def shown(n: int) -> bool:
            app.flush_now()
            return app.positions.row_count == n

        await wait_for(lambda: shown(1), what="the outside position in the pane")
        await pilot.pause()
        assert "BTC/USDT" in screen_text(app) and "long" in screen_text(app)

        await pilot.press("p", *"50%", "enter", "y")
        await app.workers.wait_for_complete()

        async def at(contracts: str, inst: str = BTC_ID) -> bool:
            return await exchange_position(rig, inst) == rig.ct(contracts, BTC if inst == BTC_ID else ETH)

        await wait_for(lambda: at("20"), what="half closed on the exchange")
        said = "closing 0.2 BTC of" if rig.bybit else "closing 20 contracts (0.2 BTC) of"  # Bybit: coins
        assert any(said in note for note in notes(app)), notes(app)

        await pilot.press("c", "y")
        await app.workers.wait_for_complete()
        await wait_for(lambda: at("0"), what="closed on the exchange")
        await wait_for(lambda: shown(0), what="row gone")

        await rig.outside("sell", 10)
        await rig.outside("buy", 5, ETH)
        await wait_for(lambda: shown(2), what="two positions shown")
        await pilot.press("X", "y")
        await app.workers.wait_for_complete()
        await wait_for(lambda: at("0"), what="BTC flat")
        await wait_for(lambda: at("0", "ETH-USDT-SWAP"), what="ETH flat")
        await wait_for(lambda: shown(0), what="panes empty")

    trades = await rig.wait_trades(4)
    manual = [(t["symbol"], t["reason"], t["size_after"]) for t in trades]
    assert manual[:2] == [(BTC, "manual", D("0.2")), (BTC, "manual", D("0"))]
    assert {(s, r) for s, r, _ in manual[2:]} == {(BTC, "manual"), (ETH, "manual")}
