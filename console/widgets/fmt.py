"""Number and time formatting for the panes: always from Decimal, at the instrument's precision.

Why here and not in core: these are presentation choices (thousands separators, signs, short
symbols), and the console is their only user.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext

from core.model import Instrument
from core.money import plain

MONEY_PLACES = 2  # header totals and PnL columns (USDT)
COST_PLACES = 4  # fees and funding: often sub-cent, shown to the tenth of a basis point of a cent
UNSHOWABLE = "—"  # a value that cannot be shown as a number (not finite, absurdly large)
MAX_DIGITS = 40  # beyond this many digits a number on screen is a bug, not a balance


def places_of(step: Decimal) -> int:
    """Decimals implied by a step such as 0.1 (1) or 0.0001 (4); 0 for integral steps."""
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def fmt_num(value: Decimal | None, places: int, *, sign: bool = False) -> str:
    """Fixed ``places`` decimals with thousands separators; "-" for a missing value.

    Never raises: a formatter runs inside a paint or a dialog, where an exception is a crashed
    console. A value it cannot show (infinite, NaN, more than MAX_DIGITS digits) is UNSHOWABLE."""
    if value is None:
        return "-"
    if not value.is_finite() or value.adjusted() + places > MAX_DIGITS:
        return UNSHOWABLE
    try:
        with localcontext() as ctx:
            ctx.prec = MAX_DIGITS + 2
            q = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)
    except (InvalidOperation, ValueError):  # pragma: no cover - ruled out above; belt and braces
        return UNSHOWABLE
    if q == 0:
        return format(abs(q), ",f")  # never "-0.00" nor "+0.00"
    return format(q, "+,f" if sign else ",f")


def tone(value: Decimal | None) -> str:
    """The colour class of a gain, a loss or nothing."""
    if value is None or value == 0:
        return "flat"
    return "up" if value > 0 else "down"


def short_symbol(symbol: str) -> str:
    """BTC/USDT:USDT -> BTC/USDT: the settle suffix repeats the quote on linear swaps."""
    base, _, settle = symbol.partition(":")
    return base if settle and base.endswith("/" + settle) else symbol


def hms(ts: datetime) -> str:
    """Event time as HH:MM:SS UTC (the journal is UTC too, so rows line up with the CSV)."""
    return ts.astimezone(UTC).strftime("%H:%M:%S")


@dataclass(frozen=True, slots=True)
class Precision:
    """How one symbol's prices and sizes are shown; falls back to plain() if the symbol is unknown."""

    price: int | None
    contracts: int | None
    coins: int | None

    @staticmethod
    def of(instrument: Instrument | None) -> Precision:
        if instrument is None:
            return Precision(None, None, None)
        return Precision(places_of(instrument.tick_size), places_of(instrument.lot_size),
                         places_of(instrument.lot_size * instrument.contract_size))

    def px(self, value: Decimal | None) -> str:
        return _at(value, self.price)

    def ct(self, value: Decimal | None) -> str:
        return _at(value, self.contracts)

    def coin(self, value: Decimal | None) -> str:
        return _at(value, self.coins)


def _at(value: Decimal | None, places: int | None) -> str:
    if value is None:
        return "-"
    return plain(value) if places is None else fmt_num(value, places)
