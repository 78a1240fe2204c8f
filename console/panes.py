"""The pane registry: which panes the main screen shows, where, and what feeds each one.

Why a registry: compose, the feed buffer, the feed drain and the today-seed all need every pane;
named here once, a new pane is one ``PaneSpec`` here plus its
widget module: ``rows`` says which append-only events it shows (console/feed.py ``Rows``: how
the buffer recognises, de-duplicates and counts them), None for the positions pane, which the
app updates from position states.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from console.feed import CLOSES, FILLS, FUNDING, Rows
from console.widgets.closes import ClosesPane
from console.widgets.fills import FillsPane
from console.widgets.funding import FundingPane
from console.widgets.positions import PositionsPane
from console.widgets.table import LinePane


@dataclass(frozen=True, slots=True)
class PaneSpec:
    id: str  # DOM id, also the app attribute the tests and flows read (app.positions ...)
    title: str
    widget: Callable[..., LinePane]  # called with (instruments, id=...)
    lower: bool  # False: full width in the main column; True: side by side in the lower row
    rows: Rows | None = None


PANES: tuple[PaneSpec, ...] = (
    PaneSpec("positions", "Positions", PositionsPane, lower=False),
    PaneSpec("closes", "Closes", ClosesPane, lower=False, rows=CLOSES),
    PaneSpec("fills", "Fills", FillsPane, lower=True, rows=FILLS),
    PaneSpec("funding", "Funding", FundingPane, lower=True, rows=FUNDING),
)

FEED_ROWS: tuple[Rows, ...] = tuple(spec.rows for spec in PANES if spec.rows is not None)
