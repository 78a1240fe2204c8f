"""The engine decides by its own clock (``Engine(clock=...)``): a settlement time that has not
passed on that clock fetches nothing, and once it has, the bills are fetched once.

Why a clock: the funding timer, the risk day and every timestamp the engine stamps read the time;
with the clock handed in, a test moves time instead of sleeping until a settlement.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from core.engine.funding import FUNDING_GRACE
from core.events import Notice, NoticeLevel, PlaceOrder
from core.model import OrderSide
from tests.helpers.engine_helpers import BTC, Rig, wait_for

pytestmark = pytest.mark.timeout(60)


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def test_funding_is_fetched_when_the_engines_clock_passes_the_settlement(rig: Rig) -> None:
    clock = Clock(datetime.now(UTC))
    engine = await rig.start_engine(clock=clock, tick_s=0.02)
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1")))).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    await rig.flush()
    assert rig.venue is not None
    fetches: list[datetime | None] = []
    real = rig.venue.fetch_funding_bills

    async def counted(since: datetime | None) -> list:  # type: ignore[type-arg]
        fetches.append(since)
        return await real(since)

    rig.venue.fetch_funding_bills = counted  # type: ignore[method-assign]
    settlement = clock.at + timedelta(hours=3)
    engine.funding.next_funding[BTC] = settlement
    ticks = 0

    async def ticked() -> bool:
        nonlocal ticks
        ticks += 1
        return ticks > 15  # 15 polls of 50 ms: the timer (20 ms) ran dozens of times

    clock.at = settlement - timedelta(seconds=1)
    await wait_for(ticked, what="timer ticks")
    assert fetches == []  # the settlement has not passed on the engine's clock
    clock.at = settlement + FUNDING_GRACE
    await wait_for(lambda: len(fetches) == 1, what="the settlement's funding fetch")
    ticks = 0
    await wait_for(ticked, what="timer ticks")
    assert len(fetches) == 1  # one settlement, one fetch


async def test_the_engine_stamps_its_notices_with_its_clock(rig: Rig) -> None:
    at = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    engine = await rig.start_engine(clock=Clock(at))
    engine.notice(NoticeLevel.INFO, "hello")
    (notice,) = [e for e in rig.events if isinstance(e, Notice) and e.text == "hello"]
    assert notice.ts == at
