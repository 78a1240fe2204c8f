"""The action registry (console/actions.py): every binding has an id and is rebindable, the ids
config.toml accepts are the registry's, and a keymap or theme that cannot be honoured says so."""
from __future__ import annotations

from pathlib import Path

import pytest
from textual.binding import Binding

from console.actions import ACTION_IDS, ACTIONS, TRADING_ACTIONS
from console.app import PerpdeskApp, build_app
from console.bindings import clashes
from console.cli import main
from console.screens.confirm import ConfirmScreen
from console.screens.help import HelpScreen
from console.screens.history import HistoryScreen
from console.screens.kill import KillScreen
from console.screens.order import OrderEntryScreen
from console.screens.partial import PartialCloseScreen
from console.screens.reconcile import ReconcileScreen
from console.screens.tpsl import TpSlScreen
from console.widgets.table import LinePane
from core.events import ClosePosition
from core.settings.config import Settings, UISettings, load_settings
from tests.helpers.console_helpers import (
    BTC,
    ETH,
    SIZE,
    life,
    screen_text,
    two_positions,
)
from tests.helpers.pilot import notifications

BOUND = (PerpdeskApp, ConfirmScreen, HistoryScreen, ReconcileScreen, HelpScreen,
         OrderEntryScreen, PartialCloseScreen, KillScreen, TpSlScreen, LinePane)


def test_registry_ids_are_unique() -> None:
    assert len(set(ACTION_IDS)) == len(ACTION_IDS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[keymap]\nkill_swich = "k"\n', 'did you mean "kill_switch"?'),
        ('[keymap]\nclsoe = "z"\n', 'unknown binding id [keymap] "clsoe" — did you mean "close"?'),
        ('[keymap]\nconfirm.yes = "Y"\n', 'unknown binding id [keymap] "confirm" — did you mean'),
    ],
)
def test_config_accepts_only_the_registry_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              text: str, expected: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    assert main(["--config", str(config), "report"]) == 2  # before any command runs
    err = capsys.readouterr().err
    assert expected in err and str(config) in err and len(err.strip().splitlines()) == 1


def test_config_accepts_every_registry_id(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[keymap]\n" + "".join(f'{i} = "f{n % 12 + 1}"\n' for n, i in enumerate(ACTION_IDS)),
                      encoding="utf-8")
    settings = load_settings(config, ui_state=False, keymap_ids=ACTION_IDS)
    assert sorted(settings.keymap) == sorted(ACTION_IDS)


@pytest.mark.parametrize("owner", BOUND, ids=lambda c: c.__name__)
def test_every_binding_has_a_registry_id(owner: type) -> None:
    found = [b for b in owner.BINDINGS if isinstance(b, Binding)]
    assert found and len(found) == len(owner.BINDINGS)
    assert all(b.id in ACTION_IDS for b in found), [b.key for b in found if b.id not in ACTION_IDS]


def test_trading_actions_come_from_the_registry() -> None:
    assert TRADING_ACTIONS == {"close_position", "partial_close", "close_all", "order_entry",
                               "pause_resume", "kill_switch", "tp_sl"}
    assert {a.id for a in ACTIONS if a.trading} == {"close", "partial_close", "close_all",
                                                    "order_entry", "pause", "kill_switch",
                                                    "tp_sl"}


def test_clashes_name_both_actions_and_only_real_ones() -> None:
    assert clashes({}) == []
    assert clashes({a.id: a.keys for a in ACTIONS}) == []  # the defaults, spelled out
    (one,) = clashes({"close_all": "c"})
    assert '"c"' in one and "close" in one and "close_all" in one
    (two,) = clashes({"confirm_no": "y"})
    assert "confirm_yes" in two and "confirm_no" in two
    assert clashes({"cursor_down": "c"}) != []  # panes and the main screen are live together
    assert clashes({"confirm_yes": "c"}) == []  # a dialog cuts the main screen's keys off
    assert clashes({"close": "question_mark", "help": "?"}) != []  # "?" is question_mark


async def test_dialog_and_table_keys_are_rebindable() -> None:
    engine = two_positions()
    app = build_app(engine, Settings(keymap={"confirm_yes": "Y", "cursor_down": "J"}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("j")
        assert app.positions.selected.symbol == BTC  # j no longer moves
        await pilot.press("J")
        assert app.positions.selected.symbol == ETH
        await pilot.press("c", "y")
        assert isinstance(app.screen, ConfirmScreen)  # y no longer confirms
        assert "Close (Y)" in screen_text(app)  # the dialog names the rebound key
        await pilot.press("Y")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert engine.commands == [ClosePosition(ETH, "net", None, life(ETH))]


async def test_help_shows_rebound_keys() -> None:
    app = build_app(two_positions(), Settings(keymap={"close": "z", "cursor_down": "J"}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = dict((d, k) for k, d in app.screen.keys)
        assert keys["Close"] == "z" and keys["Down"] == "J"  # the keymap replaces both keys
        assert keys["Up"] == "↑ k"


def warnings(app: PerpdeskApp) -> list[str]:
    return [n.message for n in notifications(app) if n.severity == "warning"]


async def test_a_keymap_giving_one_key_to_two_actions_warns_naming_both() -> None:
    app = build_app(two_positions(), Settings(keymap={"close_all": "c"}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        (warning,) = warnings(app)
    assert 'key "c"' in warning and "close" in warning and "close_all" in warning


async def test_an_unknown_theme_warns_naming_it_and_the_known_ones() -> None:
    app = build_app(two_positions(), Settings(ui=UISettings(theme="perpdesk-drak")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        (warning,) = warnings(app)
        assert app.theme == "perpdesk-dark"
    assert '"perpdesk-drak" is unknown' in warning
    assert "perpdesk-light" in warning and "perpdesk-contrast" in warning
