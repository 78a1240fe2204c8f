"""The pre-trade check chain: checks run in order, the first refusal wins, and a risk check never
stops a command that can only reduce exposure (a close, a reduce-only order, a cancel)."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from core.engine import CheckChain
from core.engine.checks import is_reducing
from core.engine.timeline import in_time_order
from core.events import CancelOrder, CloseAll, ClosePosition, Command, PlaceOrder
from core.model import Fill, OrderSide, Origin, PosSide
from tests.helpers.engine_helpers import BTC

pytestmark = pytest.mark.timeout(90)


class Named:
    def __init__(self, name: str, gate: bool, log: list[str], refuse: bool = False) -> None:
        self.name, self.gate, self.log, self.refuse = name, gate, log, refuse

    def __call__(self, command: Command, origin: Origin) -> str | None:
        self.log.append(self.name)
        return f"{self.name} says no" if self.refuse else None


def test_reducing_commands() -> None:
    assert is_reducing(ClosePosition(BTC))
    assert is_reducing(CloseAll())
    assert is_reducing(CancelOrder(BTC, "1"))
    assert is_reducing(PlaceOrder(BTC, OrderSide.SELL, D("1"), reduce_only=True))
    assert not is_reducing(PlaceOrder(BTC, OrderSide.SELL, D("1")))


def test_chain_runs_in_order_first_refusal_wins_and_risk_checks_skip_reducing() -> None:
    log: list[str] = []
    chain = CheckChain([Named("gate", True, log)])
    chain.add(Named("limit", False, log, refuse=True))
    chain.add(Named("after", False, log))
    opening = PlaceOrder(BTC, OrderSide.BUY, D("1"))
    assert chain.refusal(opening, Origin.CONSOLE) == "limit says no"
    assert log == ["gate", "limit"]
    log.clear()
    assert chain.refusal(ClosePosition(BTC, PosSide.NET), Origin.CONSOLE) is None
    assert log == ["gate"]  # only the gate saw the close


def test_one_merge_puts_a_bill_before_a_fill_of_the_same_instant() -> None:
    t0 = datetime(2024, 5, 1, 8, tzinfo=UTC)
    t1 = datetime(2024, 5, 1, 9, tzinfo=UTC)

    def fill(fid: str, ts: datetime) -> Fill:
        return Fill(fid, "o", "", BTC, OrderSide.BUY, D("1"), D("0.01"), D("60000"), D("0"),
                    "USDT", ts)

    merged = in_time_order([fill("a", t1), fill("b", t0), fill("c", t1)],
                           [("bill", t1)], lambda b: b[1])
    assert [m.fill_id if isinstance(m, Fill) else m[0] for m in merged] == ["b", "bill", "a", "c"]
