"""OKX candlesticks: the 9-field rows of REST market/candles, history-candles and the WS
``candle<bar>`` channels -> ``Candle``, and the paged REST read a strategy warms up from.

Why its own module: candles are public market data with their own row shape (an array, not an
object) and their own paging (``after`` = older than a bar's open time); nothing else in the
venue reads them. Rows are ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``, newest first,
``ts`` the bar's open time in ms, ``vol`` in contracts for swaps, ``confirm`` "0" while the bar is
open and "1" once it has closed.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from core.events import Candle
from core.model import Instrument, utc_from_ms
from core.money import dec
from core.venue.okx_parse import OkxParseError
from core.venue.okx_rest import OkxRest

RECENT_PAGE = 300  # market/candles: at most 300 rows a request
HISTORY_PAGE = 100  # market/history-candles: at most 100 rows a request
MAX_CANDLES = 1440  # one day of one-minute bars: more than any warm-up needs
BARS = ("1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "12H", "1D", "1W", "1M",
        "6Hutc", "12Hutc", "1Dutc", "1Wutc", "1Mutc")
CHANNEL_PREFIX = "candle"


def bar_of_channel(channel: str) -> str | None:
    """``candle1m`` -> ``1m``; None for a channel that is not a candle channel."""
    if channel.startswith(CHANNEL_PREFIX) and channel[len(CHANNEL_PREFIX):] in BARS:
        return channel[len(CHANNEL_PREFIX):]
    return None


def parse_candle(row: Sequence[Any], inst: Instrument, bar: str) -> Candle:
    """One OKX candle row as a Candle; OkxParseError for a row no exchange would send.

    A row needs at least ts, o, h, l, c and vol; ``confirm`` absent (older OKX rows had 7 fields,
    history-candles only ever returns closed bars) counts as closed.
    """
    if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or len(row) < 6:
        raise OkxParseError(f"candle row must be an array of at least 6 fields, got {row!r:.80}")
    ts_text = str(row[0])
    if not ts_text.isdigit():
        raise OkxParseError(f"candle ts must be milliseconds, got {ts_text!r}")
    o, h, low, c, vol = (dec(str(v)) for v in row[1:6])
    if min(o, h, low, c) <= 0 or vol < 0:
        raise OkxParseError(f"candle prices must be > 0 and volume >= 0, got {list(row[:6])}")
    if not low <= min(o, c) <= max(o, c) <= h:
        raise OkxParseError(f"candle high/low do not contain open/close: {list(row[:6])}")
    confirm = str(row[8]) if len(row) > 8 else "1"
    if confirm not in ("0", "1"):
        raise OkxParseError(f'candle confirm must be "0" or "1", got {confirm!r}')
    return Candle(symbol=inst.symbol, bar=bar, ts=utc_from_ms(ts_text), open=o, high=h, low=low, close=c,
                  volume=vol, confirmed=confirm == "1")


class OkxCandles:
    """The REST read of the most recent ``limit`` candles of one instrument (oldest first)."""

    def __init__(self, rest: OkxRest) -> None:
        self._rest = rest

    async def fetch(self, inst: Instrument, bar: str, limit: int) -> list[Candle]:
        """The newest ``limit`` bars (the open one included), oldest first.

        market/candles serves the recent bars (300 a page); when it runs dry before ``limit``
        the older ones come from market/history-candles, paged with ``after`` = the oldest open
        time read so far. A row that cannot be read stops nothing: it is skipped.
        """
        if bar not in BARS:
            raise ValueError(f'unknown bar "{bar}": expected one of {", ".join(BARS)}')
        limit = max(1, min(limit, MAX_CANDLES))
        ex = self._rest.ex
        by_ts: dict[int, Candle] = {}
        after = ""
        for endpoint, page in ((ex.public_get_market_candles, RECENT_PAGE),
                               (ex.public_get_market_history_candles, HISTORY_PAGE)):
            while len(by_ts) < limit:
                query = {"instId": inst.inst_id, "bar": bar, "limit": str(min(page, limit - len(by_ts)))}
                if after:
                    query["after"] = after
                resp = await self._rest.call(f"reading {bar} candles of {inst.symbol}",
                                             functools.partial(endpoint, query), retry=True)
                rows = resp.get("data") or []
                for row in rows:
                    try:
                        candle = parse_candle(row, inst, bar)
                    except (OkxParseError, ArithmeticError, ValueError):
                        continue
                    by_ts.setdefault(int(candle.ts.timestamp() * 1000), candle)
                oldest = min(by_ts) if by_ts else None
                if not rows or oldest is None or str(oldest) == after:
                    break
                after = str(oldest)
                if len(rows) < int(query["limit"]):
                    break  # this endpoint has nothing older: the next one may
            if len(by_ts) >= limit:
                break
        return [by_ts[k] for k in sorted(by_ts)[-limit:]]
