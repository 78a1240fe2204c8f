"""Exact money. Every price, size, fee and PnL is a Decimal from the wire to the CSV.

ccxt sets the thread's global context to ROUND_HALF_UP whenever it formats a number, so every
rounding of ours names its mode explicitly (tests/unit/core/test_decimal_context.py).

Floats are refused at the boundary on purpose: ``Decimal(0.1)`` silently carries binary error,
and OKX sizes such as 0.0153 / 0.01 truncate to the wrong lot in float.
"""
from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation, getcontext

getcontext().prec = 40

ZERO = Decimal(0)
ONE = Decimal(1)


class MoneyError(ValueError):
    """A value that cannot be an exact decimal (float, empty, garbage)."""


def dec(value: str | int | Decimal | None, *, default: Decimal | None = None) -> Decimal:
    """Parse an exchange or CSV value into Decimal. OKX sends "" for missing; ``default`` covers it."""
    if type(value) is str and value:  # the wire and the CSV: every push goes through here
        try:
            d = Decimal(value)  # surrounding whitespace is accepted by Decimal itself
        except InvalidOperation as exc:
            raise MoneyError(f"not a decimal: {value!r}") from exc
        if not d.is_finite():
            raise MoneyError(f"not a finite decimal: {value!r}")
        return d
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise MoneyError(f"boolean is not money: {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise MoneyError(f"float is not money, pass a string: {value!r}")
    if value is None or value == "":
        if default is not None:
            return default
        raise MoneyError(f"missing decimal value: {value!r}")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"not a decimal: {value!r}") from exc
    if not d.is_finite():
        raise MoneyError(f"not a finite decimal: {value!r}")
    return d


def dec_or_none(value: str | int | Decimal | None) -> Decimal | None:
    """Like ``dec`` but "" / None stay None (OKX's missing values, e.g. liqPx)."""
    if value is None or value == "":
        return None
    return dec(value)


def plain(value: Decimal | None) -> str:
    """A plain decimal string (no exponent, no trailing zeros): what the CSV and OKX wire carry."""
    if value is None:
        return ""
    if value == 0:
        return "0"
    s = str(value)  # no exponent for the sizes and prices we carry; normalize() only when it has one
    if "E" in s:
        s = format(value.normalize(), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def quantize_down(value: Decimal, step: Decimal) -> Decimal:
    """Round toward zero to a multiple of ``step`` (lot size): never send more than asked."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def quantize_half_even(value: Decimal, step: Decimal) -> Decimal:
    """Round to the nearest multiple of ``step`` (display and tick rounding)."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_HALF_EVEN) * step
