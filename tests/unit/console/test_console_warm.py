"""The session's first dialog is prepared at idle after the first paint (console/screens/warm.py):
the first `c` finds the confirmation composed, installed, laid out and rendered, and its update
timer started, as the second does."""
from __future__ import annotations

import time

import pytest
from textual.widgets import Label

from console.app import build_app
from console.screens.confirm import ConfirmScreen
from tests.helpers.console_helpers import BTC, ETH, FakeEngine, painted, snapshot
from tests.helpers.pilot import ScreenWork, settle, timer_sleeps

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



async def test_the_first_c_lays_out_renders_and_styles_no_more_than_a_later_one() -> None:
    """Up to the dialog's first paint, the first showing used to render the whole dialog screen
    (nothing of it rendered before: all of it dirty) where a later showing renders the changed
    lines. The later `c` here follows another question (close all), so that its texts change
    size as the first one's do (from the empty texts it was prepared with)."""
    app = build_app(FakeEngine([snapshot(BTC), snapshot(ETH)]))
    async with app.run_test(size=SIZE) as pilot:
        await painted(app, pilot, "Positions")
        await settle(app, pilot)
        work = ScreenWork(app.get_screen("confirm"))
        counts = []
        for keys in (("c",), ("X", "c")):
            for key in keys:
                work.take()
                work.on = True
                await pilot.press(key)
                await settle(app, pilot)
                work.on = False
                await pilot.press("n")
                await settle(app, pilot)
            counts.append(work.take())
    assert counts[0].get("render_full_update", 0) >= 1  # it was watched
    assert counts[0] == counts[1]


async def test_the_first_c_paints_its_dialog_without_waiting_a_refresh_period(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A screen's update timer sleeps one whole period (1/60 s) after it first starts before its
    first tick: the session's first dialog waited that long, idle, before its first paint. Now no
    timer starts (sleeps for the first time) between the key and the dialog's first layout."""
    sleeps = timer_sleeps(monkeypatch)
    app = build_app(FakeEngine([snapshot(BTC), snapshot(ETH)]))
    async with app.run_test(size=SIZE) as pilot:
        await painted(app, pilot, "Positions")
        await settle(app, pilot)
        kept = app.get_screen("confirm")
        laid_out: list[float] = []
        kept.screen_layout_refresh_signal.subscribe(kept, lambda _: laid_out.append(time.perf_counter()))
        pressed = time.perf_counter()
        await pilot.press("c")
        await settle(app, pilot)
        assert app.screen is kept and laid_out
        started_before = {task for task, t in sleeps if t < pressed}
        first_sleeps = [t - pressed for task, t in sleeps
                        if pressed < t < laid_out[0] and task not in started_before]
        assert first_sleeps == []  # was [~0.005]: the dialog's timer, started by the key
