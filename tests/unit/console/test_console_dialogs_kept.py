"""The trading dialogs (order entry, partial close, TP/SL, the kill switch) are kept, one of each
kind, and prepared at idle after the first paint (console/trading.py, console/screens/warm.py):
the session's first key costs what a later one does, and every showing says what it was opened
on, nothing typed the time before kept."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest
from textual.widgets import Checkbox, Input, Select

from console.app import build_app
from console.pending import PendingEngine
from console.screens.confirm import ConfirmScreen
from console.screens.kill import KillScreen
from console.screens.order import OrderEntryScreen
from console.screens.partial import PartialCloseScreen
from console.screens.tpsl import TpSlScreen
from console.screens.warm import is_prepared
from tests.helpers.console_helpers import BTC, ETH, SIZE, painted, screen_text, two_positions
from tests.helpers.pilot import ScreenWork, settle, timer_sleeps

# key, kept screen's name, kind, the key that cancels it
DIALOGS = [("o", "order", OrderEntryScreen), ("p", "partial", PartialCloseScreen),
           ("T", "tpsl", TpSlScreen), ("K", "kill", KillScreen)]


async def ready(app, pilot) -> None:  # type: ignore[no-untyped-def]
    await painted(app, pilot, "Positions")
    await settle(app, pilot)


@pytest.mark.parametrize(("key", "name", "kind"), DIALOGS)
async def test_the_first_press_lays_out_renders_and_styles_no_more_than_a_later_one(
        key: str, name: str, kind: type) -> None:
    """Each dialog was built on its key: the first showing (and every one) composed it, styled
    it and rendered it whole. Now the kept one is prepared at idle. The later press is on the
    other position (its texts change as the first one's do, from those it was prepared with)."""
    app = build_app(two_positions())
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        kept = app.get_screen(name)
        assert isinstance(kept, kind)
        work = ScreenWork(kept)
        counts = []
        for keys in ((key,), ("j", key)):
            await pilot.press(*keys[:-1])
            work.take()
            work.on = True
            await pilot.press(keys[-1])
            await settle(app, pilot)
            work.on = False
            assert app.screen is kept
            await pilot.press("escape")
            await settle(app, pilot)
            assert len(app.screen_stack) == 1
            counts.append(work.take())
    assert counts[0].get("render_full_update", 0) + counts[0].get("render_partial_update", 0) >= 1
    for what, n in counts[0].items():
        assert n <= counts[1].get(what, 0), (what, counts)


@pytest.mark.parametrize(("key", "name", "kind"), DIALOGS)
async def test_the_first_press_paints_without_waiting_a_refresh_period(
        key: str, name: str, kind: type, monkeypatch: pytest.MonkeyPatch) -> None:
    """A screen's update timer sleeps one whole period (1/60 s) after it first starts: a dialog
    built on its key waited that long before its first paint. No timer starts between the key
    and the dialog's first layout now."""
    sleeps = timer_sleeps(monkeypatch)
    app = build_app(two_positions())
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        kept = app.get_screen(name)
        laid_out: list[float] = []
        kept.screen_layout_refresh_signal.subscribe(kept, lambda _: laid_out.append(time.perf_counter()))
        pressed = time.perf_counter()
        await pilot.press(key)
        await settle(app, pilot)
        assert app.screen is kept and laid_out
        started_before = {task for task, t in sleeps if t < pressed}
        assert [t - pressed for task, t in sleeps
                if pressed < t < laid_out[0] and task not in started_before] == []


async def test_order_entry_opens_empty_again_after_a_cancelled_form() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("o")
        form = app.screen
        form.query_one("#type", Select).value = "limit"
        form.query_one("#side", Select).value = "sell"
        form.query_one("#reduce", Checkbox).value = True
        await pilot.pause()
        await pilot.press(*"2.5", "tab", *"61000.15", "enter")
        assert "multiple of the tick" in screen_text(app)
        await pilot.press("escape")
        await settle(app, pilot)
        await pilot.press("j", "o")  # the ETH row selected: the form opens on ETH
        await settle(app, pilot)
        assert app.screen is form
        assert form.query_one("#symbol", Select).value == ETH
        assert form.query_one("#side", Select).value == "buy"
        assert form.query_one("#type", Select).value == "market"
        assert form.query_one("#size", Input).value == ""
        assert form.query_one("#price", Input).value == "" and form.query_one("#price", Input).disabled
        assert form.query_one("#reduce", Checkbox).value is False
        assert "multiple of the tick" not in screen_text(app)
        assert app.focused is form.query_one("#size", Input)
        await pilot.press(*"3", "enter")  # typed into the fresh size field: a market buy of ETH
        assert isinstance(app.screen, ConfirmScreen)
        assert "BUY ETH/USDT  3 ct" in screen_text(app)
        await pilot.press("n")
        await settle(app, pilot)
    assert engine.commands == []


async def test_partial_close_opens_on_the_new_position_with_nothing_typed() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("p", *"50%")
        dialog = app.screen
        assert isinstance(dialog, PartialCloseScreen) and "close " in screen_text(app)
        await pilot.press("escape")
        await settle(app, pilot)
        await pilot.press("j", "p")
        await settle(app, pilot)
        assert app.screen is dialog
        text = screen_text(app)
        assert "Partial close ETH/USDT short" in text and "BTC" not in text
        assert dialog.query_one("#size", Input).value == ""
        assert "remaining" not in text  # no preview left from the BTC size
        await pilot.press("enter")  # an empty size does not close anything
        await settle(app, pilot)
        assert app.screen is dialog
        await pilot.press("escape")
        await settle(app, pilot)
    assert engine.commands == []


async def test_tp_sl_opens_on_the_new_position_with_its_own_prices() -> None:
    engine = two_positions()
    engine.protections[(BTC, "net")] = (Decimal("62000"), Decimal("59000"))
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("T")
        dialog = app.screen
        assert isinstance(dialog, TpSlScreen)
        assert dialog.query_one("#tp", Input).value == "62000.0"
        await pilot.press("ctrl+t", "escape")  # the stop moved to break-even, then cancelled
        await settle(app, pilot)
        await pilot.press("j", "T")  # ETH: no TP/SL known
        await settle(app, pilot)
        assert app.screen is dialog
        assert dialog.query_one("#tp", Input).value == "" and dialog.query_one("#sl", Input).value == ""
        text = screen_text(app)
        assert "TP/SL ETH/USDT short" in text and "short: take-profit below the mark" in text
        await pilot.press("escape")
        await settle(app, pilot)
        await pilot.press("k", "T")  # BTC again: its own prices, not the break-even typed before
        await settle(app, pilot)
        assert dialog.query_one("#tp", Input).value == "62000.0"
        assert dialog.query_one("#sl", Input).value == "59000.0"
    assert engine.commands == []


async def test_a_word_typed_into_the_kill_dialog_before_does_not_confirm_the_next() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("K", *"KILL", "escape")  # typed, not sent
        await settle(app, pilot)
        assert len(app.screen_stack) == 1
        await pilot.press("K")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, KillScreen) and dialog is app.get_screen("kill")
        assert dialog.query_one("#kill-word", Input).value == ""
        await pilot.press("enter")  # Enter alone: the word must be typed again
        await settle(app, pilot)
        assert app.screen is dialog and "type the word KILL" in screen_text(app)
        await pilot.press("escape")
        await settle(app, pilot)
        await pilot.press("K")
        await settle(app, pilot)
        assert "type the word KILL" not in screen_text(app)  # the error of the time before gone
        await pilot.press("escape")
        await settle(app, pilot)
    assert engine.commands == []


async def test_the_order_form_prepared_before_the_engine_was_up_offers_its_instruments() -> None:
    """The first paint comes before the engine (console/pending.py): the kept form is prepared
    with no instrument to offer, and takes them on its first showing."""
    app = build_app(PendingEngine())
    async with app.run_test(size=SIZE) as pilot:
        await painted(app, pilot, "Positions")
        await settle(app, pilot)
        form = app.get_screen("order")
        assert is_prepared(form)
        engine = two_positions()
        app.attach(engine)
        await painted(app, pilot, "ETH/USDT")
        await pilot.press("o")
        await settle(app, pilot)
        assert app.screen is form
        symbol = form.query_one("#symbol", Select)
        assert symbol.value == BTC
        await pilot.click(symbol)
        await settle(app, pilot)
        assert ETH in screen_text(app).split("New order", 1)[1]  # offered in the open list
        await pilot.press("escape", "escape")
        await settle(app, pilot)
    assert engine.commands == []


async def test_a_key_before_the_preparation_gets_a_new_dialog_and_the_next_a_kept_one() -> None:
    """The preparation waits while a dialog is up (it would push and pop under it), then runs."""
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")  # at once: before the first paint's idle
        first = app.screen
        assert isinstance(first, OrderEntryScreen) and not is_prepared(first)
        await pilot.pause(0.3)
        await pilot.press("escape")
        await settle(app, pilot)
        assert len(app.screen_stack) == 1
        for _ in range(40):
            if is_prepared(app.get_screen("order")):
                break
            await pilot.pause(0.1)
        await pilot.press("o")
        await settle(app, pilot)
        assert app.screen is app.get_screen("order") and is_prepared(app.screen)
        await pilot.press("escape")
        await settle(app, pilot)
    assert engine.commands == []
