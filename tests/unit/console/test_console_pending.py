"""The console paints before the engine is up (console/pending.py): the header says
"connecting", keys that need the engine say "not connected yet" and send nothing, and once the
real engine is attached its positions show and the same keys work."""
from __future__ import annotations

from console.app import build_app
from console.pending import PendingEngine
from console.screens.confirm import ConfirmScreen
from core.events import ClosePosition
from core.model import PositionSide
from tests.helpers.console_helpers import BTC, SIZE, FakeEngine, life, painted, screen_text, snapshot
from tests.helpers.pilot import notes


async def test_keys_before_the_engine_is_up_say_so_and_send_nothing() -> None:
    app = build_app(PendingEngine())
    async with app.run_test(size=SIZE) as pilot:
        await painted(app, pilot, "connecting")
        assert "Positions" in screen_text(app)
        for key in ("c", "p", "X", "o", "r", "h"):  # close, partial, all, order, reconcile, history
            await pilot.press(key)
            await pilot.pause()
            assert len(app.screen_stack) == 1, f"{key} opened {app.screen}"
        # each key says it, one plain line (repeats within seconds are one), and nothing else is said
        assert set(notes(app)) == {"not connected yet: the exchange connection is still starting"}
        assert not app.connected


async def test_attach_shows_the_engine_and_the_keys_work() -> None:
    engine = FakeEngine([snapshot(BTC, PositionSide.LONG, "10")])
    app = build_app(PendingEngine())
    async with app.run_test(size=SIZE) as pilot:
        await painted(app, pilot, "connecting")
        app.attach(engine)
        assert app.connected
        await painted(app, pilot, "BTC/USDT:USDT")
        assert "connecting" not in screen_text(app).splitlines()[0]
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert engine.commands == [ClosePosition(BTC, "net", None, life(BTC))]
