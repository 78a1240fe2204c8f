"""The check chain on a running engine stack."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.events import ClosePosition, Command, PlaceOrder
from core.model import OrderSide, Origin, PosSide
from tests.helpers.engine_helpers import BTC, Rig, exchange_position, wait_for

pytestmark = pytest.mark.timeout(90)


class MaxContracts:
    """A risk limit as it would be written: refuses orders above ``limit`` contracts."""

    gate = False

    def __init__(self, limit: D) -> None:
        self.limit = limit
        self.seen: list[Command] = []

    def __call__(self, command: Command, origin: Origin) -> str | None:
        self.seen.append(command)
        if isinstance(command, PlaceOrder) and command.contracts > self.limit:
            return f"over the {self.limit} contracts limit"
        return None


async def test_a_risk_check_refuses_opening_orders_but_never_a_close(rig: Rig) -> None:
    engine = await rig.start_engine()
    limit = MaxContracts(D("5"))
    engine.orders.checks.add(limit)
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("8")))
    assert not res.ok and "limit" in res.message
    assert await exchange_position(rig) == D("0")
    res = await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("4")))
    assert res.ok, res
    await wait_for(lambda: len(engine.positions()) == 1, what="a position")
    limit.limit = D("0")  # now every opening order is over the limit...
    assert not (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1")))).ok
    res = await engine.submit(PlaceOrder(BTC, OrderSide.SELL, D("1"), reduce_only=True))
    assert res.ok, res  # ...but reducing still works
    await wait_for(lambda: any(p.contracts == 3 for p in engine.positions()), what="3 left")
    res = await engine.submit(ClosePosition(BTC, PosSide.NET))
    assert res.ok, res
    await wait_for(lambda: engine.positions() == [], what="flat")
    assert await exchange_position(rig) == D("0")
    assert sum(isinstance(c, ClosePosition) for c in limit.seen) == 0
