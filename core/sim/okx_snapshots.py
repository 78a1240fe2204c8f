"""What a new subscription to the simulator's OKX WebSocket gets at once.

OKX answers a subscription to tickers, mark price, funding rate, candles, positions, account and
balance_and_position with the channel's current state before any change is pushed; the hub
(core.sim.ws) asks ``OkxSnapshots`` for it on every subscribe.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.sim import okx_shapes as shapes
from core.sim.candles import CHANNELS as CANDLE_CHANNELS
from core.sim.candles import CandleBook
from core.sim.exchange import Exchange, Push
from core.sim.ws import Conn, Hub


class OkxSnapshots:
    """The current state of a channel, as the first message of a subscription."""

    def __init__(self, exchange: Exchange, candles: CandleBook, ticker_item: Callable[[str], dict[str, str]],
                 funding_item: Callable[[str], dict[str, str]]) -> None:
        self.exchange = exchange
        self.candles = candles
        self.ticker_item = ticker_item
        self.funding_item = funding_item

    def __call__(self, conn: Conn, sub: dict[str, Any]) -> list[dict[str, Any]]:
        """What a new subscription gets at once (OKX sends current state for these channels)."""
        ch = sub["channel"]
        inst = str(sub.get("instId") or "")
        ex = self.exchange
        if ch == "tickers":
            return [{"arg": sub, "data": [self.ticker_item(inst)]}]
        if ch == "mark-price":
            return [{"arg": sub, "data": [{"instType": "SWAP", "instId": inst, "markPx": shapes.s(ex.mark(inst)),
                                           "ts": str(ex.clock())}]}]
        if ch == "funding-rate":
            return [{"arg": sub, "data": [self.funding_item(inst)]}]
        if ch in CANDLE_CHANNELS:
            return [{"arg": sub, "data": [self.candles.current(inst, CANDLE_CHANNELS[ch], ex.clock())]}]
        acct = conn.acct
        if acct is None:
            return []
        arg = dict(sub, uid=acct.uid)
        now = ex.clock()
        if ch == "positions":
            am = ex.account_metrics(acct)
            data = [ex.position_item(acct, p, am, push=True) for p in acct.positions.values()
                    if p.pos != 0 and Hub.matches(sub, Push("positions", acct.uid, p.inst_id, {}))]
            return [{"arg": arg, "eventType": "snapshot", "curPage": 1, "lastPage": True, "data": data}]
        if ch == "account":
            return [{"arg": arg, "eventType": "snapshot", "curPage": 1, "lastPage": True,
                     "data": [shapes.account(ex.account_metrics(acct), now)]}]
        if ch == "balance_and_position":
            pos = [p for p in acct.positions.values() if p.pos != 0]
            return [{"arg": arg, "data": [{
                "pTime": str(now), "eventType": "snapshot",
                "balData": [{"ccy": "USDT", "cashBal": shapes.s(acct.cash), "uTime": str(now)}],
                "posData": [{"avgPx": shapes.s(p.avg_px), "baseBal": "", "ccy": "USDT", "instId": p.inst_id,
                             "instType": "SWAP", "mgnMode": p.mgn_mode, "nonSettleAvgPx": "", "pos": shapes.s(p.pos),
                             "posCcy": "", "posId": p.pos_id, "posSide": p.pos_side, "quoteBal": "", "settledPnl": "",
                             "tradeId": p.last_trade_id, "uTime": str(p.u_time)} for p in pos],
                "trades": []}]}]
        return []
