"""Candles from the simulator: history paged oldest first, live candles published by the engine."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from core.events import Candle
from tests.helpers.engine_helpers import BTC, BTC_ID, Rig, wait_for


async def test_venue_pages_history_oldest_first_and_the_engine_publishes_live_candles(rig: Rig) -> None:
    engine = await rig.start_engine()
    got = await engine.fetch_candles(BTC, "1m", 400)
    assert len(got) == 400 and got[-1].close == D("60000")
    steps = {b.ts - a.ts for a, b in zip(got, got[1:], strict=False)}
    assert steps == {timedelta(minutes=1)} and all(c.confirmed for c in got[:-1])
    everything = await engine.fetch_candles(BTC, "1m", 1440)  # more than the simulator keeps
    assert len(everything) == len({c.ts for c in everything}) > 400
    assert [c.ts for c in everything] == sorted(c.ts for c in everything)
    five = await engine.fetch_candles(BTC, "5m", 10)
    assert len(five) == 10 and {b.ts - a.ts for a, b in zip(five, five[1:], strict=False)} == {timedelta(minutes=5)}

    live: list[Candle] = []
    engine.subscribe(lambda e: live.append(e) if isinstance(e, Candle) else None)
    rig.srv.set_price(BTC_ID, D("60123.4"))
    await wait_for(lambda: any(c.close == D("60123.4") for c in live), what="live candle")
    candle = next(c for c in live if c.close == D("60123.4"))
    assert candle.symbol == BTC and candle.bar == "1m" and not candle.confirmed and candle.high >= D("60123.4")
