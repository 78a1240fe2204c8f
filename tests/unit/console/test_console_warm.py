"""The session's first dialog is prepared at idle after the first paint (console/screens/warm.py):
the first `c` finds the confirmation composed, installed, laid out and rendered, and its update
timer started, as the second does."""
from __future__ import annotations

import asyncio
import time

from textual import events
from textual.screen import UPDATE_PERIOD
from textual.widgets import Label

from console.app import build_app
from console.screens.confirm import ConfirmScreen
from tests.helpers.console_helpers import BTC, ETH, FakeEngine, painted, screen_text, snapshot
from tests.helpers.pilot import ScreenWork, settle
from tests.helpers.screen_bytes import Frames, recording_driver

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



class _Timed(Frames):
    """Notes when the confirmation's title is first written."""

    def __init__(self) -> None:
        super().__init__()
        self.painted_at: list[float] = []

    def written(self, data: str) -> None:
        if "Close position?" in data:
            self.painted_at.append(time.perf_counter())
        super().written(data)


async def test_the_first_c_lays_out_renders_and_styles_no_more_than_a_later_one() -> None:
    """The first showing used to render the whole dialog screen twice (nothing of it rendered
    before: all of it dirty) where a later showing renders the changed lines, then the screen
    once. The later `c` here follows another question (close all), so that its texts change size as
    the first one's do (from the empty texts it was prepared with)."""
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


async def test_the_first_c_paints_its_dialog_without_waiting_a_refresh_period() -> None:
    """A screen's update timer ticks one period (1/60 s) after it first starts: the session's
    first dialog waited that long, idle, before its first paint; a later one is painted at once."""
    frames = _Timed()
    app = build_app(FakeEngine([snapshot(BTC), snapshot(ETH)]))
    app.driver_class = recording_driver(frames)
    run = asyncio.create_task(app.run_async(size=SIZE, mouse=False))
    try:
        for _ in range(300):
            if app.is_running and "BTC/USDT" in screen_text(app) and frames.frames:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # the dialog is prepared at idle after the first paint
        painted_at = frames.painted_at
        pressed = time.perf_counter()
        app.post_message(events.Key("c", "c"))
        for _ in range(100):
            if painted_at:
                break
            await asyncio.sleep(0.005)
        assert painted_at, "no confirmation painted"
        assert painted_at[0] - pressed < UPDATE_PERIOD  # 25-35 ms before, 5-10 ms after
    finally:
        app.exit()
        await run
