"""ccxt mutates the thread's global Decimal context (ROUND_HALF_UP, Underflow trap) whenever it
formats a number. Our rounding must not depend on whether ccxt ran first in the same process (the
console embeds the simulator and ccxt in one thread), so every rounding of ours names its mode."""
from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from ccxt.base.decimal_to_precision import ROUND, TICK_SIZE, decimal_to_precision

from console.widgets.fmt import fmt_num


@pytest.fixture
def ccxt_context():
    saved = decimal.getcontext().copy()
    decimal_to_precision("1.25", ROUND, 0.1, TICK_SIZE)  # what ccxt does on every amount/price
    assert decimal.getcontext().rounding == decimal.ROUND_HALF_UP  # the mutation is real
    yield
    decimal.setcontext(saved)


def test_display_rounding_is_half_even_after_ccxt_ran(ccxt_context: None) -> None:
    assert fmt_num(Decimal("0.125"), 2) == "0.12"
    assert fmt_num(Decimal("-2.675"), 2, sign=True) == "-2.68"
    assert fmt_num(Decimal("1234.5"), 0) == "1,234"

