"""Send only the refreshed cells of a line to the terminal, not the line up to them.

Why: Textual's compositor keeps, per screen line, one strip per widget ("chop") and, for a partial
update, writes each touched chop from the widget's left edge up to the end of the dirty span
(``ChopsUpdate.render_segments``, Textual 8): a mark in the middle of a position row went out with
the whole row to its left, ~300 bytes for one changed digit. The version installed here starts
each chop at the span's first cell instead, so a widget that refreshes a narrow region (LinePane's
changed cells, the header's changed figure) costs only those cells on the wire.

The style is carried across segments and cursor moves, so a segment sets only what differs from
the text before it: Textual writes a full SGR and a reset around each segment (~38 bytes in
truecolor, most of a one-digit update).

It replaces one private method of Textual; ``install()`` does nothing when that method is missing
(another Textual), and tests/unit/console/test_console_draw.py fails when its output changes.
"""
from __future__ import annotations

from typing import Any

from rich.color import ColorSystem
from rich.console import Console
from rich.control import Control
from rich.style import Style
from textual import _compositor  # noqa: PLC2701 - no public hook for the partial-update writer
from textual.geometry import Region

_installed = False
textual_render_segments: Any = None  # Textual's own, kept (tests compare the two on a terminal)
textual_render_partial_update: Any = None


_SGR_ATTRS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "21", "51", "52", "53")  # Rich's bit order
_Pen = tuple[frozenset[str], str, str]  # (attributes, foreground codes, background codes)
_DEFAULT: _Pen = (frozenset(), "39", "49")


def _pen(style: Style, system: ColorSystem) -> _Pen:
    bits = style._attributes & style._set_attributes  # noqa: SLF001 - as Textual's Strip reads it
    attrs = frozenset(_SGR_ATTRS[n] for n in range(bits.bit_length()) if bits & (1 << n))
    fg = style._color  # noqa: SLF001
    bg = style._bgcolor  # noqa: SLF001
    return (attrs, ";".join(fg.downgrade(system).get_ansi_codes()) if fg else "39",
            ";".join(bg.downgrade(system).get_ansi_codes(False)) if bg else "49")


def _change(pen: _Pen, to: _Pen) -> str:
    """The shortest SGR sequence from ``pen`` to ``to`` (only what differs)."""
    if pen == to:
        return ""
    if not pen[0] <= to[0]:  # an attribute to switch off: reset, then set everything
        pen = _DEFAULT
        codes = ["0"]
    else:
        codes = []
    codes.extend(sorted(to[0] - pen[0]))
    if to[1] != pen[1]:
        codes.append(to[1])
    if to[2] != pen[2]:
        codes.append(to[2])
    return f"\x1b[{';'.join(codes)}m" if codes else ""


def render_segments(self: Any, console: Console) -> str:
    """``ChopsUpdate.render_segments`` with each chop cropped to the span on the left as well,
    and the style carried across segments and cursor moves: a segment sets only the colours and
    attributes that differ from the text written before it (Textual writes the full style and a
    reset around every segment, ~38 bytes in truecolor); one reset ends the update."""
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    chops, chop_ends = self.chops, self.chop_ends
    last_y = self.spans[-1][0]
    system = console._color_system or ColorSystem.TRUECOLOR  # noqa: SLF001 - as Textual's Strip
    pen = _DEFAULT
    pens: dict[Style, _Pen] = {}
    for y, x1, x2 in self.spans:
        for end, (x, strip) in zip(chop_ends[y], chops[y].items(), strict=False):
            if strip is None or x >= x2 or end <= x1:
                continue
            start = max(x, x1)
            if start > x or end > x2:
                strip = strip.crop(start - x, min(end, x2) - x)
            append(move_to(start, y).segment.text)
            for text, style, control in strip:
                if control:
                    continue
                if style is None or style._link:  # noqa: SLF001 - a hyperlink: Textual's own way
                    if pen != _DEFAULT:
                        append("\x1b[0m")
                        pen = _DEFAULT
                    append(text if style is None else strip.render_style(style, text, system))
                    continue
                to = pens.get(style)
                if to is None:
                    to = pens[style] = _pen(style, system)
                append(_change(pen, to))
                pen = to
                append(text)
        if y != last_y:
            append("\n")
    if pen != _DEFAULT:
        append("\x1b[0m")
    return "".join(sequences)


def render_partial_update(self: Any) -> Any:
    """``Compositor.render_partial_update`` that renders only what the dirty spans need.

    Textual renders every widget overlapping the dirty area whole (all its lines, through its
    line cache) and then keeps the chops of the dirty lines: a one-digit mark update rendered the
    screen, the containers, the pane box and the pane, ~8 widgets and hundreds of lines a frame.
    Here a widget is rendered only when it owns a chop of a dirty span not filled by a widget in
    front of it, and only over the dirty lines it covers."""
    dirty = self._dirty_regions.copy()  # noqa: SLF001 - the method this replaces reads them so
    self._dirty_regions.clear()  # noqa: SLF001
    if not dirty:
        return None
    screen = self.size.region
    spans = list(self._regions_to_spans(dirty))  # noqa: SLF001
    cuts = self.cuts
    # the chops and chop ends of the dirty lines only, by line (ChopsUpdate reads them by the
    # spans' y): a one-digit update built 50 of each at 160x50
    on_screen = {y for y, _, _ in spans if 0 <= y < len(cuts)}
    chops: dict[int, dict[int, Any]] = {y: dict.fromkeys(cuts[y][:-1]) for y in on_screen}
    chop_ends: dict[int, list[int]] = {y: cuts[y][1:] for y in on_screen}
    needed: dict[int, list[int]] = {}  # y -> the cuts whose chop meets a dirty span
    for y, x1, x2 in spans:
        if y in on_screen:
            line = cuts[y]
            needed.setdefault(y, []).extend(a for a, b in zip(line, line[1:], strict=False) if a < x2 and b > x1)
    if needed:
        crop = Region.from_union(list(dirty)).intersection(screen)
        dirty_lines = sorted(needed)
        for widget, (region, clip) in self.visible_widgets.items():  # front to back
            if not crop.overlaps(clip):
                continue
            area = region.intersection(clip)
            first_cut, last_cut = area.column_span
            top, bottom = area.y, area.bottom
            lines = [y for y in dirty_lines if top <= y < bottom and any(
                first_cut <= c < last_cut and chops[y][c] is None for c in needed[y])]
            if not lines:
                continue  # hidden behind widgets in front, or not on a dirty span
            y0, y1 = lines[0], lines[-1] + 1
            strips = widget.render_lines(Region(area.x - region.x, y0 - region.y, area.width, y1 - y0))
            for y, strip in zip(range(y0, y1), strips, strict=False):
                if y not in needed:
                    continue
                line_chops = chops[y]
                final = [c for c in cuts[y] if last_cut >= c >= first_cut]
                for cut, part in zip(final, strip.divide([c - area.x for c in final[1:]]), strict=False):
                    if line_chops.get(cut) is None:
                        line_chops[cut] = part
    return _compositor.ChopsUpdate(chops, spans, chop_ends)  # type: ignore[arg-type]


def install() -> None:
    """Use ``render_segments`` above for every partial screen update (idempotent)."""
    global _installed, textual_render_segments
    update = getattr(_compositor, "ChopsUpdate", None)
    if _installed or update is None or not hasattr(update, "render_segments"):
        return
    textual_render_segments = update.render_segments
    update.render_segments = render_segments
    global textual_render_partial_update
    textual_render_partial_update = _compositor.Compositor.render_partial_update
    _compositor.Compositor.render_partial_update = render_partial_update  # type: ignore[method-assign]
    _installed = True
