"""What a change costs on the wire: only the cells that changed go to the terminal.

The app runs as on a real terminal (tests/helpers/screen_bytes.py: every frame rendered to ANSI
and kept), so these read the bytes a trader's SSH link would carry."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate, Compositor  # noqa: PLC2701 - what console/textual_private/chops.py replaces
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from console.app import build_app
from console.screens.warm import is_prepared
from console.textual_private import chops
from core.model import PositionSide
from tests.helpers.console_helpers import BTC, ETH, FakeEngine, account, fill, screen_text, snapshot
from tests.helpers.screen_bytes import Frames, moves, paint, recording_driver, text_of


def test_a_partial_update_writes_only_the_span_not_the_line_up_to_it() -> None:
    chops.install()
    strip = Strip([Segment("abcdefghij", Style(color="red"))], 10)
    update = ChopsUpdate([{0: strip}], [(0, 4, 6)], [[10]])
    out = update.render_segments(Console(color_system="truecolor", force_terminal=True))
    assert moves(out) == [(4, 0)]
    assert text_of(out) == "ef"


async def _up(engine: FakeEngine, frames: Frames, size: tuple[int, int]) -> Any:
    app = build_app(engine)
    app.driver_class = recording_driver(frames)
    run = asyncio.create_task(app.run_async(size=size, mouse=False))
    for _ in range(300):
        if app.is_running and "BTC/USDT" in screen_text(app) and frames.frames and all(
                is_prepared(screen) for screen in (app.confirm_screen(), *app.trading.kept_dialogs())):
            break
        await asyncio.sleep(0.01)
    # the first frames, the dialogs' preparation at idle (its screens pushed and popped: one
    # repaint of the main screen) and the header's tick interval pass
    await asyncio.sleep(0.3)
    return app, run


async def _next_frame(frames: Frames) -> str:
    for _ in range(200):
        if frames.frames:
            await asyncio.sleep(0.05)  # the frame may be split in a few writes
            return frames.take()
        await asyncio.sleep(0.01)
    return frames.take()


async def test_a_mark_changing_one_digit_sends_that_digit_not_the_row() -> None:
    engine = FakeEngine([snapshot(BTC, mark="60500.1"),
                         snapshot(ETH, PositionSide.SHORT, "30", "3000", "2990.55")])
    frames = Frames()
    app, run = await _up(engine, frames, (160, 50))
    try:
        frames.take()
        engine.emit(snapshot(BTC, mark="60500.2"))
        app.flush_now()
        frame = await _next_frame(frames)
        lines = screen_text(app).splitlines()
        y = next(n for n, line in enumerate(lines) if "BTC/USDT" in line)
        x = lines[y].index("60,500.2") + len("60,500.2") - 1
        row = [m for m in moves(frame) if m[1] == y]
        assert row and row[0] == (x, y)  # the row's output starts at the changed digit
        assert "BTC" not in text_of(frame) and "60,500" not in text_of(frame)
        assert len(frame.encode()) < 400  # was ~1,100 bytes: the row and the header line whole
    finally:
        app.exit()
        await run


async def test_a_row_whose_cells_did_not_change_sends_nothing() -> None:
    engine = FakeEngine([snapshot(BTC), snapshot(ETH, PositionSide.SHORT, "30", "3000", "2990.55")])
    frames = Frames()
    app, run = await _up(engine, frames, (160, 50))
    try:
        frames.take()
        # a new push of the same position: more digits than shown, nothing on screen moves
        engine.emit(replace(snapshot(BTC), mark_price=Decimal("60500.001")))
        app.flush_now()
        await asyncio.sleep(0.3)
        assert frames.take() == ""
    finally:
        app.exit()
        await run


async def test_a_header_figure_change_refreshes_only_its_characters() -> None:
    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        header = app.header
        regions: list[Region] = []
        original = header._set_dirty  # noqa: SLF001 - what refresh() and console/textual_private/repaint.py mark

        def spy(*regions_: Region) -> Any:
            regions.extend(regions_ or [Region(0, 0, 999, 999)])
            return original(*regions_)

        header._set_dirty = spy  # noqa: SLF001 - type: ignore[method-assign]
        before = header.state
        acct = before.account or account()
        header.show(replace(before, account=replace(acct, equity=acct.equity + Decimal("0.01"))),
                    now=1e9)
        # equity 10,234.57 -> 10,234.58: the one digit, not the header line
        assert [(r.width, r.height) for r in regions] == [(1, 1)]


def test_carried_styles_paint_the_same_cells_as_textual_with_fewer_bytes() -> None:
    chops.install()
    red, green = Style(color="#ff0000", bgcolor="#102030"), Style(color="#00ff00", bgcolor="#102030")
    bold = Style(color="#00ff00", bgcolor="#102030", bold=True)
    plain = Style()
    line1 = Strip([Segment("ab", red), Segment("cd", green), Segment("ef", bold), Segment("gh", red),
                   Segment("ij", plain)], 10)
    line2 = Strip([Segment("0123", bold), Segment("4567", red), Segment("89", green)], 10)
    console = Console(color_system="truecolor", force_terminal=True)
    for spans in ([(0, 0, 10), (1, 0, 10)], [(0, 3, 7), (1, 2, 9)], [(0, 5, 6), (1, 0, 3)]):
        update = ChopsUpdate([{0: line1}, {0: line2}], spans, [[10], [10]])
        ours = update.render_segments(console)
        theirs = chops.textual_render_segments(update, console)
        want = {(x, y) for y, x1, x2 in spans for x in range(x1, x2)}
        painted_ours, painted_theirs = paint(ours), paint(theirs)
        assert set(painted_ours) == want  # only the span's cells
        assert painted_ours == {k: v for k, v in painted_theirs.items() if k in want}
        assert ours.endswith("\x1b[0m")  # the terminal is left with no style set
        assert len(ours.encode()) < len(theirs.encode())
    # the second of two segments of one background sets only its foreground
    update = ChopsUpdate([{0: line1}], [(0, 0, 4)], [[10]])
    assert update.render_segments(console) == (
        "\x1b[1;1H\x1b[38;2;255;0;0;48;2;16;32;48mab\x1b[38;2;0;255;0mcd\x1b[0m")


async def test_partial_updates_render_only_dirty_lines_and_paint_what_textual_paints() -> None:
    """Each frame of a live console is made both ways (Textual's whole-widget render and the
    dirty-lines one): the cells painted are the same, the lines rendered far fewer."""
    chops.install()
    compositor_class = Compositor
    ours_method = compositor_class.render_partial_update
    console = Console(color_system="truecolor", force_terminal=True)
    compared: list[tuple[bool, int, int]] = []  # (same cells, lines Textual rendered, lines ours)
    rendered = [0]
    original_render_lines = Widget.render_lines

    def counting(self: Widget, crop: Region) -> Any:
        rendered[0] += crop.height
        return original_render_lines(self, crop)

    def both(self: Any) -> Any:
        dirty = set(self._dirty_regions)
        rendered[0] = 0
        theirs = chops.textual_render_partial_update(self)
        theirs_lines = rendered[0]
        self._dirty_regions.update(dirty)
        rendered[0] = 0
        ours = ours_method(self)
        if ours is not None and theirs is not None:
            compared.append((paint(ours.render_segments(console)) == paint(theirs.render_segments(console)),
                             theirs_lines, rendered[0]))
        return ours

    engine = FakeEngine([snapshot(BTC), snapshot(ETH, PositionSide.SHORT, "30", "3000", "2990.55")])
    app = build_app(engine)
    try:
        Widget.render_lines = counting  # type: ignore[method-assign]
        compositor_class.render_partial_update = both
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()
            for n in range(12):
                engine.emit(snapshot(BTC, mark=f"605{n:02d}.1"))
                engine.emit(snapshot(ETH, PositionSide.SHORT, "30", "3000", f"29{n:02d}.55"))
                if n % 3 == 0:
                    engine.emit(fill(n))
                app.flush_now()
                await pilot.pause(0.05)
    finally:
        compositor_class.render_partial_update = ours_method
        Widget.render_lines = original_render_lines  # type: ignore[method-assign]
    assert len(compared) >= 10
    assert all(same for same, _, _ in compared)
    theirs_total = sum(t for _, t, _ in compared)
    ours_total = sum(o for _, _, o in compared)
    assert ours_total * 5 < theirs_total


async def test_a_header_change_renders_again_only_the_line_it_changed() -> None:
    """At 80 columns the header takes two lines; an equity tick re-renders the first one only
    (Textual's render() path rebuilt every line of the widget on each refresh)."""
    engine = FakeEngine([snapshot(BTC)])
    app = build_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        header = app.header
        assert header.size.height == 2
        first, second = header.render_line(0), header.render_line(1)
        before = header.state
        acct = before.account or account()
        header.show(replace(before, account=replace(acct, equity=acct.equity + Decimal("0.01"))),
                    now=1e9)
        await pilot.pause()
        assert header.render_line(1) is second
        assert header.render_line(0) is not first
        assert "10,234.58" in header.render_line(0).text
