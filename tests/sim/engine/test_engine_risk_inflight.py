"""The [risk] limits count orders in flight, as a red team would test them: many entries sent
together (``asyncio.gather``) by a real strategy through its ``ctx.submit`` and by the console,
two entries one right after another, and a resting order that holds its room until canceled.
A loss limit breached by a mark move halts before the next entry leaves, not at the monitor's
next pass. Through the real engine on the simulator; the exchange's own position is the judge.
On both faces of the simulator (OKX v5, and Bybit v5 through the native bybit venue, where a
contract is its coins: ``rig.ct``)."""
from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from core.events import CancelOrder, CommandResult, LinkState, PlaceOrder, StreamStatus, TradingState
from core.model import OrderSide, OrderType, Origin
from core.settings.config import RiskSettings
from core.strategies.base import Context, Strategy
from core.strategies.host import StrategyHost
from tests.helpers.engine_helpers import (
    BTC,
    BTC_ID,
    ETH,
    VENUES,
    Rig,
    control,
    exchange_position,
    set_price,
    sim_state,
    wait_for,
)

pytestmark = [pytest.mark.timeout(120), pytest.mark.parametrize("venue", VENUES)]
ONE_BTC_CONTRACT = D("600")  # 0.01 BTC at 60,000 USDT


class Burst(Strategy):
    """Sends ``count`` buys of one contract together at start, as the red team's strategy did;
    limit buys at ``price`` when given (below the market they rest and never fill)."""

    name = "burst"

    def __init__(self, size: D, symbol: str = BTC, count: int = 20, price: D | None = None) -> None:
        self.symbol, self.count, self.size, self.price = symbol, count, size, price
        self.results: list[CommandResult] = []

    async def on_start(self, ctx: Context) -> None:
        kind = OrderType.MARKET if self.price is None else OrderType.LIMIT
        self.results = list(await asyncio.gather(
            *(ctx.submit(PlaceOrder(self.symbol, OrderSide.BUY, self.size, kind, self.price))
              for _ in range(self.count))))


async def settled_position(rig: Rig, inst: str = BTC_ID) -> D:
    assert rig.engine is not None
    await rig.flush()
    await asyncio.sleep(0.3)  # any order still travelling lands at the exchange
    return await exchange_position(rig, inst)


async def test_twenty_strategy_buys_sent_together_stop_at_the_position_limit(rig: Rig) -> None:
    """Only the count of orders in flight can refuse here: the buys rest below the market, so
    none fills and the ledger stays flat (each buy alone, 590 USDT, is under the limit). Without
    in-flight counting all twenty would be placed."""
    engine = await rig.start_engine(risk=RiskSettings(max_position_notional=D("1000")))
    strategy = Burst(rig.ct(1), price=D("59000"))
    host = StrategyHost(strategy, engine)
    await host.start()
    try:
        assert len(strategy.results) == 20
        placed = [r for r in strategy.results if r.ok]
        refused = [r for r in strategy.results if not r.ok]
        assert len(placed) == 1, [r.message for r in strategy.results]
        # a limit buy is valued at its price: 1 contract at 59,000 = 590 USDT, with the one in
        # flight a second makes 1,180 > 1,000
        expected = (f"RISK REFUSED max_position_notional: {BTC} position would be 1,180 USDT > "
                    f"limit 1,000 USDT (counting {rig.ct(1)} contracts in flight)")
        assert [r.message for r in refused] == [expected] * 19
        assert engine.positions() == []  # nothing filled: the ledger held nothing to refuse with
        assert await settled_position(rig) == 0
        assert len((await sim_state(rig.srv))["openOrders"]) == 1  # the one placed rests there
    finally:
        await host.stop()
    assert (await engine.submit(CancelOrder(BTC, placed[0].order_ids[0]))).ok


async def test_two_quick_buys_the_second_sees_the_first(rig: Rig) -> None:
    engine = await rig.start_engine(risk=RiskSettings(max_position_notional=D("1000")))
    first = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)), origin=Origin.STRATEGY)
    second = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)), origin=Origin.STRATEGY)
    assert first.ok, first
    assert not second.ok and second.message.startswith("RISK REFUSED max_position_notional:"), second
    assert await settled_position(rig) == rig.ct(1)
    # once the first one's fill is booked the limit still holds (now from the ledger)
    third = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)))
    assert not third.ok and "1,200 USDT > limit 1,000 USDT" in third.message


async def test_console_and_strategy_entries_together_respect_total_and_count_limits(rig: Rig) -> None:
    engine = await rig.start_engine(risk=RiskSettings(max_total_notional=D("2000"),
                                                      max_open_positions=1))
    sends = []
    for i in range(8):
        symbol = BTC if i % 2 == 0 else ETH
        origin = Origin.CONSOLE if i % 3 else Origin.STRATEGY
        sends.append(engine.submit(PlaceOrder(symbol, OrderSide.BUY, rig.ct(1, symbol)), origin=origin))
    results = await asyncio.gather(*sends)
    placed = [r for r in results if r.ok]
    # BTC first (600 USDT); ETH (300) would be a second position; three BTC would be 1,800
    # and a fourth 2,400 > 2,000
    assert len(placed) == 3, [r.message for r in results]
    assert await settled_position(rig) == rig.ct(3)
    assert await settled_position(rig, "ETH-USDT-SWAP") == 0
    messages = [r.message for r in results if not r.ok]
    assert any(m.startswith("RISK REFUSED max_open_positions:") for m in messages), messages
    assert any(m.startswith("RISK REFUSED max_total_notional:") for m in messages), messages


async def test_a_resting_order_counts_until_it_is_canceled(rig: Rig) -> None:
    engine = await rig.start_engine(risk=RiskSettings(max_position_notional=D("1000")))
    resting = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1), OrderType.LIMIT, D("59000")))
    assert resting.ok, resting
    refused = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)))
    assert not refused.ok and f"counting {rig.ct(1)} contracts in flight" in refused.message, refused
    assert (await engine.submit(CancelOrder(BTC, resting.order_ids[0]))).ok

    async def freed() -> bool:
        res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)), origin=Origin.STRATEGY)
        return res.ok
    await wait_for(freed, timeout=5, what="the canceled order's room freed")
    assert await settled_position(rig) == rig.ct(1)
    # selling while long only reduces: never held to the limit, in flight or not
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.SELL, rig.ct(1)))).ok
    await wait_for(lambda: engine.positions() == [], what="flat")


async def test_a_loss_breach_halts_before_the_next_entry_leaves(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.risk.control

    monkeypatch.setattr(core.risk.control, "MONITOR_S", 60.0)  # the monitor's pass cannot help here
    engine = await rig.start_engine(risk=RiskSettings(daily_loss_limit=D("50")))
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(10)))).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    await rig.flush()
    await set_price(rig.srv, "59400")  # 0.1 BTC x -600 = -60 USDT at mark: past the 50 USDT limit
    await wait_for(lambda: engine.mark(BTC) == D("59400"), what="the mark at the engine")
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)), origin=Origin.STRATEGY)
    assert not res.ok and res.message.startswith("RISK REFUSED halted"), res
    assert engine.trading_state is TradingState.HALTED
    assert await settled_position(rig) == rig.ct(10)


async def test_an_order_canceled_while_the_stream_was_down_stops_counting_after_the_resync(rig: Rig) -> None:
    engine = await rig.start_engine(risk=RiskSettings(max_position_notional=D("1000")))
    resting = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1), OrderType.LIMIT, D("59000")))
    assert resting.ok, resting
    await rig.flush()
    def resyncs_done() -> int:
        return sum(1 for e in rig.events if isinstance(e, StreamStatus) and e.stream == "sync"
                   and e.state is LinkState.CONNECTED)
    before = resyncs_done()
    await control(rig.srv, "/sim/v1/drop", {})  # every stream drops: the cancel push is lost
    await rig.ext.cancel_order(resting.order_ids[0], BTC)
    assert (await sim_state(rig.srv))["openOrders"] == []
    await wait_for(lambda: resyncs_done() > before, what="the resync after the reconnect")

    async def freed() -> bool:
        res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)))
        return res.ok
    await wait_for(freed, timeout=5, what="the canceled order's room freed after the resync")
    assert await settled_position(rig) == rig.ct(1)


async def test_sells_sent_together_while_long_cannot_flip_past_the_limit(rig: Rig) -> None:
    engine = await rig.start_engine(risk=RiskSettings(max_position_notional=D("1000")))
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)))).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="long 1")
    # each sell alone "only reduces" a long of 1; together they would flip it to a short of 9
    results = await asyncio.gather(*(engine.submit(PlaceOrder(BTC, OrderSide.SELL, rig.ct(1)), origin=Origin.STRATEGY)
                                     for _ in range(10)))
    assert sum(r.ok for r in results) == 2, [r.message for r in results]  # to flat, then short 600
    assert await settled_position(rig) == rig.ct(-1)
