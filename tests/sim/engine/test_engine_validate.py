"""Sizes and prices are checked once at the engine's door: a negative, zero, NaN, infinite, float,
off-grid or below-minimum size or price is refused with one plain line, from a strategy's
``ctx.submit`` and from the console alike, for every command that carries one; nothing reaches
the exchange. On the simulator, through the real engine and strategy host."""
from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from core.events import ClosePosition, Command, CommandResult, PlaceOrder, SetTpSl
from core.model import OrderSide, OrderType, Origin
from core.settings.config import RiskSettings
from core.strategies.base import Context, Strategy
from core.strategies.host import StrategyHost
from tests.helpers.engine_helpers import BTC, Rig, exchange_position, sim_state, wait_for

pytestmark = pytest.mark.timeout(120)


class Sender(Strategy):
    """Sends the given commands one by one at start and keeps the answers."""

    name = "sender"

    def __init__(self, commands: list[Command]) -> None:
        self.commands = commands
        self.results: list[CommandResult] = []

    async def on_start(self, ctx: Context) -> None:
        for command in self.commands:
            self.results.append(await ctx.submit(command))


def buy(contracts: Any, **kw: Any) -> PlaceOrder:
    return PlaceOrder(BTC, OrderSide.BUY, contracts, **kw)


BAD_ORDERS: list[tuple[Command, str]] = [
    (buy(D(-1)), "PlaceOrder refused: size must be above 0, got -1"),
    (buy(D(0)), "PlaceOrder refused: size must be above 0, got 0"),
    (buy(D("NaN")), "PlaceOrder refused: size must be a finite number, got NaN"),
    (buy(D("Infinity")), "PlaceOrder refused: size must be a finite number, got Infinity"),
    (buy(D("-Infinity")), "PlaceOrder refused: size must be a finite number, got -Infinity"),
    (buy(0.5), "PlaceOrder refused: size must be a Decimal (e.g. Decimal(\"1\")), got float 0.5"),
    (buy(D("0.015")), "PlaceOrder refused: size 0.015 contracts is not a multiple of BTC/USDT:USDT's "
                      "lot 0.01"),
    (buy(D("1"), order_type=OrderType.LIMIT, price=D("-59000")),
     "PlaceOrder refused: price must be above 0, got -59000"),
    (buy(D("1"), order_type=OrderType.LIMIT, price=D("59000.05")),
     "PlaceOrder refused: price 59000.05 is not a multiple of BTC/USDT:USDT's tick 0.1"),
    (buy(D("1"), order_type=OrderType.LIMIT), "PlaceOrder refused: a limit order needs a price"),
    (buy(D("1"), take_profit=D("NaN")), "PlaceOrder refused: take profit must be a finite number"),
    (buy(D("1"), stop_loss=D("-1")), "PlaceOrder refused: stop loss must be above 0, got -1"),
    (buy(D("100000.01")), "PlaceOrder refused: size 100000.01 contracts is above BTC/USDT:USDT's maximum "
                          "market order size 100000"),
    (buy(D("100001"), order_type=OrderType.LIMIT, price=D("50000")),
     "PlaceOrder refused: size 100001 contracts is above BTC/USDT:USDT's maximum limit order size 100000"),
    (PlaceOrder(BTC, "sell", D("1")),  # type: ignore[arg-type]
     "PlaceOrder refused: side must be OrderSide.BUY or OrderSide.SELL"),
    (PlaceOrder("DOGE/USDT:USDT", OrderSide.BUY, D("1")),
     "PlaceOrder refused: symbol 'DOGE/USDT:USDT' is not traded here"),
]


async def test_ten_negative_strategy_orders_never_reach_the_exchange(rig: Rig) -> None:
    engine = await rig.start_engine(risk=RiskSettings(max_position_notional=D("1000")))
    strategy = Sender([buy(D(-1)) for _ in range(10)])
    host = StrategyHost(strategy, engine)
    await host.start()
    try:
        assert [r.ok for r in strategy.results] == [False] * 10
        assert {r.message for r in strategy.results} == {"PlaceOrder refused: size must be above 0, got -1"}
        await rig.flush()
        assert await exchange_position(rig) == 0
        assert (await sim_state(rig.srv))["openOrders"] == []
    finally:
        await host.stop()


@pytest.mark.parametrize("origin", [Origin.STRATEGY, Origin.CONSOLE])
async def test_bad_sizes_and_prices_are_one_plain_line_and_nothing_is_sent(rig: Rig, origin: Origin) -> None:
    engine = await rig.start_engine()
    for command, expected in BAD_ORDERS:
        res = await engine.submit(command, origin=origin)
        assert not res.ok and res.message.startswith(expected), (command, res.message)
        assert "\n" not in res.message and "InvalidOperation" not in res.message
    await rig.flush()
    assert await exchange_position(rig) == 0
    assert (await sim_state(rig.srv))["openOrders"] == []

    # a close and a TP/SL move carry sizes and prices too
    assert (await engine.submit(buy(D("2")), origin=origin)).ok
    await wait_for(lambda: len(engine.positions()) == 1, what="position")
    for command, expected in [
        (ClosePosition(BTC, contracts=D(-1)), "ClosePosition refused: close size must be above 0, got -1"),
        (ClosePosition(BTC, contracts=D("NaN")), "ClosePosition refused: close size must be a finite number"),
        (ClosePosition(BTC, contracts=D("1.005")), "ClosePosition refused: close size 1.005 contracts is not "
                                                   "a multiple of BTC/USDT:USDT's lot 0.01"),
        (ClosePosition(BTC, contracts=D("0.001")), "ClosePosition refused: close size 0.001 contracts is "
                                                   "below BTC/USDT:USDT's minimum 0.01"),
        (SetTpSl(BTC, stop_loss=D("Infinity")), "SetTpSl refused: stop loss must be a finite number"),
        (SetTpSl(BTC, take_profit=D("-61000")), "SetTpSl refused: take profit must be above 0"),
        (SetTpSl(BTC, take_profit=D("61000.01")), "SetTpSl refused: take profit 61000.01 is not a multiple"),
    ]:
        res = await engine.submit(command, origin=origin)
        assert not res.ok and res.message.startswith(expected), (command, res.message)
    await rig.flush()
    assert await exchange_position(rig) == D("2")
    assert (await sim_state(rig.srv))["liveAlgos"] == []
    # what is valid still goes
    assert (await engine.submit(ClosePosition(BTC, contracts=D("1")), origin=origin)).ok
    assert (await engine.submit(SetTpSl(BTC, take_profit=D("61000.1")), origin=origin)).ok
