"""LinePane: the Line-API table every pane is built on.

Why not DataTable: it repaints every visible cell each frame (~75 ms at 160x50 with textual
8.2.8, docs/decisions/event-loop-pauses.md), which starves the engine sharing the loop. A LinePane keeps one rendered
Strip per row in a cache keyed by row identity, and an update refreshes only the screen line of the
row that changed. Rows that merely move (a new fill pushed on top) are cache hits. Columns that do
not fit the width are dropped by priority, so 80 columns stays readable.
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.segment import Segment
from rich.style import Style
from textual.binding import BindingType
from textual.events import Blur, Focus, Resize
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.actions import Scope
from console.bindings import bindings
from console.textual_private import chops
from console.textual_private.repaint import repaint
from console.widgets.plainlines import plain_lines

chops.install()  # partial refreshes below go out as the refreshed cells only (chops.py)


@dataclass(frozen=True, slots=True)
class Column:
    """``drop``: 0 = always shown; otherwise the higher, the sooner it goes when space is short."""

    title: str
    width: int
    align: Literal["left", "right"] = "right"
    drop: int = 0


Cell = tuple[str, str]  # (text, tone) where tone is "", "up", "down", "flat" or "dim"


@dataclass(frozen=True, slots=True)
class Row:
    symbol: str  # what the `/` filter matches
    cells: tuple[Cell, ...]


TONES = ("up", "down", "flat", "dim")
# Two changed ranges of one line closer than this many cells go out as one: a cursor move and a
# style sequence cost ~45 bytes in truecolor, more than the unchanged characters between them.
SPAN_GAP = 12


def _pad(text: str, width: int, align: str) -> str:
    text = text[:width]
    return text.rjust(width) if align == "right" else text.ljust(width)


def changed_chars(a: Sequence[object], b: Sequence[object]) -> tuple[int, int] | None:
    """[i0, i1) from the first to the last item that differs; None when the two are equal."""
    n = min(len(a), len(b))
    i0 = 0
    while i0 < n and a[i0] == b[i0]:
        i0 += 1
    if len(a) != len(b):
        return (i0, max(len(a), len(b)))
    if i0 == n:
        return None
    i1 = n
    while a[i1 - 1] == b[i1 - 1]:
        i1 -= 1
    return (i0, i1)


def merge_spans(spans: list[tuple[int, int]], gap: int = SPAN_GAP) -> list[tuple[int, int]]:
    """Sorted ``spans`` with the ones less than ``gap`` cells apart joined."""
    out: list[tuple[int, int]] = []
    for x0, x1 in sorted(spans):
        if out and x0 - out[-1][1] < gap:
            out[-1] = (out[-1][0], max(out[-1][1], x1))
        else:
            out.append((x0, x1))
    return out


class LinePane(ScrollView, can_focus=True):
    """A focusable table with a sticky header line, a cursor and a symbol filter."""

    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    FOLLOW_TOP: ClassVar[bool] = False  # a cursor on row 0 stays on row 0 (newest-first panes)
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "pane--header", "pane--cursor", "pane--cursor-blur",
        "pane--up", "pane--down", "pane--flat", "pane--dim",
    }
    BINDINGS: ClassVar[list[BindingType]] = bindings(Scope.PANE)
    DEFAULT_CSS = """
    LinePane { overflow-x: hidden; overflow-y: auto; scrollbar-size-vertical: 1; }
    """

    @dataclass
    class Selected(Message):
        """The cursor moved to another row (or to none)."""

        pane: LinePane
        key: Hashable | None

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._rows: dict[Hashable, Row] = {}
        self._order: list[Hashable] = []  # display order after the filter
        self._index: dict[Hashable, int] = {}  # key -> position in _order
        self._stale: set[Hashable] = set()  # rows whose cells are rebuilt when next drawn
        self._styles: tuple[Style, Style, Style, dict[str, Style]] | None = None
        self._cursor = 0
        self._filter = ""
        self._cache: dict[tuple[Hashable, int], Strip] = {}
        self._header: Strip | None = None
        self._cols: list[tuple[int, Column]] = list(enumerate(self.COLUMNS))
        self._hidden: frozenset[str] = frozenset()  # column titles never shown (hide_columns)
        self._width = 0
        self._col_widths: list[int] = [c.width for c in self.COLUMNS]
        self._height = 0  # content lines, kept from the last Resize (see ``_lines``)

    # ------------------------------------------------------------------ data (subclasses call)

    def all_keys(self) -> Iterable[Hashable]:
        """Every row key in natural order (subclasses with a window override this)."""
        return self._rows.keys()

    def row(self, key: Hashable) -> Row | None:
        return self._rows.get(key)

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def selected_key(self) -> Hashable | None:
        return self._order[self._cursor] if 0 <= self._cursor < len(self._order) else None

    def set_row(self, key: Hashable, row: Row) -> bool:
        """Store one row; refresh only its line when it already existed. True if it is new."""
        self._stale.discard(key)
        old = self._rows.get(key)
        if old == row:
            return False
        self._rows[key] = row
        if old is None:
            return True
        self._drop_cache(key)
        if old.symbol == row.symbol and self._matches(row):
            index = self._index.get(key)
            if index is None:
                return False
            for span in self._changed_spans(old.cells, row.cells):
                self._refresh_index(index, span)
        else:
            self.reorder()
        return False

    def _changed_spans(self, old: tuple[Cell, ...], new: tuple[Cell, ...]) -> list[tuple[int, int]]:
        """[x0, x1) ranges of the characters that differ between the two rows as shown.

        Why characters, not cells: a position row moves only its mark and PnL on a tick, and a mark
        67123.4 -> 67123.5 changes one character; only the refreshed cells go to the terminal
        (console/textual_private/chops.py), so a narrow span is what keeps the bytes over SSH down. A cell
        whose tone changed is refreshed whole (its colour changed)."""
        spans: list[tuple[int, int]] = []
        x = 0
        for n, ((i, col), w) in enumerate(zip(self._cols, self._col_widths, strict=True)):
            if n:
                x += 1
            a = old[i] if i < len(old) else ("", "")
            b = new[i] if i < len(new) else ("", "")
            if a != b:
                if a[1] != b[1]:
                    spans.append((x, x + w))
                else:
                    diff = changed_chars(_pad(a[0], w, col.align), _pad(b[0], w, col.align))
                    if diff is not None:
                        spans.append((x + diff[0], x + diff[1]))
            x += w
        if len(old) != len(new) and not spans:
            return [(0, self.size.width)]
        return merge_spans(spans)

    def is_offscreen(self, key: Hashable) -> bool:
        """A shown row outside the visible lines (its cells can wait until it scrolls in)."""
        index = self._index.get(key)
        if index is None:
            return False
        top = round(self.scroll_y)
        return not top <= index < top + max(1, self._lines() - 1)

    def mark_stale(self, key: Hashable) -> None:
        """The row's data changed while it is off screen: rebuild its cells when it is drawn
        (``fresh_row``), not now. Under a live feed most rows of a long pane are off screen."""
        self._stale.add(key)
        self._drop_cache(key)

    def fresh_row(self, key: Hashable) -> Row | None:
        """Subclasses that use ``mark_stale`` return the row's current cells here."""
        return None

    def remove_row(self, key: Hashable) -> None:
        self._stale.discard(key)
        if self._rows.pop(key, None) is not None:
            self._drop_cache(key)

    def reorder(self) -> None:
        """Recompute the visible order (after inserts, removals or a filter change), keep the
        cursor on the same row, and refresh the visible lines (cached strips make this cheap).

        Keeping the cursor on its row matters: a position appearing above the selected one must
        never turn `c` into a close of a different position."""
        selected = self.selected_key
        self._order = [k for k in self.all_keys() if self._matches(self._rows[k])]
        self._index = {k: i for i, k in enumerate(self._order)}
        follow = self.FOLLOW_TOP and self._cursor == 0
        if selected is not None and not follow and selected in self._rows:
            try:
                self._cursor = self._index[selected]
            except KeyError:
                pass
        self._cursor = max(0, min(self._cursor, len(self._order) - 1))
        self._set_height(len(self._order) + 1)
        # the lines only: the border and title around them did not change (~3 KB a frame less
        # for a pane that shifts down on every new fill)
        self.refresh(Region(0, 0, self.size.width, self.size.height))
        if selected != self.selected_key:
            self.post_message(self.Selected(self, self.selected_key))

    def _set_height(self, lines: int) -> None:
        """Grow or shrink the scrollable height without a layout of the whole screen.

        Why: ``virtual_size`` is a layout reactive in Textual 8, so assigning it re-lays out and
        repaints every widget (a ~40 KB frame at 160x50) each time a fill is added to a pane.
        Only the scrollbar depends on it, so it is updated in place; when the scrollbar has to
        appear or disappear, Textual's own scrollbar reactives still ask for the layout.
        """
        size = Size(self._width, lines)
        if size == self.virtual_size:
            return
        if size.width != self.virtual_size.width or not self.is_mounted:
            self.virtual_size = size
            return
        self.set_reactive(LinePane.virtual_size, size)
        self._scroll_update(size)  # scrollbars: visibility, window size, repaint

    def set_filter(self, text: str) -> None:
        self._filter = text.strip().lower()
        self.reorder()

    def _matches(self, row: Row) -> bool:
        return not self._filter or self._filter in row.symbol.lower()

    # ------------------------------------------------------------------ cursor

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self._cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self._cursor + direction * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        self.move_cursor(0 if where == 0 else len(self._order) - 1)

    def move_cursor(self, index: int) -> None:
        index = max(0, min(index, len(self._order) - 1))
        if index == self._cursor:
            return
        old, self._cursor = self._cursor, index
        self._refresh_index(old)
        self._refresh_index(index)
        body = max(1, self.size.height - 1)
        top = round(self.scroll_y)
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + body:
            self.scroll_to(y=index - body + 1, animate=False, immediate=True)
        self.post_message(self.Selected(self, self.selected_key))

    def _on_focus(self, event: Focus) -> None:
        self._refresh_index(self._cursor)

    def _on_blur(self, event: Blur) -> None:
        self._refresh_index(self._cursor)

    # ------------------------------------------------------------------ layout and cache

    def _on_resize(self, event: Resize) -> None:
        self._height = self.size.height
        self._layout_columns()

    def _lines(self) -> int:
        """The content height. Why cached: Textual's ``size`` asks the compositor for the widget's
        region on every read (~10 us), and a live feed asks per position update and per line."""
        if self._height <= 0:
            self._height = self.size.height
        return self._height

    def _layout_columns(self) -> int:
        """Fit the columns to the content width (scrollbar excluded); cheap when it is unchanged."""
        width = self.scrollable_content_region.width
        if width != self._width:
            self._width = width
            self._cols = self._fit(width)
            self._col_widths = self._widths(width)
            self._cache.clear()
            self._header = None
            self.virtual_size = Size(width, len(self._order) + 1)
        return width

    def hide_columns(self, titles: Iterable[str]) -> None:
        """Never show the columns titled ``titles`` (e.g. Contracts on a venue where they are
        the coins); the others share the width as before."""
        hidden = frozenset(titles)
        if hidden == self._hidden:
            return
        self._hidden = hidden
        self._width = -1  # re-fit at the next layout
        if self.is_mounted:
            self._layout_columns()
            self.refresh()

    def _fit(self, width: int) -> list[tuple[int, Column]]:
        """The columns that fit ``width`` (one space between), dropping the highest ``drop`` first."""
        cols = [(i, c) for i, c in enumerate(self.COLUMNS) if c.title not in self._hidden]
        while len(cols) > 1 and sum(c.width for _, c in cols) + len(cols) - 1 > width:
            worst = max(cols, key=lambda ic: (ic[1].drop, ic[0]))
            if worst[1].drop == 0:
                break
            cols.remove(worst)
        return cols

    def _widths(self, width: int) -> list[int]:
        """Column widths: spare room (a wide terminal) is shared out, up to 4 cells a column."""
        spare = width - (sum(c.width for _, c in self._cols) + len(self._cols) - 1)
        extra = max(0, min(4, spare // max(1, len(self._cols))))
        return [c.width + extra for _, c in self._cols]

    @property
    def visible_titles(self) -> list[str]:
        return [c.title for _, c in self._cols]

    def notify_style_update(self) -> None:
        """Theme or CSS changed: every cached strip carries old colours."""
        super().notify_style_update()
        self._cache.clear()
        self._header = None
        self._styles = None

    def _drop_cache(self, key: Hashable) -> None:
        for state in (0, 1, 2):
            self._cache.pop((key, state), None)

    def _refresh_index(self, index: int, span: tuple[int, int] | None = None) -> None:
        y = index - round(self.scroll_y) + 1
        if 1 <= y < self._lines():
            x0, x1 = span if span is not None else (0, self.size.width)
            repaint(self, Region(x0, y, max(1, x1 - x0), 1))

    # ------------------------------------------------------------------ rendering

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines straight from ``render_line`` when no style wraps them (plainlines.py)."""
        lines = plain_lines(self, crop)
        return super().render_lines(crop) if lines is None else lines

    def render_line(self, y: int) -> Strip:
        width = self._layout_columns()
        if y == 0:
            if self._header is None:
                style = self.get_component_rich_style("pane--header")
                cells = tuple((c.title, "") for c in self.COLUMNS)
                self._header = self._strip(cells, style, None, width)
            return self._header
        index = round(self.scroll_y) + y - 1
        base, cursor, blurred, tones = self._line_styles()
        if index >= len(self._order):
            return Strip.blank(width, base)
        key = self._order[index]
        if key in self._stale:
            self._stale.discard(key)
            row = self.fresh_row(key)
            if row is not None:
                self._rows[key] = row
        state = 0 if index != self._cursor else (1 if self.has_focus else 2)
        strip = self._cache.get((key, state))
        if strip is None:
            if len(self._cache) > 3 * self._lines() + 32:
                # Rows that scrolled away: dropped wholesale (the visible ones re-render once).
                # Why so tight: each cached Strip carries Textual's own caches (7 dicts and the
                # strips derived from it); a 4,000-row bound kept ~100k objects alive for the
                # garbage collector to walk (tens of ms per full pass).
                self._cache.clear()
            style = base if state == 0 else (cursor if state == 1 else blurred)
            strip = self._strip(self._rows[key].cells, style, tones, width)
            self._cache[(key, state)] = strip
        return strip

    def _line_styles(self) -> tuple[Style, Style, Style, dict[str, Style]]:
        """(base, cursor, blurred cursor, tones), looked up once per theme: Textual resolves a
        component style by walking the DOM, which cost more than drawing the row itself."""
        if self._styles is None:
            self._styles = (
                self.rich_style, self.get_component_rich_style("pane--cursor"),
                self.get_component_rich_style("pane--cursor-blur"),
                {t: Style(color=self.get_component_rich_style(f"pane--{t}").color) for t in TONES})
        return self._styles

    def _strip(self, cells: tuple[Cell, ...], base: Style, tones: dict[str, Style] | None,
               width: int) -> Strip:
        """One row as one segment per run of equal style. Each segment costs a full SGR sequence
        on the wire (~40 bytes in truecolor), so blanks (column gaps, empty cells) take the style
        of the text before them: a blank looks the same in any foreground colour, and "-9.80"
        and "-5.44%" of one colour then go out as one segment."""
        plain_blanks = not (base.underline or base.strike or base.reverse or base.overline)
        runs: list[list[str]] = []  # the texts of each run; its style at the same index below
        styles: list[Style] = []

        def add(text: str, style: Style) -> None:
            if styles and (style == styles[-1] or (plain_blanks and text.isspace())):
                runs[-1].append(text)
            else:
                runs.append([text])
                styles.append(style)

        used = 0
        for n, ((i, col), w) in enumerate(zip(self._cols, self._col_widths, strict=True)):
            text, cell_tone = cells[i] if i < len(cells) else ("", "")
            text = text[:w]
            if n:
                add(" ", base)
                used += 1
            add(text.rjust(w) if col.align == "right" else text.ljust(w),
                base + tones[cell_tone] if tones and cell_tone in tones else base)
            used += w
        segments = [Segment("".join(parts), style) for parts, style in zip(runs, styles, strict=True)]
        return Strip(segments, used).crop_extend(0, width, base)
