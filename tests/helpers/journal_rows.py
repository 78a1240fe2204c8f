"""Journal rows to write: a fill, a close, a funding bill, an order update, at a fixed time; and a
journal folder holding some of each."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from core.journal import Journal
from core.model import (
    CloseReason,
    CloseResult,
    Fill,
    FundingPayment,
    Liquidity,
    OrderSide,
    OrderState,
    OrderUpdate,
    Origin,
    PositionSide,
    RowSource,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)

D = Decimal


def fill(fill_id: str = "F1", ts: datetime = T0, **kw: object) -> Fill:
    base: dict[str, object] = dict(
        fill_id=fill_id, order_id="O1", client_order_id="pdc1", symbol="BTC/USDT:USDT",
        side=OrderSide.BUY, contracts=D("1.5"), contract_size=D("0.01"), price=D("64000.1"),
        fee=D("0.0480075"), fee_ccy="USDT", ts=ts, reduce_only=False,
        liquidity=Liquidity.TAKER, origin=Origin.CONSOLE,
    )
    base.update(kw)
    return Fill(**base)  # type: ignore[arg-type]


def close(fill_ids: tuple[str, ...] = ("F2",), **kw: object) -> CloseResult:
    base: dict[str, object] = dict(
        closed_at=T0, symbol="BTC/USDT:USDT", position_id="BTC/USDT:USDT#net#1714564800000",
        side=PositionSide.LONG, reason=CloseReason.MANUAL, size_before=D("0.015"),
        size_closed=D("0.005"), size_after=D("0.01"), contracts_closed=D("0.5"),
        contract_size=D("0.01"), entry_price=D("64000.1"), exit_price=D("65000.3"),
        gross_pnl=D("5.001"), fee=D("0.081"), liq_penalty=D("0"), funding=D("-0.0123"),
        opened_at=T0 - timedelta(hours=3), source=RowSource.LEDGER, fill_ids=fill_ids,
    )
    base.update(kw)
    return CloseResult(**base)  # type: ignore[arg-type]


FUNDING_AMOUNT = D("-0.3841")


def funding(bill_id: str = "B1", amount: Decimal = FUNDING_AMOUNT, ts: datetime = T0) -> FundingPayment:
    return FundingPayment(
        bill_id=bill_id, symbol="BTC/USDT:USDT", position_id="BTC/USDT:USDT#net#1714564800000",
        rate=D("0.0001"), position_contracts=D("60"), position_coins=D("0.6"),
        mark_price=D("64016.5"), amount=amount, ccy="USDT", ts=ts,
    )


def order(state: OrderState = OrderState.PLACED, **kw: object) -> OrderUpdate:
    base: dict[str, object] = dict(
        order_id="O7", client_order_id="pds9", symbol="ETH/USDT:USDT", side=OrderSide.SELL,
        order_type="limit", contracts=D("3"), contract_size=D("0.1"), price=D("3100.50"),
        state=state, ts=T0, reduce_only=True, origin=Origin.STRATEGY,
    )
    base.update(kw)
    return OrderUpdate(**base)  # type: ignore[arg-type]


def _journal_with_rows(directory: Path) -> None:
    j = Journal(directory)
    j.open()
    for i in range(30):
        j.record_fill(fill(f"F{i}", ts=T0 + timedelta(hours=5 * i), fee=fill().fee + i))
    j.record_close(close(("F1",)))
    j.record_close(close(("F2",), closed_at=T0 + timedelta(days=2)))
    j.record_funding(funding("B1"))
    j.record_funding(funding("B2", ts=T0 + timedelta(days=3)))
    j.record_order(order())
    j.close_sync()
