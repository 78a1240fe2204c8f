"""Hand a widget's repaint of a few cells straight to its screen's update timer.

Why: ``Widget.refresh(region)`` reaches the screen through the loop four times: a Prompt in the
widget's queue, its idle handler, an Update message in the screen's queue, the screen's idle
handler, and only then the screen's update timer renders (Textual 8). Under a live mark feed
that is most of the callbacks a push costs besides the draw itself. ``repaint`` does what those
steps end in, at once: the widget's regions are marked dirty (as ``refresh`` does), the widget is
added to the screen's dirty set (as the screen's Update handler does) and the update timer is
resumed (as its idle handler does); the draw still happens on that timer, at most once per
frame, so several repaints of one flush still make one frame.

Only for a repaint whose size and styles did not change (the caller says which cells), on the
current screen, with no batch update open; anything else, or a Textual without these
attributes, goes through ``refresh``. tests/unit/console/test_console_textual_private.py fails
when a Textual upgrade changes them.
"""
from __future__ import annotations

from typing import Any

from textual.geometry import Region
from textual.widget import Widget


def repaint(widget: Widget, *regions: Region) -> None:
    """``widget.refresh(*regions)`` for changed cells, without the message round trips."""
    try:
        app = widget.app
        screen: Any = app.screen
        if (app._batch_count or not widget.is_mounted or not regions  # noqa: SLF001
                or widget not in screen._compositor.visible_widgets):  # noqa: SLF001
            widget.refresh(*regions)
            return
        dirty: set[Widget] = screen._dirty_widgets  # noqa: SLF001
        timer = screen._update_timer  # noqa: SLF001
    except Exception:  # noqa: BLE001 - no current screen, or another Textual: its own way
        widget.refresh(*regions)
        return
    widget._set_dirty(*regions)  # noqa: SLF001
    dirty.add(widget)
    timer.resume()
