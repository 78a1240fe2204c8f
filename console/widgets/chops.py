"""Send only the refreshed cells of a line to the terminal, not the line up to them.

Why: Textual's compositor keeps, per screen line, one strip per widget ("chop") and, for a partial
update, writes each touched chop from the widget's left edge up to the end of the dirty span
(``ChopsUpdate.render_segments``, Textual 8): a mark in the middle of a position row went out with
the whole row to its left, ~300 bytes for one changed digit. The version installed here starts
each chop at the span's first cell instead, so a widget that refreshes a narrow region (LinePane's
changed cells, the header's changed figure) costs only those cells on the wire.

It replaces one private method of Textual; ``install()`` does nothing when that method is missing
(another Textual), and tests/unit/console/test_console_draw.py fails when its output changes.
"""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.control import Control
from textual import _compositor  # noqa: PLC2701 - no public hook for the partial-update writer

_installed = False


def render_segments(self: Any, console: Console) -> str:
    """``ChopsUpdate.render_segments`` with each chop cropped to the span on the left as well."""
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    chops, chop_ends = self.chops, self.chop_ends
    last_y = self.spans[-1][0]
    for y, x1, x2 in self.spans:
        for end, (x, strip) in zip(chop_ends[y], chops[y].items(), strict=False):
            if strip is None or x >= x2 or end <= x1:
                continue
            if x >= x1 and end <= x2:
                append(move_to(x, y).segment.text)
                append(strip.render(console))
                continue
            start = max(x, x1)
            append(move_to(start, y).segment.text)
            append(strip.crop(start - x, min(end, x2) - x).render(console))
        if y != last_y:
            append("\n")
    return "".join(sequences)


def install() -> None:
    """Use ``render_segments`` above for every partial screen update (idempotent)."""
    global _installed
    update = getattr(_compositor, "ChopsUpdate", None)
    if _installed or update is None or not hasattr(update, "render_segments"):
        return
    update.render_segments = render_segments
    _installed = True
