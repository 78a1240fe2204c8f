"""Header: account equity, margin, PnL of the day and the link state, in one or two lines.

Why a plain render() widget: it is a couple of lines that change at most once per UI flush, and
it only re-renders when the displayed values actually differ.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from console.textual_private.repaint import repaint
from console.widgets.fmt import COST_PLACES, MONEY_PLACES, fmt_num, tone
from console.widgets.pack import pack
from console.widgets.plainlines import plain_lines
from console.widgets.table import changed_chars, merge_spans
from core.events import AccountSnapshot, LinkState, StreamStatus

_LINK_ORDER = (LinkState.DISCONNECTED, LinkState.CONNECTING, LinkState.RESYNCING,
               LinkState.CONNECTED)


@dataclass(frozen=True, slots=True)
class HeaderState:
    account: AccountSnapshot | None = None
    upnl: Decimal | None = None  # sum over the positions pane when the account has none
    realized: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    funding: Decimal = Decimal(0)
    link: LinkState | None = None
    latency_ms: float | None = None
    read_only: bool = False
    store: str | None = None  # [store] set: "ok", or how far behind it is (core.store)
    engine_lost: bool = False  # an attached console lost its engine (console/remote.py)


def link_summary(statuses: dict[str, StreamStatus]) -> tuple[LinkState | None, float | None]:
    """The worst state over all streams, and the worst latency measured while connected."""
    if not statuses:
        return None, None
    worst = min((s.state for s in statuses.values()), key=_LINK_ORDER.index)
    lat = [s.latency_ms for s in statuses.values() if s.latency_ms is not None]
    return worst, (max(lat) if lat else None)


def _line_diff(old: Text, new: Text, width: int) -> list[tuple[int, int]]:
    """The cells of a header line whose character or style differ (at most one range)."""
    if cell_len(old.plain) != len(old.plain) or cell_len(new.plain) != len(new.plain):
        return [(0, width)]  # a wide character: cells are not characters, the whole line
    span = changed_chars(_styled(old, width), _styled(new, width))
    return [] if span is None else [span]


def _styled(text: Text, width: int) -> list[tuple[str, object]]:
    """(character, style) per cell of a single-width line, padded to ``width``."""
    styles: list[object] = [text.style] * len(text.plain)
    for span in text.spans:
        for i in range(span.start, min(span.end, len(styles))):
            styles[i] = (styles[i], span.style)  # layered as Rich layers them
    cells = list(zip(text.plain, styles, strict=True))
    return cells + [(" ", None)] * max(0, width - len(cells))


class HeaderBar(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "header--label", "header--up", "header--down", "header--flat", "header--bad",
        "header--good", "header--warn",
    }
    DEFAULT_CSS = """
    HeaderBar { height: auto; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.state = HeaderState()
        self._shown_at = float("-inf")
        self._cells = header_cells(self.state)  # what is drawn (the text, not the state)
        self._packed: tuple[tuple[Cell, ...], int, list[Text]] | None = None  # (cells, width, lines)
        self._styles: dict[str, Style] = {}  # component styles, looked up once per theme
        self._strips: dict[int, tuple[int, Text | None, Strip]] = {}  # y -> (width, line, strip)
        self._waiting: tuple[HeaderState, tuple[Cell, ...]] | None = None  # the deferred state, formatted
        self.deferred = False  # a ticking change waits for TICK_INTERVAL_S (the app calls again)

    TICK_INTERVAL_S: ClassVar[float] = 0.25

    def show(self, state: HeaderState, now: float | None = None) -> None:
        """Display ``state``. Only what would be shown counts: the account snapshot carries a new
        timestamp on every push and the figures more digits than are shown, and a refresh for
        the same text cost a repaint and the compositor's work on every flush. A change of only
        the ticking values (equity, available, uPnL) is shown at most every TICK_INTERVAL_S: the
        line is ~1.3 KB on the wire, and at the UI's 15 Hz it was a fifth of all bytes sent, for
        digits nobody reads that fast (``deferred`` is set meanwhile: the app keeps flushing until it
        is shown). Any other change (today's PnL, fees, funding, link state)
        is shown at once. Only the lines that differ are refreshed."""
        if state == self.state:
            self.deferred = False
            return
        waiting = self._waiting
        cells = waiting[1] if waiting is not None and waiting[0] == state else header_cells(state)
        if cells == self._cells:
            self.state = state  # the same text: nothing to draw
            self.deferred = False
            return
        now = time.monotonic() if now is None else now
        ticking_only = cells[_TICKING:] == self._cells[_TICKING:]
        if ticking_only and now - self._shown_at < self.TICK_INTERVAL_S:
            self.deferred = True  # the next flush brings it (the app flushes while this is set)
            self._waiting = (state, cells)  # not formatted again by the flushes until then
            return
        self.deferred = False
        self._waiting = None
        self._shown_at = now
        width = max(1, self.content_region.width)
        before = self._lines_now(width)
        self.state = state
        self._cells = cells
        after = self._lines_now(width)
        # A new layout only when the header needs another number of lines: a full layout pass
        # of the screen on every uPnL change was a large share of the UI's CPU.
        if before is None or after is None or len(after) != len(before):
            self.refresh(layout=True)
            return
        changed = [Region(x0, y, x1 - x0, 1)
                   for y, (old, new) in enumerate(zip(before, after, strict=True)) if old != new
                   for x0, x1 in merge_spans(_line_diff(old, new, width))]
        if changed:
            repaint(self, *changed)  # the changed figures only, not the line (chops.py)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = {}
        self._packed = None
        self._strips = {}

    def _lines_now(self, width: int) -> list[Text] | None:
        """The lines the header draws now; None while its styles are not there (not mounted
        yet, or being torn down), when only a layout can tell."""
        if not self.is_mounted:
            return None
        try:
            return self._pack(width)
        except KeyError:
            return None

    def _pack(self, width: int) -> list[Text]:
        """The items packed greedily into lines of ``width`` cells: an item (label and value)
        never splits across lines. Rich's own wrapping would split at a non-breaking space too.
        Kept for the state and width it was packed for: show() counts the lines and render()
        draws the same ones."""
        packed = self._packed
        if packed is not None and packed[0] is self._cells and packed[1] == width:
            return packed[2]
        lines = self._pack_items(width)
        self._packed = (self._cells, width, lines)
        return lines

    def _pack_items(self, width: int) -> list[Text]:
        return pack(self.items(), width)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._pack(max(1, width)))

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines straight from ``render_line`` when no style wraps them (plainlines.py)."""
        lines = plain_lines(self, crop)
        return super().render_lines(crop) if lines is None else lines

    def render_line(self, y: int) -> Strip:
        """One line as a Strip, built from its Text when that line's text or styles changed.

        Why not render(): Textual turns a rendered Text into its own Content and strips on
        every refresh, all lines of the widget (~1.5 ms a refresh under a live uPnL); a line here
        costs one Rich render when its text changed and nothing when another line did."""
        width = max(1, self.content_region.width)
        lines = self._pack(width)
        line = lines[y] if y < len(lines) else None
        kept = self._strips.get(y)
        if kept is not None and kept[0] == width and kept[1] == line:
            return kept[2]
        base = self.rich_style
        pad = Style.from_color(bgcolor=base.bgcolor)  # as Textual pads a rendered line
        if line is None:
            strip = Strip.blank(width, pad)
        else:
            strip = Strip(list(line.render(self.app.console))).apply_style(base).crop_extend(0, width, pad)
        self._strips[y] = (width, line, strip)
        return strip

    def _style(self, name: str) -> Style:
        """A component style; Textual resolves one by walking the DOM, so each is looked up once."""
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(name)
        return style

    def items(self) -> list[Text]:
        """One Text per header item, in display order."""
        label = self._style("header--label")
        out: list[Text] = []
        for name, value, style, suffix in self._cells:
            text = Text(no_wrap=True)
            if name:
                text.append(f"{name} ", label)
            text.append(value, self._style(style) if style else "")
            if suffix:
                text.append(suffix, label)
            out.append(text)
        return out


Cell = tuple[str, str, str, str]  # (label, value, component class or "", suffix): one item
_TICKING = 3  # the first cells (equity, available, uPnL) tick with the marks


def header_cells(s: HeaderState) -> tuple[Cell, ...]:
    """The header's items as text, in display order: what show() compares, so a state that
    differs only in what is not shown (a timestamp, a digit past the shown places) draws
    nothing."""
    out: list[Cell] = []
    ccy = s.account.ccy if s.account else "USDT"

    def item(name: str, value: str, style: str = "", suffix: str = "") -> None:
        out.append((name, value, style, suffix))

    def money(name: str, value: Decimal | None, places: int, signed: bool = True,
              suffix: str = "") -> None:
        item(name, fmt_num(value, places, sign=signed),
             f"header--{tone(value)}" if signed and value is not None else "", suffix)

    acct = s.account
    money("Equity", acct.equity if acct else None, MONEY_PLACES, signed=False, suffix=f" {ccy}")
    money("Avail", acct.available if acct else None, MONEY_PLACES, signed=False)
    money("uPnL", s.upnl, MONEY_PLACES)
    money("Today", s.realized, MONEY_PLACES)
    money("Fees", s.fees, COST_PLACES, signed=False)
    money("Fund", s.funding, COST_PLACES)
    if s.engine_lost:
        item("●", "ENGINE LOST", "header--bad")
    elif s.link is None:
        item("Link", "-", "header--warn")
    else:
        good = s.link is LinkState.CONNECTED
        state = "live" if good else s.link.value
        if good and s.latency_ms is not None:
            state += f" {s.latency_ms:.0f}ms"
        item("●", state, "header--good" if good else (
            "header--bad" if s.link is LinkState.DISCONNECTED else "header--warn"))
    if s.store is not None:
        item("Store", s.store, "header--good" if s.store == "ok" else "header--warn")
    if s.read_only:
        item("", "READ-ONLY", "header--warn")
    return tuple(out)
