"""Lay out and render a screen that is not shown, and start its update timer, so that its first
showing costs what a later one does.

Why: a kept dialog (the ConfirmScreen) was composed and styled at idle, but its first showing
still paid three things a later showing does not (measured at 160x50, the first `c` 32-36 ms, the
second 9-11 ms, on an idle host, 2026-12-06):

* its update timer's first period: Textual starts a screen's update timer on the screen's first
  refresh, and a timer's first tick comes one whole period later (1/60 s), while a timer that has
  ticked before ticks at once when resumed. The first dialog waited ~16.7 ms idle;
* a first full render: nothing of it was rendered yet, so the whole screen was dirty and its
  widgets' line caches empty (a full render, ~5 ms, instead of the few changed lines);
* the first layout at the app's size (done at idle already when the screen is pushed and popped
  there, console/screens/warm.py).

Textual has no public call for any of the three: a screen is laid out, rendered and timed only
while it is the current one. Each private name used here is checked by
tests/unit/console/test_console_textual_private.py, which fails when a Textual upgrade changes it.
"""
from __future__ import annotations

from typing import Any

from textual.screen import Screen


def prepare_offscreen(screen: Screen[Any], below: list[Screen[Any]]) -> None:
    """Lay ``screen`` out at the app's size and render it whole, without writing anything to the
    terminal, then start its update timer (its first tick finds nothing to do: the screen is not
    current). ``below`` are the screens it would be drawn over (shown through a translucent
    background). Nothing happens for the current screen or one not mounted."""
    app = screen.app
    if screen.is_current or not screen.is_mounted or not app.size:
        return
    screen._refresh_layout(app.size)  # noqa: SLF001 - lays out; draws only a current screen
    screen._compositor.render_update(full=True, screen_stack=list(below))  # noqa: SLF001 - rendered, not written
    screen._update_timer.resume()  # noqa: SLF001 - its first tick, one period from now, does nothing
