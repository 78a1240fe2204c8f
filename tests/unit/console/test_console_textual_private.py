"""The private Textual names console/textual_private/ wraps still do what the console relies on:
an upgrade that renames or changes them fails here, not as a key hint that ignores [keymap] or a
first dialog that is slow again."""
from __future__ import annotations

import time

from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Label

from console.textual_private import app_keymap, normalize_key_list
from console.textual_private.offscreen import prepare_offscreen


def test_normalize_key_list_gives_the_names_textual_binds() -> None:
    assert normalize_key_list("?,ctrl+x") == "question_mark,ctrl+x"
    assert normalize_key_list("slash") == "slash"


def test_app_keymap_reads_back_what_set_keymap_installed() -> None:
    app: App[None] = App()
    assert dict(app_keymap(app)) == {}
    app.set_keymap({"close": "z", "help": "?"})
    keymap = app_keymap(app)
    assert keymap["close"] == "z" and "help" in keymap


class _Dialog(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Label("Close position?", id="title")


async def test_prepare_offscreen_lays_out_a_screen_that_is_not_shown() -> None:
    app: App[None] = App()
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = _Dialog()
        app.install_screen(dialog, name="dialog")
        mounted = app.push_screen(dialog)
        app.pop_screen()
        await mounted
        await pilot.pause()
        main = app.screen
        prepare_offscreen(dialog, below=[main])  # AttributeError if Textual renames what it uses
        assert app.screen is main
        assert dialog.size == app.size
        assert dialog.query_one("#title").size.width == len("Close position?")


async def test_a_timer_ticks_a_period_after_its_first_start_and_at_once_once_it_has_ticked() -> None:
    """Why prepare_offscreen starts the screen's update timer ahead of its first showing: the
    first tick of a Textual timer comes one whole period after it starts; a timer that has ticked
    and waited out its period ticks at once when resumed."""
    period = 0.1
    app: App[None] = App()
    async with app.run_test() as pilot:
        ticks: list[float] = []

        def tick() -> None:
            ticks.append(time.perf_counter())
            timer.pause()

        timer = app.set_interval(period, tick, pause=True)
        await pilot.pause(0.05)
        started = time.perf_counter()
        timer.resume()
        await pilot.pause(period * 2)
        assert ticks and ticks[0] - started >= period * 0.9
        resumed = time.perf_counter()
        timer.resume()
        await pilot.pause(period / 2)
        assert len(ticks) == 2 and ticks[1] - resumed < period / 2


async def test_repaint_hands_the_cells_to_the_screen_without_the_message_round_trip() -> None:
    """A mark push's repaint goes straight into the screen's dirty set (no Prompt, idle handler
    and Update message first) and is drawn by the screen's update timer; under a dialog (another
    screen current) it goes through refresh(), and the change shows once the dialog is gone."""
    from textual.geometry import Region

    from console.app import build_app
    from console.textual_private.repaint import repaint
    from tests.helpers.console_helpers import BTC, FakeEngine, screen_text, snapshot

    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        pane, screen = app.positions, app.screen
        repaint(pane, Region(0, 1, 5, 1))
        assert pane in screen._dirty_widgets and not pane._repaint_required  # noqa: SLF001
        assert screen._update_timer._active.is_set()  # noqa: SLF001
        await pilot.pause()
        assert not screen._dirty_widgets  # noqa: SLF001 - drawn by the update timer
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is not screen
        repaint(pane, Region(0, 1, 5, 1))
        assert pane not in screen._dirty_widgets and pane._repaint_required  # noqa: SLF001 - refresh()'s way
        engine.emit(snapshot(BTC, mark="61234.5"))
        await pilot.press("escape")
        app.flush_now()
        await pilot.pause()
        assert "61,234.5" in screen_text(app)


async def test_styles_key_changes_with_a_rule_of_the_widget_or_an_ancestor_and_only_then() -> None:
    """console/widgets/plainlines.py reuses what it decided about a widget's styles while this key
    is the same: it must move when a rule of the widget or of any ancestor changes."""
    from console.textual_private.stylekey import styles_key

    class Two(App[None]):
        def compose(self) -> ComposeResult:
            yield Label("x")

    app = Two()
    async with app.run_test(size=(40, 5)) as pilot:
        await pilot.pause()
        label = app.query_one(Label)
        first = styles_key(label)
        assert first is not None and len(first) >= 2  # the label and its ancestors
        await pilot.pause()
        assert styles_key(label) == first  # nothing changed, the same key
        label.styles.background = "red"
        second = styles_key(label)
        assert second != first
        app.screen.styles.opacity = 0.5  # an ancestor's rule
        assert styles_key(label) != second
        third = styles_key(label)
        app.theme = "textual-light" if app.theme != "textual-light" else "nord"  # the stylesheet again
        await pilot.pause()
        assert styles_key(label) != third
