"""The one parser behind every number the trader types (order entry, partial close).

Why one parser: order entry used ``Decimal(text)``, which takes ``９`` (a full-width digit),
``1_0``, ``Infinity``, ``NaN`` and ``1e999``; the last one crashed the console later, when the
confirmation formatted it. The partial-close box refused some of these and not others. A size or
a price is plain ASCII digits with an optional point and an optional small exponent; anything
else is refused here with a message the trader can act on.
"""
from __future__ import annotations

import re
from decimal import Decimal

_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?", re.ASCII)
LARGEST = Decimal("1e15")  # no contract count or USDT price comes near it
SMALLEST_EXPONENT = -18  # finer than any lot or tick size
QUOTE_CHARS = 20  # what a message echoes of the typed text


def quote(text: str) -> str:
    """The typed text for a message: whole when short, else its first characters and "…", so a
    pasted 3,000-digit number does not fill the screen."""
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"


class SizeError(ValueError):
    """A typed number the trader must correct (shown under the input)."""


def parse_number(text: str, what: str) -> Decimal:
    """A non-negative finite Decimal from ``text``, or SizeError naming what is wrong."""
    s = text.strip()
    if not s:
        raise SizeError(f"{what}: type a number")
    if s.startswith("-"):
        raise SizeError(f"{what} must be greater than 0 (got {quote(s)})")
    if not s.isascii():
        raise SizeError(f"{what}: use the digits 0-9 and a point only (got {quote(s)})")
    if not _NUMBER.fullmatch(s):
        raise SizeError(f"{what}: not a number ({quote(s)}); write it like 3 or 0.25")
    value = Decimal(s)
    if value >= LARGEST:
        raise SizeError(f"{what}: {quote(s)} is too large")
    if value and value.as_tuple().exponent < SMALLEST_EXPONENT:  # type: ignore[operator]
        raise SizeError(f"{what}: {quote(s)} has too many decimals")
    return value


def parse_positive(text: str, what: str) -> Decimal:
    """``parse_number`` that also refuses zero (sizes and prices)."""
    value = parse_number(text, what)
    if value <= 0:
        raise SizeError(f"{what} must be greater than 0")
    return value
