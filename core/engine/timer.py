"""The engine's timer: the periodic chores no push triggers.

Every ``tick_s``: tell the trader when the journal starts or stops failing, journal a
positions_open snapshot every ``position_snapshot_interval``, resync lives whose disagreeing
position push outlived its grace, run a due resync retry, and fetch funding bills once a
settlement time has passed. It only queues work; the consumer does it in order.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger

from core.engine.ports import now

if TYPE_CHECKING:
    from core.engine.coordinator import Engine


@dataclass(frozen=True, slots=True)
class FundingDue:
    """Queued by the timer: a settlement time of ``symbol`` passed, fetch the bills."""

    symbol: str


async def run_timer(engine: Engine) -> None:
    loop = asyncio.get_running_loop()
    next_snapshot = loop.time() + engine.position_snapshot_interval
    while True:
        await asyncio.sleep(engine.tick_s)
        try:
            now_s = loop.time()
            engine._check_journal()
            if now_s >= next_snapshot:
                next_snapshot = now_s + engine.position_snapshot_interval
                for snap in engine.positions():
                    engine.book.record_position(snap)
            for key in engine.book.due_mismatches(now_s):
                logger.warning(f"position {key[0]} {key[1]}: exchange and ledger disagree; "
                               "resyncing")
                engine.resync.request("position mismatch")
            if engine.resync.due is not None and now_s >= engine.resync.due:
                engine.resync.due = None
                engine.resync.request("retry")
            for symbol in engine.funding.due(now()):
                engine._enqueue(FundingDue(symbol))
        except Exception:  # noqa: BLE001
            logger.exception("engine timer tick failed")
