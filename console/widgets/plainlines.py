"""A Line-API widget's lines without Textual's styles cache, when none of its styles apply.

Why: for every repaint Textual passes each widget's lines through its styles cache
(``Widget.render_lines`` -> ``StylesCache.render_widget``): it looks up the widget's background
through its ancestors, its line filters, its border, outline, padding, tint, hatch and opacity,
builds a new Strip for every line and keeps it in a second cache, before any of that turns out to
do nothing. Our panes, the header and the chart draw their own finished lines (cached per row or
per line) and have no border (the pane's box draws it), no tint and no opacity: under a live mark
feed that wrapping was about a third of the time a push costs the console, for the same cells.

``plain_lines`` gives what Textual's path gives for such a widget, cell for cell: the content
line, padded to the content width with the widget's inner background, the left and right padding
around it, the app's line filters applied (Textual's ANSI-to-theme colours, always on), cropped to the
asked columns. Anything else Textual's path would do (a border, an
outline, top or bottom padding, a tint, a hatch, text opacity or opacity below 1, a hovered
link) returns None and the caller goes through
Textual. Public API only; tests/unit/console/test_console_plainlines.py compares the two paths on
the running console and fails when a Textual upgrade renders these widgets differently.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from weakref import WeakKeyDictionary

from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter
from textual.geometry import Region
from textual.strip import Strip
from textual.style import Style as TextualStyle
from textual.widget import Widget

from console.textual_private.stylekey import styles_key


@lru_cache(256)
def _inner(base: Color, background: Color) -> Style:
    """The style Textual pads a content line with (its styles cache's "inner" background)."""
    return TextualStyle(background=base + background).rich_style


def _plain(widget: Widget) -> bool:
    """True when Textual's styles cache would only pad, filter and crop the widget's lines."""
    styles = widget.styles
    padding = styles.padding
    if padding.top or padding.bottom or styles.tint.a or styles.text_opacity != 1.0:
        return False
    border = styles.border
    outline = styles.outline
    if (border.top[0] or border.right[0] or border.bottom[0] or border.left[0]
            or outline.top[0] or outline.right[0] or outline.bottom[0] or outline.left[0]):
        return False
    return not (styles.has_rule("hatch") and styles.hatch != "none") and widget.opacity == 1.0


# What _plain said, the padding and the backgrounds, per widget, for one revision of the styles of
# the widget and its ancestors (stylekey.py): a CSS rule changed anywhere above it asks again.
_Decided = tuple[tuple[int, ...], bool, int, int, Color, Color]
_decided: WeakKeyDictionary[Widget, _Decided] = WeakKeyDictionary()


def _decide(widget: Widget) -> _Decided:
    key = styles_key(widget)
    kept = _decided.get(widget)
    if kept is not None and key is not None and kept[0] == key:
        return kept
    plain = _plain(widget)
    _, pad_right, _, pad_left = widget.styles.padding
    base, background = widget.background_colors
    decided = (key or (), plain, pad_left, pad_right, base, background)
    if key is not None:
        _decided[widget] = decided
    return decided


def _make(content: Strip, width: int, content_width: int, pad_left: int, base: Color,
          background: Color, filters: Sequence[LineFilter]) -> Strip:
    """One line as Textual's styles cache makes it: the content padded to the content width,
    the left and right padding, the line filters."""
    pad_right = width - content_width - pad_left
    strip = content
    if strip.cell_length != content_width or pad_left or pad_right:
        inner = _inner(base, background)
        strip = strip.adjust_cell_length(content_width, inner)
        if pad_left or pad_right:
            segments = list(strip)
            if pad_left:
                segments.insert(0, Segment(" " * pad_left, inner))
            if pad_right:
                segments.append(Segment(" " * pad_right, inner))
            strip = Strip(segments, width)
    for line_filter in filters:  # as Textual applies them (ANSI colours to the theme's)
        strip = strip.apply_filter(line_filter, background)
    return strip


# widget -> y -> (the content strip, what else the line was made of, the line as drawn)
_made: WeakKeyDictionary[Widget, dict[int, tuple[Strip, tuple[object, ...], Strip]]] = WeakKeyDictionary()


def plain_lines(widget: Widget, crop: Region) -> list[Strip] | None:
    """``widget.render_lines(crop)`` without the styles cache, or None when a style applies.

    A line whose content strip (the same object: our widgets keep theirs until they change),
    width, padding, background and filters are those of the last time is the strip made then."""
    _, plain, pad_left, pad_right, base, background = _decide(widget)
    if not plain or widget.border_title or widget.border_subtitle or (
            widget.auto_links and widget.hover_style.link_id):
        return None
    width, height = widget.region.size
    content_width = width - pad_left - pad_right
    if content_width <= 0 or crop.bottom > height:
        return None
    render_line = widget.render_line
    filters = widget.get_line_filters()
    made = _made.get(widget)
    if made is None:
        made = _made[widget] = {}
    key = (width, pad_left, pad_right, base, background, *filters)
    strips: list[Strip] = []
    for y in crop.line_range:
        content = render_line(y)
        kept = made.get(y)
        if kept is not None and kept[0] is content and kept[1] == key:
            strips.append(kept[2])
            continue
        strip = _make(content, width, content_width, pad_left, base, background, filters)
        made[y] = (content, key, strip)
        strips.append(strip)
    x1, x2 = crop.column_span
    if (x1, x2) != (0, width):
        strips = [strip.crop(x1, x2) for strip in strips]
    return strips
