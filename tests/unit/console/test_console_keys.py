"""Pilot tests: every console key against the engine double, checking the commands it received
and what the trader was told."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from console.app import build_app
from console.screens.confirm import ConfirmScreen
from console.screens.help import HelpScreen
from console.screens.partial import PartialCloseScreen
from console.screens.reconcile import ReconcileScreen
from core.events import CloseAll, ClosePosition, CommandResult, Notice, NoticeLevel, PlaceOrder
from core.model import OrderSide, PositionSide
from core.settings.config import Settings
from tests.helpers.console_helpers import (
    BTC,
    ETH,
    SIZE,
    T0,
    FakeEngine,
    Report,
    ReportRow,
    footer,
    life,
    painted,
    screen_text,
    snapshot,
    two_positions,
)
from tests.helpers.pilot import notes, notifications, settle


async def test_c_then_y_closes_the_selected_position() -> None:
    engine = two_positions()
    app = build_app(engine, clock=lambda: T0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("j", "c")  # second row: ETH
        assert isinstance(app.screen, ConfirmScreen)
        body = screen_text(app)
        assert "30 ct (3.0 ETH)" in body and "+28.35" in body  # size and estimated PnL
        await pilot.press("y")
        await settle(app, pilot)
    assert engine.commands == [ClosePosition(ETH, "net", None, life(ETH))]
    assert "closing ETH/USDT:USDT all" in notes(app)


@pytest.mark.parametrize("answer", ["n", "escape"])
async def test_c_then_n_or_esc_sends_nothing(answer: str) -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press(answer)
        await settle(app, pilot)
        assert not isinstance(app.screen, ConfirmScreen)
    assert engine.commands == []


async def test_enter_confirms() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c", "enter")
        await settle(app, pilot)
    assert engine.commands == [ClosePosition(BTC, "net", None, life(BTC))]


async def test_partial_close_50_percent_typed() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        assert isinstance(app.screen, PartialCloseScreen)
        await pilot.press(*"50%")
        await pilot.pause()
        assert "remaining 5.0 ct (0.050 BTC)" in screen_text(app)
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)
        assert "+25.00" in screen_text(app)  # half of the +50.00 uPnL
        await pilot.press("y")
        await settle(app, pilot)
    assert engine.commands == [ClosePosition(BTC, "net", Decimal("5.0"), life(BTC))]


async def test_partial_close_button_and_coins() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await pilot.click("#pct-25")
        await pilot.press("y")
        await pilot.press("p", *"0.03 btc", "enter", "enter")
        await settle(app, pilot)
    # 25% of 10 contracts at lot 0.1 = 2.5; 0.03 BTC at 0.01 BTC a contract = 3
    assert engine.commands == [ClosePosition(BTC, "net", Decimal("2.5"), life(BTC)),
                               ClosePosition(BTC, "net", Decimal("3"), life(BTC))]


async def test_partial_close_rejects_bad_sizes() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p", *"0.05", "enter")  # lot size is 0.1 contracts
        assert isinstance(app.screen, PartialCloseScreen)
        assert "not a multiple of the lot size" in screen_text(app)
        await pilot.press(*["backspace"] * 4, *"11", "enter")
        assert "more than the position" in screen_text(app)
        await pilot.press("escape")
        await settle(app, pilot)
        assert not app.screen_stack[1:]
    assert engine.commands == []


async def test_close_all_confirm_and_cancel() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("X")
        text = screen_text(app)
        assert "Close all 2 position(s)?" in text and "+78.35" in text
        await pilot.press("n", "X", "escape")
        await settle(app, pilot)
        assert engine.commands == []
        await pilot.press("X", "y")
        await settle(app, pilot)
    assert engine.commands == [CloseAll()]


async def test_rejection_is_one_error_notification() -> None:
    engine = two_positions()
    engine.result = CommandResult(False, "exchange says no")
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        engine.emit(Notice(NoticeLevel.ERROR, "exchange says no"))  # the engine publishes it too
        await pilot.press("c", "y")
        await settle(app, pilot)
        app.flush_now()
    errors = [n for n in notifications(app) if n.severity == "error"]
    assert [n.message for n in errors] == ["exchange says no"]


async def test_engine_notice_becomes_notification() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        engine.emit(Notice(NoticeLevel.WARNING, "private stream disconnected"))
        app.flush_now()
        await pilot.pause()
    assert [(n.message, n.severity) for n in notifications(app)] == [
        ("private stream disconnected", "warning")]


async def test_order_entry_limit() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        app.screen.query_one("#type").value = "limit"
        app.screen.query_one("#side").value = "sell"
        await pilot.pause()
        await pilot.press(*"2.5", "tab", *"61000.15", "enter")
        assert "multiple of the tick" in screen_text(app)
        await pilot.press("backspace", "enter")
        assert isinstance(app.screen, ConfirmScreen) and engine.commands == []
        text = screen_text(app)
        assert "Place order?" in text and "SELL BTC/USDT  2.5 ct (0.025 BTC)" in text
        assert "limit @ 61,000.1" in text
        assert "estimated notional 1,525.00 USDT (at limit price)" in text  # 0.025 x 61000.1
        await pilot.press("y")
        await settle(app, pilot)
    assert engine.commands == [PlaceOrder(BTC, OrderSide.SELL, Decimal("2.5"), "limit",
                                          Decimal("61000.1"), False)]


@pytest.mark.parametrize("answer", ["n", "escape"])
async def test_order_entry_market_confirmation_at_mark_and_cancel(answer: str) -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        app.screen.query_one("#reduce").value = True
        await pilot.pause()
        await pilot.press(*"3", "enter")
        text = screen_text(app)
        assert "BUY BTC/USDT  3.0 ct (0.030 BTC)" in text and "market  reduce-only" in text
        assert "estimated notional 1,815.00 USDT (at mark)" in text  # 0.03 x 60500
        await pilot.press(answer)
        await settle(app, pilot)
        assert len(app.screen_stack) == 1
    assert engine.commands == []


async def test_reconcile_shows_the_diff() -> None:
    engine = two_positions()
    engine.report = Report([ReportRow(BTC, "contracts", "10", "10", True),
                            ReportRow(ETH, "net_pnl", "1.5", "1.7", False)])
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await settle(app, pilot)
        assert isinstance(app.screen, ReconcileScreen)
        text = screen_text(app)
        assert "1 difference(s) between journal and exchange" in text
        assert "net_pnl  1.5  1.7  DIFF" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, ReconcileScreen)


async def test_help_lists_active_keys_and_read_only_hides_trading() -> None:
    app = build_app(two_positions())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = dict((d, k) for k, d in app.screen.keys)
        assert keys["Close"] == "c" and keys["Close all"] == "X" and keys["Quit"] == "q"

    engine = two_positions()
    app = build_app(engine, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        line = await footer(app, pilot)
        assert "Close" not in line and "Partial" not in line and "Order" not in line
        assert "Quit" in line and "READ-ONLY" in screen_text(app)
        await pilot.press("c", "p", "X", "o")
        await settle(app, pilot)
        assert len(app.screen_stack) == 1 and engine.commands == []
        await pilot.press("question_mark")
        described = {d for _, d in app.screen.keys}
        assert "Help" in described and not {"Close", "Partial", "Close all", "Order"} & described


async def test_keymap_rebinds_close() -> None:
    engine = two_positions()
    app = build_app(engine, Settings(keymap={"close": "z"}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("z", "y")
        await settle(app, pilot)
    assert engine.commands == [ClosePosition(BTC, "net", None, life(BTC))]


async def test_quit_asks_when_orders_are_in_flight() -> None:
    engine = two_positions()
    engine.hold = asyncio.Event()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c", "y")
        await pilot.pause()
        assert app.inflight == 1
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen) and "in flight" in screen_text(app)
        await pilot.press("n")
        assert app.is_running
        engine.hold.set()
        await settle(app, pilot)
        assert app.inflight == 0
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_theme_cycles_and_is_saved_beside_the_config(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("# mine\n")
    app = build_app(two_positions(), Settings(config_path=config))
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "perpdesk-dark"
        await pilot.press("t")
        await pilot.pause()
        assert app.theme == "perpdesk-light"
        await pilot.press("t")
        await pilot.pause()
        assert app.theme == "perpdesk-contrast"
    assert 'theme = "perpdesk-contrast"' in (tmp_path / "ui-state.toml").read_text()
    assert config.read_text() == "# mine\n"


async def test_a_bad_ui_state_file_is_set_aside_and_said_on_screen(tmp_path) -> None:
    from core.settings.config import load_settings

    config = tmp_path / "config.toml"
    config.write_text('[ui]\ntheme = "perpdesk-light"\n')
    (tmp_path / "ui-state.toml").write_text("[ui\n")
    app = build_app(two_positions(), load_settings(config))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "perpdesk-light"  # config.toml's [ui]
        (notice,) = [n.message for n in notifications(app) if n.severity == "warning"]
        assert "ui-state.toml" in notice and "corrupt-" in notice and "not valid TOML" in notice
    assert not (tmp_path / "ui-state.toml").exists() or "[ui\n" not in (tmp_path / "ui-state.toml").read_text()


async def test_filter_and_navigation() -> None:
    app = build_app(two_positions())
    async with app.run_test(size=SIZE) as pilot:
        assert app.positions.selected.symbol == BTC
        await pilot.press("down")
        assert app.positions.selected.symbol == ETH
        await pilot.press("k")
        assert app.positions.selected.symbol == BTC
        await pilot.press("slash", *"eth")
        await pilot.pause()
        assert app.positions.row_count == 1 and app.positions.selected.symbol == ETH
        await pilot.press("enter")
        assert app.focused is app.positions
        await pilot.press("slash", "escape")
        await pilot.pause()
        assert app.positions.row_count == 2
        await pilot.press("tab")
        assert app.focused.id == "closes"


async def test_80x24_renders_everything_that_matters() -> None:
    app = build_app(two_positions())
    async with app.run_test(size=(80, 24)) as pilot:
        await painted(app, pilot, "q Quit")  # the footer composes after the first paint
        text = screen_text(app)
        for word in ("Equity", "Positions", "Closes", "Fills", "Funding", "uPnL", "q Quit"):
            assert word in text, word
        assert "Liq" not in text.split("Closes")[0]  # a less important column dropped
        await pilot.press("c")
        assert "Close position?" in screen_text(app)


async def test_cursor_stays_on_its_position_when_rows_appear_above() -> None:
    engine = FakeEngine([snapshot(ETH, PositionSide.SHORT, "30", "3000", "2990.55")])
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        assert app.positions.selected.symbol == ETH
        engine.emit(snapshot(BTC))  # sorts above ETH
        app.flush_now()
        await pilot.press("c", "y")
        await settle(app, pilot)
    assert engine.commands == [ClosePosition(ETH, "net", None, life(ETH))]


async def test_palette_commands_follow_read_only() -> None:
    for read_only, expected in ((False, True), (True, False)):
        app = build_app(two_positions(), read_only=read_only)
        async with app.run_test(size=SIZE):
            titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Reconcile" in titles and "Keys" in titles
        assert ("Close all positions" in titles) is expected and ("New order" in titles) is expected


# ==================================================================== stale confirmations (issue 10)


def flipped(contracts: str = "20") -> object:
    """BTC flipped from the long of 10 to a short, as a new life (position_id)."""
    from dataclasses import replace

    return replace(snapshot(BTC, PositionSide.SHORT, contracts), position_id=f"{BTC}#net#2")


async def test_partial_close_asks_again_when_the_position_flips() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p", *"50%", "enter")
        assert "long  close 5.0 ct" in screen_text(app)
        engine.emit(flipped())
        await pilot.press("y")
        assert isinstance(app.screen, ConfirmScreen) and engine.commands == []
        text = screen_text(app)
        assert "nothing sent" in text and "short  close 5.0 ct" in text
        assert "remaining 15.0 ct" in text
        await pilot.press("y")
        await settle(app, pilot)
    assert engine.commands == [ClosePosition(BTC, "net", Decimal("5.0"), f"{BTC}#net#2")]


async def test_partial_close_larger_than_the_changed_position_is_not_sent() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p", *"50%", "enter")
        engine.emit(snapshot(BTC, PositionSide.LONG, "3"))  # same life, shrunk from outside
        await pilot.press("y")
        await settle(app, pilot)
        assert len(app.screen_stack) == 1
    assert engine.commands == []
    (error,) = [n.message for n in notifications(app) if n.severity == "error"]
    assert "now long 3.0 ct" in error and "nothing sent" in error


async def test_close_all_asks_again_when_the_set_of_positions_changes() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("X")
        assert "Close all 2 position(s)?" in screen_text(app)
        engine.emit(snapshot(ETH, PositionSide.SHORT, "40", "3000", "2990.55"))  # 30 -> 40
        await pilot.press("y")
        assert isinstance(app.screen, ConfirmScreen) and engine.commands == []
        text = screen_text(app)
        assert "nothing sent" in text and "ETH/USDT short  40 ct" in text
        await pilot.press("y")
        await settle(app, pilot)
    assert engine.commands == [CloseAll()]


async def test_a_mark_move_alone_does_not_ask_again() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        engine.emit(snapshot(BTC, PositionSide.LONG, "10", mark="61000"))  # estimate moves only
        await pilot.press("y")
        await settle(app, pilot)
    assert engine.commands == [ClosePosition(BTC, "net", None, life(BTC))]


async def test_a_position_gone_under_the_dialog_is_not_closed() -> None:
    from core.events import PositionGone

    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        engine.emit(PositionGone(BTC, "net", snapshot(BTC).position_id))
        await pilot.press("y")
        await settle(app, pilot)
        assert len(app.screen_stack) == 1
    assert engine.commands == []
    assert "no open BTC/USDT:USDT net position to close" in notes(app)
