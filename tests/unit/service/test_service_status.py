"""`perpdesk status`'s line (core/service/status.py): what a person reads of a running engine."""
from __future__ import annotations

from typing import Any

import pytest

from core.service.status import line


def _status(equity: str | None, ccy: str = "USDT") -> dict[str, Any]:
    return {"journal": "/j", "venue": "sim", "sandbox": False, "account": "u-1", "strategy": None,
            "trading": "normal", "equity": equity, "ccy": ccy, "positions": 1, "consoles": 0,
            "loop_lag_ms": 3, "pid": 42, "started": "2026-01-02T03:04:05+00:00"}


@pytest.mark.parametrize(("equity", "shown"), [
    ("10012.345678912", "equity 10012.35 USDT"),  # to the cent, half up, as `report` rounds
    ("10000", "equity 10000.00 USDT"),
    ("-0.004", "equity 0.00 USDT"),  # never -0.00
    ("99.995", "equity 100.00 USDT"),
])
def test_status_shows_a_dollar_equity_to_the_cent(equity: str, shown: str) -> None:
    assert f"  {shown}  positions 1" in line(_status(equity))


def test_status_shows_another_coin_and_a_missing_equity_as_they_are() -> None:
    assert "  equity 0.123456789 BTC  " in line(_status("0.123456789", "BTC"))
    assert "  equity -  " in line(_status(None))
    assert "  equity not-a-number USDT  " in line(_status("not-a-number"))
