"""The session's first dialog is prepared at idle after the first paint (console/screens/warm.py):
the first `c` finds the confirmation composed and installed, as the second does."""
from __future__ import annotations

from textual.widgets import Label

from console.app import build_app
from console.screens.confirm import ConfirmScreen
from tests.helpers.console_helpers import BTC, ETH, FakeEngine, painted, snapshot
from tests.helpers.pilot import settle

SIZE = (160, 50)


async def test_the_first_c_finds_its_dialog_composed_and_the_main_screen_stays_on_top() -> None:
    engine = FakeEngine([snapshot(BTC), snapshot(ETH)])
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await painted(app, pilot, "Positions")
        await settle(app, pilot)
        # before any key: the main screen alone on the stack, the dialog ready behind it
        assert len(app.screen_stack) == 1 and not isinstance(app.screen, ConfirmScreen)
        assert app.is_screen_installed("confirm")
        kept = app.get_screen("confirm")
        assert isinstance(kept, ConfirmScreen)
        assert kept.query_one("#confirm-title", Label) is not None  # composed already
        await pilot.press("c")
        assert app.screen is kept  # the first `c` shows the prepared screen, with its question
        assert "Close" in str(kept.query_one("#confirm-title", Label).render())
        await pilot.press("n")
        await settle(app, pilot)
        assert len(app.screen_stack) == 1
    assert engine.commands == []
