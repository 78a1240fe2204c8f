"""The configured OKX swaps, by perpdesk symbol and by OKX instId.

Why one shared object: REST history, order placement and push routing all translate between
``BTC/USDT:USDT`` and ``BTC-USDT-SWAP``; they must see the same set, resolved once at connect.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from core.model import Instrument
from core.venue import okx_parse as P
from core.venue.base import VenueError, VenueErrorKind


class Markets:
    """Symbols asked for in [exchange] symbols, and the instruments they resolved to."""

    def __init__(self, symbols: tuple[str, ...]) -> None:
        self.symbols = symbols
        self.by_symbol: dict[str, Instrument] = {}
        self.by_id: dict[str, Instrument] = {}

    what = "swap"  # what the venue trades, as an unknown symbol's message names it

    def listed(self, market: Mapping[str, Any]) -> bool:
        """A ccxt market this venue can trade (OKX: a swap with its raw instrument record)."""
        return bool(market.get("swap")) and isinstance(market.get("info"), dict)

    def instrument_of(self, market: Mapping[str, Any]) -> Instrument:
        return P.instrument_from_market(market)

    def resolve(self, markets: Mapping[str, Any], address: str) -> None:
        """Pick the configured symbols out of ccxt's markets; VenueError for one the venue lacks."""
        swaps = {s: m for s, m in markets.items() if self.listed(m)}
        instruments: dict[str, Instrument] = {}
        for symbol in self.symbols:
            market = swaps.get(symbol)
            if market is None:
                close = difflib.get_close_matches(symbol, list(swaps), n=3, cutoff=0.5)
                raise VenueError(
                    f'unknown symbol "{symbol}" in [exchange] symbols: {address} lists no such {self.what}; '
                    + (f"close matches: {', '.join(close)}" if close else "use ccxt form like BTC/USDT:USDT"),
                    VenueErrorKind.CONFIG)
            instruments[symbol] = self.instrument_of(market)
        self.by_symbol = instruments
        self.by_id = {i.inst_id: i for i in instruments.values()}

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self.by_symbol[symbol]
        except KeyError:
            raise VenueError(f'symbol "{symbol}" is not in [exchange] symbols '
                             f"({', '.join(self.symbols) or 'none'})", VenueErrorKind.BAD_REQUEST) from None

    @property
    def settle_ccy(self) -> str:
        return next(iter(self.by_symbol.values())).settle_ccy if self.by_symbol else "USDT"
