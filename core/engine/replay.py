"""Journal replay at start: rebuild the open lives from the journal's own fills and funding.

No row is rewritten: fills go through the live fill path as old news (``replay=True``), funding
rows are booked on the life they name, and a close row the journal lacks (a crash between a fill
and its close) is handed to the confirmer again.
"""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from core.confirm.closes import LifeTotals
from core.engine.timeline import in_time_order
from core.journal.history import close_from_row, fill_from_row
from core.journal.schema import parse_ts
from core.model import CloseResult, Fill
from core.money import dec

if TYPE_CHECKING:
    from core.accounting.ledger import Ledger
    from core.confirm.closes import CloseConfirmer
    from core.engine.fills import FillPath
    from core.engine.funding import Funding
    from core.journal.writer import Journal


def replay_journal(journal: Journal, ledger: Ledger, fills: FillPath, funding: Funding,
                   confirmer: CloseConfirmer) -> None:
    """Rebuild open lives and the confirmer's per-life totals from the journal: only the day files
    the lives still open at the last stop need (the index says which), so a start stays bounded."""
    replayed = journal.replay_rows()  # the lives open at the last stop, not the whole history
    journaled = [fill_from_row(r) for r in replayed.fills]
    funding_rows = replayed.funding
    by_life: dict[str, list[CloseResult]] = {}
    for row in replayed.trades:
        close = close_from_row(row)
        by_life.setdefault(close.position_id, []).append(close)
    for pid, rows in by_life.items():
        confirmer.seed(pid, LifeTotals.of_rows(rows))
    repaired = 0
    item: Fill | dict[str, str | Decimal | None]
    for item in in_time_order(journaled, funding_rows, lambda r: parse_ts(str(r["ts"]))):
        if isinstance(item, Fill):
            repaired += fills.on_fill(item, replay=True)
        else:
            funding.replay_row(str(item["bill_id"]), str(item["position_id"]), dec(item["amount"]))
    logger.info(f"journal replay: {len(journaled)} fills, {len(funding_rows)} funding rows, "
                f"{len(ledger.positions())} open lives, {repaired} close rows to repair")
