"""Issue 10 item 1, the engine's part: fills are applied per instrument in exchange order (fill
time, then trade id as a number), and a live fill older than the last one applied on its
instrument is not merged silently: the trader is told and a resync realigns the positions."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from core.engine.timeline import exchange_order, in_time_order
from core.events import LinkState, Notice, NoticeLevel, StreamStatus
from core.model import Fill, OrderSide
from tests.helpers.engine_helpers import BTC, Rig, wait_for

pytestmark = pytest.mark.timeout(90)
T0 = datetime(2024, 5, 1, 8, tzinfo=UTC)


def fill(fid: str, ts: datetime, side: OrderSide = OrderSide.BUY) -> Fill:
    return Fill(fid, f"o{fid}", "", BTC, side, D("1"), D("0.01"), D("60000"), D("0"), "USDT", ts)


def test_fills_of_one_instant_go_by_trade_id_as_a_number() -> None:
    t1 = T0 + timedelta(seconds=1)
    merged = in_time_order([fill("10", t1), fill("9", t1), fill("resync-x", t1), fill("8", T0)],
                           [("bill", t1)], lambda b: b[1])
    ids = [m.fill_id if isinstance(m, Fill) else m[0] for m in merged]
    assert ids == ["8", "bill", "9", "10", "resync-x"]
    assert exchange_order(fill("9", t1)) < exchange_order(fill("10", t1)) < exchange_order(
        fill("2", t1 + timedelta(milliseconds=1)))


async def test_a_fill_older_than_the_last_applied_one_is_told_and_resynced(rig: Rig) -> None:
    engine = await rig.start_engine()
    now = datetime.now(UTC)
    engine.fills.on_fill(fill("1002", now))
    engine.fills.on_fill(fill("1003", now + timedelta(milliseconds=5)))
    assert not any(isinstance(e, Notice) and "out of order" in e.text for e in rig.events)
    engine.fills.on_fill(fill("1001", now - timedelta(seconds=3), OrderSide.SELL))
    warned = [e.text for e in rig.events
              if isinstance(e, Notice) and e.level is NoticeLevel.WARNING and "1001" in e.text]
    assert len(warned) == 1 and "arrived after a later fill (1003" in warned[0], warned
    await wait_for(lambda: any(isinstance(e, StreamStatus) and e.state is LinkState.RESYNCING
                               and e.message == "fill 1001 out of order" for e in rig.events),
                   10, "a resync for the late fill")
    # a replayed or repeated fill is neither: the journal's replay is already in order
    engine.fills.on_fill(fill("1001", now - timedelta(seconds=3), OrderSide.SELL))
    assert sum("1001" in e.text for e in rig.events if isinstance(e, Notice)) == 1
