"""A position that goes flat while the private stream is down: the flat position push is lost with
the connection, the reconnect's resync learns from REST that nothing is open, and a close-all
afterwards must find nothing to close. Seen in the stress test under load: close-all then tried to
close a position the exchange no longer had (OKX 51023) because the engine still held the last
non-zero position push from before the outage. On both faces of the simulator (OKX v5, and Bybit
v5 through the native bybit venue)."""
from __future__ import annotations

import pytest

from core.events import CloseAll
from tests.helpers.engine_helpers import BTC, VENUES, Rig, wait_for
from tests.helpers.fault_helpers import LogCapture, Wire, is_fill, wait_log

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("fast_resync"),
              pytest.mark.parametrize("venue", VENUES)]


async def test_close_all_after_a_position_went_flat_during_an_outage(rig: Rig, logs: LogCapture) -> None:
    engine = await rig.start_engine()
    await rig.outside("buy", 10)
    await wait_for(lambda: [p.contracts for p in engine.positions()] == [rig.ct(10)], what="the position")
    wire = Wire(rig.srv)
    wire.arm(is_fill, "lose")  # the closing fill and the flat position push die with the connection
    await rig.outside("sell", 10, reduce_only=True)
    await wire.settle()
    assert wire.fired == 1
    await wait_log(logs, "RESYNC reconnect done")
    await wait_for(lambda: engine.positions() == [], what="the engine to see the position closed")
    assert [p for p in await rig.ext.fetch_positions([BTC]) if p["contracts"]] == []
    result = await engine.submit(CloseAll())
    assert result.ok, result
    assert result.message == "no open positions"
