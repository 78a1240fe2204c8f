"""Crash-test helper for the store: journal ``n`` fills and funding bills while the shipper sends
them to PostgreSQL (engine "crash"); prints "shipping" once started. The test SIGKILLs it
mid-shipment, then runs it again with n = 0: it ships what is left from the mark and exits once
nothing is behind.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from core.journal import Journal
from core.journal.binding import AccountId
from core.store.rows import Scope
from core.store.shipper import Shipper
from tests.helpers.journal_crash_writer import make_bill, make_fill


async def main(directory: Path, url: str, n: int) -> None:
    journal = Journal(directory, flush_interval=0.005, max_batch=64)
    await journal.start()
    shipper = Shipper(journal, url, Scope.of("crash", AccountId("sim", "u-crash")), max_rows=97)
    journal.on_durable = shipper.wake
    await shipper.start()
    print("shipping", flush=True)
    for i in range(n):
        journal.record_fill(make_fill(i))
        if i % 10 == 0:
            journal.record_funding(make_bill(i))
        if i % 20 == 0:
            await asyncio.sleep(0.002)
    await journal.flush()
    while True:  # until everything on disk is in PostgreSQL
        await asyncio.sleep(0.05)
        state = shipper.state
        if state.connected and state.rows_behind == 0 and not await shipper.ship_once():
            break
    await shipper.stop(drain_s=0)
    await journal.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
