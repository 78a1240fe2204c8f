"""The engine's timer: the periodic chores no push triggers.

Every ``tick_s``: tell the trader when the journal starts or stops failing, journal a
positions_open snapshot every ``position_snapshot_interval``, resync lives whose disagreeing
position push outlived its grace, run a due resync retry, and fetch funding bills once a
settlement time has passed. It only queues work; the consumer does it in order.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger

from core.engine.ports import ResyncRequest, ResyncSchedule

if TYPE_CHECKING:
    from core.engine.book import Book
    from core.engine.context import EngineContext
    from core.engine.funding import Funding
    from core.model import PositionSnapshot


@dataclass(frozen=True, slots=True)
class FundingDue:
    """Queued by the timer: a settlement time of ``symbol`` passed, fetch the bills."""

    symbol: str


async def run_timer(ctx: EngineContext, book: Book, funding: Funding, schedule: ResyncSchedule,
                    positions: Callable[[], list[PositionSnapshot]], snapshot_interval: float,
                    tick_s: float) -> None:
    loop = asyncio.get_running_loop()
    next_snapshot = loop.time() + snapshot_interval
    while True:
        await asyncio.sleep(tick_s)
        try:
            now_s = loop.time()
            ctx.check_journal()
            if now_s >= next_snapshot:
                next_snapshot = now_s + snapshot_interval
                for snap in positions():
                    book.record_position(snap)
            for key in book.due_mismatches(now_s):
                logger.warning(f"position {key[0]} {key[1]}: exchange and ledger disagree; "
                               "resyncing")
                ctx.enqueue(ResyncRequest("position mismatch"))
            if schedule.due is not None and now_s >= schedule.due:
                schedule.due = None
                ctx.enqueue(ResyncRequest("retry"))
            for symbol in funding.due(ctx.clock()):
                ctx.enqueue(FundingDue(symbol))
        except Exception:  # noqa: BLE001
            logger.exception("engine timer tick failed")
