"""Pilot tests of the trading-control keys against the engine double: `s` pause/resume (a halt
resumes only through a confirmation), `K` the kill switch (the word KILL typed), `T` TP/SL with
the break-even shortcut; the strategy/risk line and the halt bell."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from console import actions
from console.app import build_app
from console.feed import FeedBuffer
from console.screens.confirm import ConfirmScreen
from console.screens.help import HelpScreen
from console.screens.kill import KillScreen
from console.screens.tpsl import TpSlScreen
from core.events import (
    KillSwitch,
    PauseStrategy,
    ResumeTrading,
    RiskEvent,
    RiskEventKind,
    RiskStatus,
    SetTpSl,
    TradingState,
)
from core.model import PositionSide
from core.settings.config import Settings
from tests.helpers.console_helpers import (
    BTC,
    ETH,
    SIZE,
    T0,
    painted,
    screen_text,
    snapshot,
    two_positions,
)
from tests.helpers.pilot import notes, settle


def status(state: TradingState = TradingState.RUNNING, net: str = "-12.3",
           last: str = "") -> RiskStatus:
    return RiskStatus(state, "scalper", True, Decimal(net), Decimal("100"), Decimal("1234.5"),
                      Decimal("5000"), last)


def halt(kind: RiskEventKind = RiskEventKind.HALT) -> RiskEvent:
    return RiskEvent(T0, kind, "daily_loss_limit", Decimal("-101.2"), Decimal("100"),
                     TradingState.HALTED, "today's net -101.20 breached the daily loss limit 100")


# ---------------------------------------------------------------- s


async def test_s_pauses_then_resumes_without_a_dialog() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await settle(app, pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert engine.trading_state is TradingState.PAUSED
        await pilot.press("s")
        await settle(app, pilot)
    assert engine.commands == [PauseStrategy(), ResumeTrading()]
    assert "trading paused" in notes(app) and "trading resumed" in notes(app)


async def test_s_when_halted_asks_and_n_sends_nothing_y_resumes() -> None:
    engine = two_positions()
    engine.trading_state = TradingState.HALTED
    engine.risk = status(TradingState.HALTED, last="RISK HALT daily_loss_limit -101.20")
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        text = screen_text(app)
        assert "Resume trading after a halt?" in text
        assert "halted: RISK HALT daily_loss_limit -101.20" in text
        await pilot.press("n")
        await settle(app, pilot)
        assert engine.commands == []
        await pilot.press("s", "y")
        await settle(app, pilot)
    assert engine.commands == [ResumeTrading()]


async def test_a_halt_resumed_elsewhere_under_the_dialog_sends_nothing() -> None:
    engine = two_positions()
    engine.trading_state = TradingState.HALTED
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        engine.trading_state = TradingState.RUNNING  # resumed from elsewhere meanwhile
        await pilot.press("y")
        await settle(app, pilot)
    assert engine.commands == []
    assert any("no longer halted" in n for n in notes(app))


# ---------------------------------------------------------------- K


async def test_kill_switch_needs_the_typed_word() -> None:
    engine = two_positions()
    engine.protections[(BTC, "net")] = (Decimal("62000"), None)  # a TP/SL algo the kill cancels
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("K")
        assert isinstance(app.screen, KillScreen)
        text = screen_text(app)
        assert "KILL SWITCH" in text and "close BTC/USDT long" in text
        assert "0 open order(s), 1 position(s) with a TP/SL known to the console" in text
        assert "close ETH/USDT short" in text and "Type KILL" in text
        await pilot.press("y", "enter")  # what confirms every other dialog does nothing here
        await pilot.press("backspace", "k", "i", "l", "l", "enter")  # lower case: refused
        assert isinstance(app.screen, KillScreen)
        assert "type the word KILL" in screen_text(app)
        assert engine.commands == []
        for _ in range(4):
            await pilot.press("backspace")
        await pilot.press("K", "I", "L", "L", "enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, KillScreen)
    assert engine.commands == [KillSwitch()]
    assert engine.trading_state is TradingState.HALTED


async def test_kill_switch_escape_cancels() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("K", "K", "I", "L", "L", "escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, KillScreen)
    assert engine.commands == []


async def test_kill_switch_is_sent_on_the_word_even_when_the_positions_changed() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("K", "K", "I", "L", "L")
        engine.emit(snapshot(BTC, PositionSide.LONG, "25"))  # grew from outside under the dialog
        await pilot.press("enter")  # bound to the word alone: sent at once, never "changed"
        await settle(app, pilot)
        assert not isinstance(app.screen, KillScreen)
        assert "changed since it was shown" not in screen_text(app)
    assert engine.commands == [KillSwitch()]


# ---------------------------------------------------------------- T


async def test_t_prefills_moves_the_stop_to_break_even_and_confirms() -> None:
    engine = two_positions()
    engine.protections[(BTC, "net")] = (Decimal("62000"), Decimal("59000"))
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("T")
        assert isinstance(app.screen, TpSlScreen)
        assert app.screen.query_one("#tp").value == "62000.0"
        assert app.screen.query_one("#sl").value == "59000.0"
        await pilot.press("ctrl+t")  # stop to break-even: the entry price
        assert app.screen.query_one("#sl").value == "60000.0"
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)
        text = screen_text(app)
        assert "Set TP/SL?" in text
        assert "stop loss    60,000.0 (was 59,000.0)" in text and "break-even" in text
        assert "take profit  62,000.0 (was 62,000.0)  est PnL +200.00" in text
        await pilot.press("y")
        await settle(app, pilot)
    pos = engine.positions()[0]
    assert engine.commands == [SetTpSl(BTC, "net", Decimal("62000.0"), Decimal("60000.0"),
                                       pos.position_id)]


@pytest.mark.parametrize(("keys", "side", "tp", "sl", "mark"), [
    (("T",), "long", "above", "below", "60,500.0"),
    (("j", "T"), "short", "below", "above", "2,990.55"),
])
async def test_t_labels_each_field_with_its_side_of_the_mark(keys: tuple[str, ...], side: str,
                                                              tp: str, sl: str, mark: str) -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*keys)
        assert isinstance(app.screen, TpSlScreen)
        screen = app.screen
        assert str(screen.query_one("#tp-label").render()) == f"Take-profit ({tp} {mark})"
        assert str(screen.query_one("#sl-label").render()) == f"Stop-loss ({sl} {mark})"
        text = screen_text(app)
        assert f"{side}: take-profit {tp} the mark, stop-loss {sl} it" in text
        assert f"Take-profit ({tp} {mark})" in text and f"Stop-loss ({sl} {mark})" in text
        # each label sits over its own field
        assert screen.query_one("#tp-label").region.x < screen.query_one("#sl-label").region.x
        assert screen.query_one("#tp").region.x < screen.query_one("#sl").region.x


async def test_t_empty_field_is_unchanged_and_wrong_side_is_refused() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("j", "T")  # ETH short, mark 2990.55
        assert isinstance(app.screen, TpSlScreen)
        await pilot.press("tab", *"2980", "enter")  # a stop below the mark of a short
        assert isinstance(app.screen, TpSlScreen)
        assert "stop loss must be above the mark" in screen_text(app)
        for _ in range(4):
            await pilot.press("backspace")
        await pilot.press(*"3010", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        assert "take profit  unchanged" in screen_text(app)
        await pilot.press("y")
        await settle(app, pilot)
    pos = [p for p in engine.positions() if p.symbol == ETH][0]
    assert engine.commands == [SetTpSl(ETH, "net", None, Decimal("3010"), pos.position_id)]


async def test_t_on_a_position_reopened_under_the_dialog_sends_nothing() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("T", "tab", *"59000")
        old = app.positions.snapshots[(BTC, "net")]
        engine.emit(replace(old, position_id=old.position_id + "-2"))  # closed and reopened
        await pilot.press("enter")
        await settle(app, pilot)
    assert engine.commands == []
    assert any("another position now" in n for n in notes(app))


# ---------------------------------------------------------------- read-only, help, keymap


async def test_read_only_hides_and_refuses_the_new_keys() -> None:
    engine = two_positions()
    engine.trading_state = TradingState.HALTED
    app = build_app(engine, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", "K", "T")
        await settle(app, pilot)
        assert not isinstance(app.screen, (ConfirmScreen, KillScreen, TpSlScreen))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "Kill switch" not in text and "TP/SL" not in text and "Pause" not in text
    assert engine.commands == []
    titles = [a.palette[0] for a in actions.palette(True) if a.palette]
    assert not {"Kill switch", "Set TP/SL", "Pause / resume trading"} & set(titles)


async def test_help_lists_the_new_keys_and_keymap_rebinds_them() -> None:
    engine = two_positions()
    app = build_app(engine, Settings(keymap={"kill_switch": "ctrl+k", "pause": "P"}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        text = screen_text(app)
        assert "Kill switch" in text and "TP/SL" in text and "Pause/resume" in text
        assert "^k" in text
        await pilot.press("escape", "K", "s")
        await settle(app, pilot)
        assert not isinstance(app.screen, KillScreen) and engine.commands == []
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, KillScreen)
        await pilot.press("escape", "P")
        await settle(app, pilot)
    assert engine.commands == [PauseStrategy()]


# ---------------------------------------------------------------- the risk line and the bell


async def test_risk_line_shows_status_and_stays_hidden_without_one() -> None:
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not app.risk_line.display and "Strategy" not in screen_text(app)
        engine.emit(status(last="RISK REFUSED max_order_notional 1200 > 1000"))
        app.flush_now()
        await painted(app, pilot, "Strategy scalper")
        line = next(x for x in screen_text(app).splitlines() if "Strategy scalper" in x)
        assert "running" in line and "Net -12.30 / limit -100.00" in line
        assert "Expo 1,234.50 / 5,000.00" in line
        engine.emit(status(TradingState.PAUSED, net="3"))
        app.flush_now()
        await painted(app, pilot, "paused")
        line = next(x for x in screen_text(app).splitlines() if "Strategy scalper" in x)
        assert "paused" in line and "Net +3.00" in line


async def test_risk_line_items_keep_their_words_at_80_columns() -> None:
    """Each item (net vs limit, exposure vs cap, the last event) is whole on some row; before,
    the one line was cut at the right edge ("Expo 1,234.50 /", "Last pause manual:")."""
    engine = two_positions()
    last = "pause manual: paused: entries refused, closes and reduce-only orders still go"
    app = build_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        engine.emit(status(TradingState.PAUSED, last=last))
        app.flush_now()
        await painted(app, pilot, "paused")
        text = screen_text(app)
        rows = text.splitlines()
        top = next(i for i, x in enumerate(rows) if "Strategy scalper" in x)
        risk = [r.strip() for r in rows[top:top + 4]]
        assert risk[0] == "Strategy scalper paused  Net -12.30 / limit -100.00"
        assert risk[1] == "Last pause manual: paused: entries refused, closes and reduce-only orders"
        assert risk[2] == "still go"
        assert risk[3] == "Expo 1,234.50 / 5,000.00"
        assert all(len(r) <= 80 for r in rows)
        for word in ("Equity", "Avail", "uPnL", "Today", "Fees", "Fund"):
            assert f"{word} " in text  # the header's items, all there at 80 columns
    engine = two_positions()
    app = build_app(engine)
    async with app.run_test(size=(160, 50)) as pilot:
        engine.emit(status(TradingState.RUNNING, last="RISK REFUSED max_order_notional 1200 > 1000"))
        app.flush_now()
        await painted(app, pilot, "running")
        line = next(x for x in screen_text(app).splitlines() if "Strategy scalper" in x)
        assert line.strip() == ("Strategy scalper running  Net -12.30 / limit -100.00  Expo 1,234.50 "
                                "/ 5,000.00  Last RISK REFUSED max_order_notional 1200 > 1000")


async def test_the_first_status_comes_from_the_engine() -> None:
    engine = two_positions()
    engine.risk = status(TradingState.HALTED, last="KILL SWITCH by the trader")
    app = build_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await painted(app, pilot, "HALTED")
        # halted: the reason comes before the exposure; at 80 columns it takes the next row whole
        lines = screen_text(app).splitlines()
        first = next(i for i, x in enumerate(lines) if "Strategy scalper" in x)
        assert "HALTED  Net -12.30 / limit -100.00" in lines[first]
        assert lines[first + 1].strip().startswith("Last KILL SWITCH by the trader  Expo 1,234.50")


async def test_a_halt_rings_the_bell_and_raises_a_notice_even_under_a_dialog() -> None:
    engine = two_positions()
    app = build_app(engine)
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        engine.emit(RiskEvent(T0, RiskEventKind.REFUSED, "max_order_notional", None, None,
                              TradingState.RUNNING, "refused"))
        app.flush_now()
        assert rings == []  # a refusal is not a halt
        await pilot.press("c")  # a dialog is up: the panes do not drain
        assert isinstance(app.screen, ConfirmScreen)
        engine.emit(halt())
        app.flush_now()
        await pilot.pause()
        assert rings == [1]
        assert any("TRADING HALTED (daily_loss_limit)" in n for n in notes(app))
        await pilot.press("n")
        engine.emit(halt(RiskEventKind.KILL))
        app.flush_now()
        assert rings == [1, 1]


def test_risk_status_is_one_state_in_the_feed() -> None:
    feed = FeedBuffer()
    for n in range(1000):
        feed.push(status(net=str(n)))
    batch = feed.drain()
    (only,) = [e for e in batch.states.values() if isinstance(e, RiskStatus)]
    assert only.today_net == Decimal(999)
    feed.push(halt())
    assert not feed.drain().notices and [e.rule for e in feed.take_risk_events()] == [
        "daily_loss_limit"]
    assert feed.take_risk_events() == []
