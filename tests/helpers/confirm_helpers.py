"""A close result to confirm, its sizes and money in plain strings."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from core.model import CloseReason, CloseResult, PositionSide

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SYM = "BTC/USDT:USDT"
PID = f"{SYM}#net#{int(T0.timestamp() * 1000)}"


def close(*, contracts: str, before: str, gross: str, fee: str, funding: str = "0",
          penalty: str = "0", fill: str = "f1") -> CloseResult:
    closed = D(contracts) * D("0.01")
    return CloseResult(
        closed_at=T0 + timedelta(minutes=1), symbol=SYM, position_id=PID, side=PositionSide.LONG,
        reason=CloseReason.EXTERNAL, size_before=D(before), size_closed=closed,
        size_after=D(before) - closed, contracts_closed=D(contracts), contract_size=D("0.01"),
        entry_price=D("60000"), exit_price=D("61000"), gross_pnl=D(gross), fee=D(fee),
        liq_penalty=D(penalty), funding=D(funding), opened_at=T0, fill_ids=(fill,))
