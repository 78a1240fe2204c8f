"""A REST outage long enough that the history backfill must wait it out, then complete."""
from __future__ import annotations

import pytest

from core.events import LinkState, PlaceOrder
from core.model import OrderSide
from tests.helpers.engine_helpers import (
    BTC,
    Rig,
    wait_for,
)
from tests.helpers.fault_helpers import (
    BOTH,
    SAID,
    LogCapture,
    _orders_on_exchange,
    assert_plain,
    backfilled_buy_closes,
    fill_lost_under_a_fault,
    wait_log,
    wait_notice,
)

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("fast_resync")]


@BOTH
async def test_backfill_during_a_long_outage_completes_after_it_clears(rig: Rig, logs: LogCapture) -> None:
    engine = await fill_lost_under_a_fault(rig, "5xx", 100_000)
    text = await wait_notice(rig, "resync after reconnect failed")
    assert "exchange is unavailable" in text and SAID[rig.protocol]["5xx"] in text and "retrying in 1 s" in text
    # the engine keeps running: streams up, commands answered (and refused clearly)
    assert engine.links()["private"] is LinkState.CONNECTED
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(5)))
    assert not res.ok
    assert_plain(res.message)
    assert "unavailable" in res.message and "could not check whether the order reached" in res.message
    await wait_notice(rig, "resync (retry) failed")  # and it keeps retrying
    assert engine.positions() == []  # nothing half-applied meanwhile
    rig.srv.faults.clear()
    await wait_log(logs, "RESYNC retry done: 1 fills")
    await wait_for(lambda: [p.contracts for p in engine.positions()] == [rig.ct(10)], what="position")
    assert await _orders_on_exchange(rig) == 1  # the refused command placed nothing
    await backfilled_buy_closes(rig, engine, logs)
