"""Candlesticks built from the simulator's price process, served the way OKX serves them.

Why: a strategy warms up from history candles and then follows the live ``candle1m`` (or other
bar) channel; without both it cannot start trading on the simulator. One-minute candles are the
record: every price move updates the current minute, a minute without a move repeats the last
close (so the series has no holes), and longer bars are aggregated from the minutes. At start
``backfill`` writes synthetic minutes for the past hours from a seeded walk that ends exactly at
the starting price, so the same seed gives the same history.

Row shape (REST market/candles, history-candles and the WS candle channels), newest first:
``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`` with ``vol`` in contracts, ``volCcy`` in the
base currency, ``volCcyQuote`` in USDT and ``confirm`` "0" while the bar is open, "1" once closed.
Simplification: every bar is aligned to UTC (OKX aligns 6H and longer to Hong Kong time unless the
bar name ends in ``utc``).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.money import ZERO, quantize_half_even
from core.sim import okx_shapes as shapes
from core.sim.market import SECONDS_PER_YEAR, InstrumentSpec
from core.sim.params import SimError

MINUTE_MS = 60_000
BARS: dict[str, int] = {
    "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1H": 60, "2H": 120, "4H": 240, "6H": 360, "12H": 720,
    "1D": 1440, "6Hutc": 360, "12Hutc": 720, "1Dutc": 1440,
}
CHANNELS = {"candle" + bar: bar for bar in BARS}
KEEP_MINUTES = 3 * 1440  # three days of one-minute candles per instrument
BACKFILL_MINUTES = 8 * 60


@dataclass(slots=True)
class Minute:
    """One one-minute candle; ``vol`` in contracts."""

    ts: int
    o: Decimal
    h: Decimal
    low: Decimal
    c: Decimal
    vol: Decimal = ZERO


def bar_minutes(bar: str) -> int:
    n = BARS.get(bar)
    if n is None:
        raise SimError("51000", "Parameter bar error")
    return n


class CandleBook:
    """One-minute candles per instrument and the bars aggregated from them."""

    def __init__(self, specs: dict[str, InstrumentSpec]) -> None:
        self.specs = specs
        self._minutes: dict[str, list[Minute]] = {i: [] for i in specs}
        self._volume_seen: dict[str, Decimal] = {i: ZERO for i in specs}
        self._pending: dict[str, tuple[Decimal, int, int, int]] = {}

    def backfill(self, prices: dict[str, Decimal], now_ms: int, seed: int, minutes: int = BACKFILL_MINUTES) -> None:
        """Synthetic closed minutes before ``now_ms`` ending at ``prices``; the current minute opens there.

        Generated when an instrument's candles are first used, not here: a simulator that nobody
        asks for candles starts without the cost (tests start hundreds of them).
        """
        start = now_ms - now_ms % MINUTE_MS
        for inst in self.specs:
            self._pending[inst] = (prices[inst], start, seed, minutes)

    def minutes(self, inst: str) -> list[Minute]:
        """The one-minute candles of ``inst``, oldest first (the backfill made on first use)."""
        pending = self._pending.pop(inst, None)
        if pending is not None:
            self._minutes[inst] = self._generate(inst, *pending)
        return self._minutes[inst]

    def _generate(self, inst: str, anchor: Decimal, start: int, seed: int, minutes: int) -> list[Minute]:
        spec = self.specs[inst]
        rng = random.Random(f"{seed}:{inst}:candles")
        sigma = spec.vol_annual * math.sqrt(15.0 / SECONDS_PER_YEAR)  # four 15 s steps per minute
        close = anchor
        rows: list[Minute] = []
        for k in range(1, minutes + 1):
            path = [close]
            for _ in range(4):  # walk backwards from the close to the open
                step = Decimal(f"{math.exp(rng.gauss(0.0, sigma)):.12f}")
                path.append(max(quantize_half_even(path[-1] * step, spec.tick_sz), spec.tick_sz))
            vol = Decimal(rng.randint(0, 400)) * spec.lot_sz * 100
            rows.append(Minute(start - k * MINUTE_MS, path[-1], max(path), min(path), close, vol))
            close = path[-1]
        rows.reverse()
        rows.append(Minute(start, anchor, anchor, anchor, anchor))
        return rows

    def dump(self) -> dict[str, Any]:
        """What a restart needs (see ``core.sim.persist``): the minutes kept, or the backfill
        still to generate, and the volume already counted."""
        return {
            "minutes": {i: [[m.ts, str(m.o), str(m.h), str(m.low), str(m.c), str(m.vol)] for m in rows]
                        for i, rows in self._minutes.items() if i not in self._pending},
            "pending": {i: [str(px), start, seed, n] for i, (px, start, seed, n) in self._pending.items()},
            "volume_seen": {i: str(v) for i, v in self._volume_seen.items()},
        }

    def restore(self, d: dict[str, Any]) -> None:
        """The candles of a saved simulator; a minute gap since then fills flat at the next price."""
        for inst, rows in d["minutes"].items():
            if inst in self.specs:
                self._minutes[inst] = [Minute(int(ts), Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v))
                                       for ts, o, h, lo, c, v in rows]
                self._pending.pop(inst, None)
        for inst, (px, start, seed, n) in d["pending"].items():
            if inst in self.specs:
                self._pending[inst] = (Decimal(px), int(start), int(seed), int(n))
        self._volume_seen.update({i: Decimal(v) for i, v in d["volume_seen"].items() if i in self.specs})

    def update(self, inst: str, px: Decimal, now_ms: int, volume_total: Decimal) -> list[Minute]:
        """A price (and the exchange's running volume) at ``now_ms``: returns the minutes closed by it."""
        rows = self.minutes(inst)
        start = now_ms - now_ms % MINUTE_MS
        closed: list[Minute] = []
        if not rows:
            rows.append(Minute(start, px, px, px, px))
        if start - rows[-1].ts > KEEP_MINUTES * MINUTE_MS:  # restarted after days: keep the last ones only
            prev = rows[-1].c
            rows.append(Minute(start - KEEP_MINUTES * MINUTE_MS, prev, prev, prev, prev))
        while rows[-1].ts < start:
            closed.append(rows[-1])
            last = rows[-1].c
            rows.append(Minute(rows[-1].ts + MINUTE_MS, last, last, last, last))
        cur = rows[-1]
        cur.h, cur.low, cur.c = max(cur.h, px), min(cur.low, px), px
        cur.vol += volume_total - self._volume_seen[inst]
        self._volume_seen[inst] = volume_total
        if len(rows) > KEEP_MINUTES:
            del rows[: len(rows) - KEEP_MINUTES]
        return closed

    def bars(self, inst: str, bar: str, now_ms: int) -> list[list[str]]:
        """Every bar of ``inst`` kept, newest first, as OKX rows."""
        n = bar_minutes(bar)
        span = n * MINUTE_MS
        ct_val = self.specs[inst].ct_val
        out: list[list[str]] = []
        group: list[Minute] = []
        for m in reversed(self.minutes(inst)):
            if group and m.ts - m.ts % span != group[0].ts - group[0].ts % span:
                out.append(self._row(group, span, ct_val, now_ms))
                group = []
            group.append(m)
        if group:
            out.append(self._row(group, span, ct_val, now_ms))
        return out

    @staticmethod
    def _row(newest_first: list[Minute], span: int, ct_val: Decimal, now_ms: int) -> list[str]:
        first, last = newest_first[-1], newest_first[0]
        ts = first.ts - first.ts % span
        vol = sum((m.vol for m in newest_first), ZERO)
        coins = vol * ct_val
        quote = sum((m.vol * ct_val * m.c for m in newest_first), ZERO)
        confirm = "1" if now_ms >= ts + span else "0"
        return [str(ts), shapes.s(first.o), shapes.s(max(m.h for m in newest_first)),
                shapes.s(min(m.low for m in newest_first)), shapes.s(last.c), shapes.s(vol), shapes.s(coins),
                shapes.s(quote), confirm]

    def current(self, inst: str, bar: str, now_ms: int) -> list[str]:
        """The open bar of ``inst`` (what a candle channel pushes)."""
        n = bar_minutes(bar)
        span = n * MINUTE_MS
        rows = self.minutes(inst)
        start = rows[-1].ts - rows[-1].ts % span
        group = [m for m in reversed(rows[-n:]) if m.ts >= start]
        return self._row(group, span, self.specs[inst].ct_val, now_ms)

    def closed_bar(self, inst: str, bar: str, minute: Minute) -> list[str] | None:
        """The bar that ``minute`` (just closed) completes, or None when the bar goes on."""
        span = bar_minutes(bar) * MINUTE_MS
        if (minute.ts + MINUTE_MS) % span:
            return None
        start = minute.ts + MINUTE_MS - span
        group = [m for m in reversed(self.minutes(inst)) if start <= m.ts <= minute.ts]
        return self._row(group, span, self.specs[inst].ct_val, minute.ts + MINUTE_MS)
