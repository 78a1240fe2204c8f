"""Snapshot tests: the layout at 80x24 and 160x50 in each perpdesk theme, on fixed data (fixed
timestamps and prices, no clock in the rendered text). Update with --snapshot-update after an
intended change, and look at the SVG diff before committing."""
from __future__ import annotations

from decimal import Decimal

import pytest

from console.app import build_app
from core.model import OrderSide, PositionSide
from tests.helpers.console_helpers import (
    BTC,
    ETH,
    T0,
    FakeEngine,
    close,
    fill,
    funding,
    latency,
    snapshot,
)
from themes import THEME_NAMES

PNL_SERIES = ("-4", "-2.5", "-3", "0", "1.5", "4", "3", "6.25", "9", "7.5", "11", "14.75",
              "12", "16", "18.5", "17", "19.25", "21", "20")


def loaded_app(theme: str):
    engine = FakeEngine([snapshot(BTC, PositionSide.LONG, "10"),
                         snapshot(ETH, PositionSide.SHORT, "30", "3000", "3012.34", liq="3301.25")])
    app = build_app(engine, clock=lambda: T0)
    app.theme = theme

    async def feed(pilot) -> None:
        for n in range(12):
            engine.emit(fill(n, BTC if n % 3 else ETH, OrderSide.BUY if n % 2 else OrderSide.SELL,
                             "2" if n % 3 else "3", "60000.1" if n % 3 else "3001.25"))
        engine.emit(close(1))
        engine.emit(close(2, ETH, "-4.2"))
        engine.emit(funding(1))
        engine.emit(funding(2, ETH, "0.0155"))
        engine.emit(latency(12.0))
        chart = app.pnl_chart  # a deterministic PnL history before T0 (one point per bucket)
        chart.reset()
        for n, value in enumerate(PNL_SERIES):
            chart.sample(Decimal(value), T0.timestamp() - (len(PNL_SERIES) - n) * chart.step_s)
        app.flush_now()
        await pilot.pause()

    return app, feed


@pytest.mark.parametrize("theme", THEME_NAMES)
@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_layout(snap_compare, theme: str, size: tuple[int, int]) -> None:
    app, feed = loaded_app(theme)
    assert snap_compare(app, terminal_size=size, run_before=feed)


def test_close_confirmation_80x24(snap_compare) -> None:
    app, feed = loaded_app("perpdesk-dark")

    async def run_before(pilot) -> None:
        await feed(pilot)
        await pilot.press("X")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
