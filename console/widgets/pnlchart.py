"""PnlChart: today's net PnL (realized + unrealized) over time, as one line of block characters.

Why a one-line Line-API widget and not textual's Sparkline: it sits in the header, is fed by the
same timer flush as the header (never per event), keeps a bounded number of points (one per
``step_s`` bucket, the current bucket last-write-wins), and rebuilds its single Strip only when a
point or the width changed, so a live feed costs nothing between flushes.
"""
from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from console.textual_private.repaint import repaint
from console.widgets.plainlines import plain_lines
from console.widgets.table import changed_chars

BLOCKS = "▁▂▃▄▅▆▇█"
LABEL = "PnL "


class PnlChart(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "pnlchart--label", "pnlchart--up", "pnlchart--down", "pnlchart--flat",
    }
    DEFAULT_CSS = """
    PnlChart { height: 1; width: 30; }
    """

    def __init__(self, *, step_s: float = 10.0, points: int = 360, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.step_s = step_s
        self.points: deque[Decimal] = deque(maxlen=points)
        self._bucket: int | None = None
        self._strip: Strip | None = None
        self._strip_width = -1
        self._levels: list[tuple[str, str]] = []  # what the cached strip shows
        self._styles: tuple[Style, Style, dict[str, Style]] | None = None

    def reset(self) -> None:
        """Start a new series: a new UTC day starts today's PnL at zero again."""
        self.points.clear()
        self._bucket = None
        self._strip = None
        self.refresh()

    def sample(self, value: Decimal, now: float) -> None:
        """Record ``value`` at ``now`` (seconds); repaints only when the shown series changed."""
        bucket = int(now // self.step_s)
        if self._bucket is not None and bucket < self._bucket:
            bucket = self._bucket  # the wall clock stepped back: stay in the current bucket
        if bucket == self._bucket and self.points:
            if self.points[-1] == value:
                return
            self.points[-1] = value
        else:
            self._bucket = bucket
            self.points.append(value)
        full = self.size.width
        if self._strip is None or self._strip_width != full:
            self._strip = None
            self.refresh()
            return
        span = changed_chars(self._levels, self.levels(full - len(LABEL)))
        if span is None:
            return  # the blocks on screen are the same: no repaint (uPnL moves every flush)
        self._strip = None
        # the blocks that moved only (console/textual_private/chops.py sends just those cells)
        repaint(self, Region(len(LABEL) + span[0], 0, span[1] - span[0], 1))

    def levels(self, width: int) -> list[tuple[str, str]]:
        """(block, tone) for the newest points that fit ``width`` cells, scaled min..max."""
        shown = list(self.points)[-width:] if width > 0 else []
        if not shown:
            return []
        lo, hi = min(shown), max(shown)
        span = hi - lo
        top = len(BLOCKS) - 1
        out = []
        for v in shown:
            level = 0 if span == 0 else int((v - lo) * top / span)
            out.append((BLOCKS[level], "up" if v > 0 else ("down" if v < 0 else "flat")))
        return out

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strip = None
        self._styles = None

    def _line_styles(self) -> tuple[Style, Style, dict[str, Style]]:
        """(base, label, tones), looked up once per theme: Textual resolves a component style by
        walking the DOM, and the chart redraws whenever its blocks move (several times a second
        under a live uPnL)."""
        if self._styles is None:
            base = self.rich_style
            label = base + Style(color=self.get_component_rich_style("pnlchart--label").color)
            tones = {t: base + Style(color=self.get_component_rich_style(f"pnlchart--{t}").color)
                     for t in ("up", "down", "flat")}
            self._styles = (base, label, tones)
        return self._styles

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines straight from ``render_line`` when no style wraps them (plainlines.py)."""
        lines = plain_lines(self, crop)
        return super().render_lines(crop) if lines is None else lines

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y != 0:
            return Strip.blank(width, self.rich_style)
        if self._strip is None or self._strip_width != width:
            base, label, tones = self._line_styles()
            segments = [Segment(LABEL, label)]
            self._levels = self.levels(width - len(LABEL))
            segments += [Segment(block, tones[tone]) for block, tone in self._levels]
            self._strip = Strip(segments).crop_extend(0, width, base)
            self._strip_width = width
        return self._strip
