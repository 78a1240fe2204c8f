"""The simulator's candle channels: closed bars pushed at once, the open bar at most every
CANDLE_PUSH_MS per instrument and bar, as OKX's candle channels do (not on every price tick)."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from core.sim.candles import CHANNELS as CANDLE_CHANNELS
from core.sim.candles import CandleBook
from core.sim.exchange import Exchange

CANDLE_PUSH_MS = 500  # an open candle is pushed at most this often per instrument and bar


class CandlePushes:
    """Keeps the candles up to date with each price and pushes what a subscriber is owed."""

    def __init__(self, candles: CandleBook, exchange: Exchange, listening: Callable[[str], bool],
                 push: Callable[[str, str, Any], None], flush: Callable[[], None]) -> None:
        self.candles = candles
        self.exchange = exchange
        self.listening = listening  # a channel someone subscribed to (the core emits only those)
        self.push = push
        self.flush = flush
        self.pushed: dict[tuple[str, str], int] = {}  # (instId, channel) -> last open-bar push (ms)
        self.later: set[tuple[str, str]] = set()  # open bars whose latest push is scheduled

    def on_price(self, inst: str, px: Decimal) -> None:
        """Update the candles; push closed bars (confirm "1") at once and the open bar at most every
        500 ms per instrument and bar, as OKX's candle channels do (not on every price tick)."""
        now = self.exchange.clock()
        closed = self.candles.update(inst, px, now, self.exchange.volume[inst])
        for channel, bar in CANDLE_CHANNELS.items():
            if not self.listening(channel):
                continue
            for minute in closed:
                row = self.candles.closed_bar(inst, bar, minute)
                if row is not None:
                    self.push(channel, inst, row)
            key = (inst, channel)
            wait_ms = CANDLE_PUSH_MS - (now - self.pushed.get(key, 0))
            if closed or wait_ms <= 0:
                self.pushed[key] = now
                self.push(channel, inst, self.candles.current(inst, bar, now))
            elif key not in self.later:  # the latest state still goes out, a little later
                self.later.add(key)
                asyncio.get_running_loop().call_later(wait_ms / 1000, self._due, key, bar)

    def _due(self, key: tuple[str, str], bar: str) -> None:
        self.later.discard(key)
        inst, channel = key
        now = self.exchange.clock()
        self.pushed[key] = now
        self.push(channel, inst, self.candles.current(inst, bar, now))
        self.flush()
