"""The console offers what the engine's venue can do: a key for something the venue cannot do is
hidden from the footer, the help and the palette, and pressing it says one plain line and sends
nothing; where contracts are coins (Bybit) the panes show one Coins column, not two."""
from __future__ import annotations

from dataclasses import fields, replace

import pytest

from console import actions, bindings
from console.app import build_app
from console.screens.help import HelpScreen
from console.screens.tpsl import TpSlScreen
from console.widgets.positions import PositionsPane
from core.venue.base import VenueCapabilities
from core.venue.bybit import BybitVenue
from core.venue.okx import OkxVenue
from tests.helpers.console_helpers import BTC, ETH, SIZE, FakeEngine, footer, screen_text, snapshot
from tests.helpers.pilot import notes, settle

NEEDING = [a for a in actions.ACTIONS if a.needs]


def engine_on(caps: VenueCapabilities) -> FakeEngine:
    engine = FakeEngine([snapshot(BTC), snapshot(ETH, contracts="30", entry="3000", mark="2990.55")])
    engine.capabilities = caps  # type: ignore[attr-defined]
    return engine


def test_every_capability_an_action_needs_is_a_flag() -> None:
    assert NEEDING, "no action depends on a venue capability"
    flags = {f.name for f in fields(VenueCapabilities) if isinstance(getattr(VenueCapabilities("x"), f.name), bool)}
    assert {a.needs for a in NEEDING} <= flags
    assert all(a.refusal and "{venue}" in a.refusal for a in NEEDING)


def test_the_real_venues_declare_what_they_can_do() -> None:
    okx, bybit = OkxVenue.capabilities, BybitVenue.capabilities
    assert okx.hedge_mode and okx.isolated_margin and not okx.contracts_are_coins
    assert bybit.hedge_mode and not bybit.isolated_margin and bybit.contracts_are_coins
    assert bybit.position_tp_sl and bybit.order_tp_sl
    with pytest.raises(AttributeError):
        bybit.hedge_mode = True  # type: ignore[misc]


@pytest.mark.parametrize("action", NEEDING, ids=[a.id for a in NEEDING])
async def test_a_key_the_venue_cannot_do_is_hidden_and_refused(action: actions.Action) -> None:
    caps = replace(VenueCapabilities("Testex"), **{action.needs: False})
    engine = engine_on(caps)
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        assert action.description not in await footer(app, pilot)
        for key in bindings.keys_of(action, {}):
            await pilot.press(key)
            await settle(app, pilot)
            assert len(app.screen_stack) == 1 and not isinstance(app.screen, TpSlScreen)
        refusal = action.refusal.format(venue="Testex")
        assert notes(app).count(refusal) == 1  # one plain line (repeats within seconds are one)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert action.description not in {d for _, d in app.screen.keys}
    assert engine.commands == []
    assert action.palette is not None
    assert action.palette[0] not in {a.palette[0] for a in actions.palette(False, caps) if a.palette}
    assert action.palette[0] in {a.palette[0] for a in actions.palette(False, None) if a.palette}


async def test_the_same_key_works_where_the_venue_can_do_it() -> None:
    engine = engine_on(OkxVenue.capabilities)
    app = build_app(engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("T")
        await settle(app, pilot)
        assert isinstance(app.screen, TpSlScreen)
        assert not any("TP/SL" in n for n in notes(app))


@pytest.mark.parametrize(("caps", "titles"), [
    (OkxVenue.capabilities, ["Contracts", "Coins"]),
    (BybitVenue.capabilities, ["Coins"]),
], ids=["okx", "bybit"])
async def test_contracts_are_one_column_where_they_are_coins(caps: VenueCapabilities,
                                                             titles: list[str]) -> None:
    app = build_app(engine_on(caps))
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        pane = app.query_one(PositionsPane)
        shown = [t for t in pane.visible_titles if t in ("Contracts", "Coins")]
        assert shown == titles
        assert "Symbol" in pane.visible_titles and "Mark" in pane.visible_titles


@pytest.mark.parametrize(("caps", "size"), [
    (OkxVenue.capabilities, "10.0 ct (0.100 BTC)"),
    (BybitVenue.capabilities, "0.100 BTC "),
], ids=["okx", "bybit"])
async def test_the_close_dialog_says_the_size_once_where_contracts_are_coins(
        caps: VenueCapabilities, size: str) -> None:
    app = build_app(engine_on(caps))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await settle(app, pilot)
        text = screen_text(app)
        assert f"BTC/USDT long  {size}" in text
        assert (" ct (" in text) is (not caps.contracts_are_coins)


@pytest.mark.parametrize(("caps", "size", "placeholder", "refusal"), [
    (OkxVenue.capabilities, "BUY BTC/USDT  3.0 ct (0.030 BTC)", "contracts",
     "size must be a multiple of 0.1 contracts"),
    (BybitVenue.capabilities, "BUY BTC/USDT  0.030 BTC", "size in coins",
     "size must be a multiple of 0.1 BTC"),
], ids=["okx", "bybit"])
async def test_the_order_form_counts_in_the_coin_where_contracts_are_coins(
        caps: VenueCapabilities, size: str, placeholder: str, refusal: str) -> None:
    app = build_app(engine_on(caps))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        assert app.screen.query_one("#size").placeholder == placeholder
        await pilot.press(*"0.005", "enter")
        await pilot.pause()
        assert f"✗ {refusal}" in screen_text(app)
        await pilot.press(*["backspace"] * 5, "3", "enter")
        await pilot.pause()
        assert size in screen_text(app)
