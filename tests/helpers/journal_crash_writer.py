"""Crash-test helper: journal a burst of fills and funding bills, acknowledging each id on stdout
only after ``Journal.flush()`` returned for it. The test SIGKILLs this process mid-burst.

Ids restart from 0 on every run, so later runs also re-offer everything earlier runs wrote (the
journal must refuse those), and timestamps cross UTC midnight so several day files are in play.
"""
from __future__ import annotations

import asyncio
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from core.journal import Journal
from core.model import Fill, FundingPayment, OrderSide

BASE = datetime(2024, 5, 1, 23, 59, 50, tzinfo=UTC)


def make_fill(i: int) -> Fill:
    return Fill(
        fill_id=f"F{i:07d}", order_id=f"O{i // 3}", client_order_id=f"pds{i // 3}",
        symbol="BTC/USDT:USDT", side=OrderSide.BUY if i % 2 else OrderSide.SELL,
        contracts=Decimal(i % 9 + 1), contract_size=Decimal("0.01"),
        price=Decimal("64000.1") + Decimal(i) / 10, fee=Decimal("0.0123"), fee_ccy="USDT",
        ts=BASE + timedelta(milliseconds=37 * i),
    )


def make_bill(i: int) -> FundingPayment:
    return FundingPayment(
        bill_id=f"B{i:07d}", symbol="BTC/USDT:USDT", position_id="BTC/USDT:USDT#net#1",
        rate=Decimal("0.0001"), position_contracts=Decimal("5"), position_coins=Decimal("0.05"),
        mark_price=Decimal("64000"), amount=Decimal("-0.32"), ccy="USDT",
        ts=BASE + timedelta(milliseconds=37 * i),
    )


async def main(directory: Path, seed: int) -> None:
    rng = random.Random(seed)
    journal = Journal(directory, flush_interval=0.002, max_batch=64)
    await journal.start()
    i = 0
    while True:
        acked: list[str] = []
        for _ in range(rng.randint(1, 40)):
            if journal.record_fill(make_fill(i)):
                acked.append(f"F{i:07d}")
            if i % 10 == 0 and journal.record_funding(make_bill(i)):
                acked.append(f"B{i:07d}")
            i += 1
        await journal.flush()
        if acked:
            os.write(1, ("\n".join(acked) + "\n").encode())
        await asyncio.sleep(0)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
