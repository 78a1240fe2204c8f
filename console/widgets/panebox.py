"""PaneBox: the border and title around one pane of the main screen."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from console.widgets.table import LinePane


class PaneBox(Vertical):
    """Why the border is not the pane's own: Textual writes a changed line from the left edge of
    the widget that owns it, so with the border inside the pane every moved mark sent the border
    cell and its colours again (~40 bytes a row, ~8 % of all bytes at 160x50 under the bench
    load). Around the pane, the border is another widget's and stays put."""

    def __init__(self, pane: LinePane, *, title: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pane = pane
        self.border_title = title

    def compose(self) -> ComposeResult:
        yield self.pane
