"""The panes, the header and the chart hand their lines to the compositor without Textual's styles
cache (console/widgets/plainlines.py): the same cells as Textual's path, which these compare line
by line on the running console. A Textual upgrade that renders these widgets differently fails
here."""
from __future__ import annotations

from textual.color import Color
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from console.app import build_app
from console.widgets.header import HeaderBar
from console.widgets.plainlines import plain_lines
from console.widgets.pnlchart import PnlChart
from console.widgets.table import LinePane
from core.model import PositionSide
from tests.helpers.console_helpers import BTC, ETH, FakeEngine, fill, snapshot


def _textual(widget: Widget, crop: Region) -> list[Strip]:
    """Textual's own path (its styles cache), every line of ``crop`` rendered afresh."""
    widget.refresh()
    return Widget.render_lines(widget, crop)


def _crops(widget: Widget) -> list[Region]:
    width, height = widget.region.size
    return [Region(0, 0, width, height), Region(0, 0, width, 1), Region(3, 0, max(1, width - 9), height),
            Region(width - 2, height - 1, 2, 1)]


def _same(widget: Widget) -> int:
    """Compare both paths over a few crops; the number of lines compared."""
    lines = 0
    for crop in _crops(widget):
        ours = plain_lines(widget, crop)
        assert ours is not None, f"{type(widget).__name__} went through the styles cache"
        theirs = _textual(widget, crop)
        assert [list(s) for s in ours] == [list(s) for s in theirs], (type(widget).__name__, crop)
        assert [s.cell_length for s in ours] == [s.cell_length for s in theirs]
        lines += len(ours)
    return lines


async def test_plain_lines_are_textuals_lines_for_every_pane_the_header_and_the_chart() -> None:
    engine = FakeEngine([snapshot(BTC), snapshot(ETH, PositionSide.SHORT, "30", "3000", "2990.55")])
    for n in range(60):  # the fills pane overflows: a scrollbar, rows narrower than the widget
        engine.emit(fill(n))
    for size in ((160, 50), (80, 24)):  # at 80 columns the header takes two lines
        app = build_app(engine)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            for n in range(60):
                engine.emit(fill(n))
            engine.emit(snapshot(BTC, mark="60612.3"))
            app.flush_now()
            await pilot.pause(0.1)
            panes = list(app.screen.query(LinePane))
            assert panes and any(p.row_count >= 2 for p in panes)
            assert any(p.scrollable_content_region.width < p.region.width for p in panes)
            header = app.screen.query_one(HeaderBar)
            assert header.styles.padding.left  # padded: the padding is drawn here as Textual does
            compared = sum(_same(w) for w in [*panes, header, app.screen.query_one(PnlChart)])
            assert compared > 50
            await pilot.press("tab")  # a focused pane: its cursor row in the focused style
            await pilot.pause()
            assert sum(_same(w) for w in panes) > 20


async def test_a_style_plain_lines_does_not_draw_goes_through_textual() -> None:
    """A tint, opacity, a border, top padding or a line filter: Textual's path, same cells."""
    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        pane = next(p for p in app.screen.query(LinePane) if p.row_count)
        crop = Region(0, 0, pane.region.width, 2)
        for css, value in (("tint", Color(255, 0, 0, 0.3)), ("opacity", 0.5),
                           ("border", ("round", "red")), ("padding", (1, 0, 0, 0))):
            setattr(pane.styles, css, value)
            await pilot.pause()
            assert plain_lines(pane, Region(0, 0, pane.region.width, 2)) is None, css
            pane.refresh()
            assert pane.render_lines(crop) == _textual(pane, crop)
            for rule in ([f"border_{e}" for e in ("top", "right", "bottom", "left")]
                         if css == "border" else [css]):
                pane.styles.clear_rule(rule)
            await pilot.pause()
            assert plain_lines(pane, crop) is not None, css
        box = pane.parent
        assert isinstance(box, Widget)
        box.styles.background = Color(0, 0, 255, 0.5)  # an ancestor's background: the padding's
        await pilot.pause()
        header = app.screen.query_one(HeaderBar)
        header.styles.background = Color(0, 128, 0, 0.5)
        await pilot.pause()
        for widget in (pane, header):
            whole = Region(0, 0, *widget.region.size)
            assert plain_lines(widget, whole) == _textual(widget, whole)
