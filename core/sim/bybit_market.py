"""Public market routes of the simulator's Bybit v5 face: time, instruments, tickers, order book,
klines, funding history (no signature).
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.sim import bybit_shapes as by
from core.sim.bybit_face import (
    BybitFace,
    cursor_page,
    int_param,
)
from core.sim.okx_shapes import s
from core.sim.params import SimError
from core.sim.state import Account

KLINE_BARS = by.KLINE_BARS


class BybitMarket(BybitFace):
    """GET /v5/market/... and the tickers item the public stream sends too."""

    def time(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        now = self.ex.clock()
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    def instruments(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        cat = str(q.get("category") or "")
        if not self.linear(q):
            return {"category": cat, "list": [], "nextPageCursor": ""}
        insts = [self.inst(q["symbol"])] if q.get("symbol") else list(self.ex.specs)
        minutes = max(1, self.ex.funding_interval_ms // 60000)
        rows = [by.instrument(self.ex.specs[i], self.ex.list_time, minutes) for i in insts]
        chunk, cursor = cursor_page(rows, q, 500, 1000)
        return {"category": cat, "list": chunk, "nextPageCursor": cursor}

    def ticker(self, inst: str) -> dict[str, Any]:
        """A tickers item (REST) and the tickers stream's data (same fields for a perpetual)."""
        t = self.srv.ticker_item(inst)
        spec = self.ex.specs[inst]
        last = self.ex.last(inst)
        opened = Decimal(t["open24h"])
        vol_coins = Decimal(t["vol24h"]) * spec.ct_val
        rate = self.srv.market.funding_rates[inst]
        return {
            "symbol": by.symbol(inst), "lastPrice": s(last), "indexPrice": s(last), "markPrice": s(self.ex.mark(inst)),
            "prevPrice24h": s(opened), "price24hPcnt": s(((last - opened) / opened).quantize(Decimal("1e-6"))),
            "highPrice24h": t["high24h"], "lowPrice24h": t["low24h"], "prevPrice1h": s(opened),
            "openInterest": "0", "openInterestValue": "0", "turnover24h": s(vol_coins * last),
            "volume24h": s(vol_coins), "fundingRate": s(rate), "nextFundingTime": str(self.ex.next_funding[inst]),
            "predictedDeliveryPrice": "", "basisRate": "", "deliveryFeeRate": "", "deliveryTime": "0",
            "ask1Size": s(Decimal(t["askSz"]) * spec.ct_val), "bid1Price": t["bidPx"], "ask1Price": t["askPx"],
            "bid1Size": s(Decimal(t["bidSz"]) * spec.ct_val), "basis": "", "preOpenPrice": "", "preQty": "",
            "curPreListingPhase": "", "fundingIntervalHour": str(max(1, self.ex.funding_interval_ms // 3_600_000)),
            "basisRateYear": "", "fundingCap": "0.0075", "tickDirection": "ZeroPlusTick",
        }

    def tickers(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        cat = str(q.get("category") or "")
        if not self.linear(q):
            return {"category": cat, "list": []}
        insts = [self.inst(q["symbol"])] if q.get("symbol") else list(self.ex.specs)
        return {"category": cat, "list": [self.ticker(i) for i in insts]}

    def orderbook(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self.linear(q)
        inst = self.inst(q.get("symbol"))
        spec = self.ex.specs[inst]
        depth = max(1, min(500, int_param(q, "limit", 25) or 25))
        bid, ask = self.ex.bid_ask(inst)
        size = s(Decimal(100) * spec.ct_val)
        now = self.ex.clock()
        return {"s": by.symbol(inst), "a": [[s(ask + spec.tick_sz * k), size] for k in range(depth)],
                "b": [[s(bid - spec.tick_sz * k), size] for k in range(depth) if bid - spec.tick_sz * k > 0],
                "ts": now, "u": now, "seq": now, "cts": now}

    def kline(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self.linear(q)
        inst = self.inst(q.get("symbol"))
        bar = KLINE_BARS.get(str(q.get("interval") or ""))
        if bar is None:
            raise SimError("10001", "params error: interval invalid")
        spec = self.ex.specs[inst]
        rows = self.srv.candles.bars(inst, bar, self.ex.clock())
        start, end = int_param(q, "start"), int_param(q, "end")
        out = []
        for r in rows:  # newest first, as Bybit lists them
            ts = int(r[0])
            if (start is not None and ts < start) or (end is not None and ts > end):
                continue
            coins = Decimal(r[5]) * spec.ct_val
            out.append([r[0], r[1], r[2], r[3], r[4], s(coins), r[7] if len(r) > 7 else s(coins * Decimal(r[4]))])
        limit = max(1, min(1000, int_param(q, "limit", 200) or 200))
        return {"symbol": by.symbol(inst), "category": "linear", "list": out[:limit]}

    def funding_history(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self.linear(q)
        inst = self.inst(q.get("symbol"))
        start, end = int_param(q, "startTime"), int_param(q, "endTime")
        rows = [r for r in reversed(self.srv.funding_history) if r["instId"] == inst
                and (start is None or int(r["fundingTime"]) >= start) and (end is None or int(r["fundingTime"]) <= end)]
        limit = max(1, min(200, int_param(q, "limit", 200) or 200))
        return {"category": "linear", "list": [{"symbol": by.symbol(inst), "fundingRate": r["fundingRate"],
                                                "fundingRateTimestamp": r["fundingTime"]} for r in rows[:limit]]}
