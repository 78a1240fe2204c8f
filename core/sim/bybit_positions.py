"""Position routes of the simulator's Bybit v5 face: the list, leverage, position mode, trading
stop (TP/SL), closed PnL. One-way mode and cross margin are what the face makes; isolated
positions made through the OKX face are still shown.
"""
from __future__ import annotations

from typing import Any

from core.sim import bybit_shapes as by
from core.sim.bybit_face import (
    WEEK_MS,
    BybitFace,
    cursor_page,
    window,
)
from core.sim.okx_shapes import s
from core.sim.params import SimError, dec
from core.sim.state import Account


class BybitPositions(BybitFace):
    """/v5/position/..."""

    def position_list(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        cat = str(q.get("category") or "")
        if not self.linear(q):
            return {"list": [], "nextPageCursor": "", "category": cat}
        if q.get("symbol"):
            inst = self.inst(q["symbol"])
            keys = [k for k, p in acct.positions.items() if k[0] == inst and p.pos != 0]
            if not keys:  # "If symbol passed, it returns data regardless of having position or not"
                if acct.pos_mode == "net_mode":
                    keys = [(inst, "cross", "net")]
                else:
                    keys = [(inst, "cross", "long"), (inst, "cross", "short")]
        elif q.get("settleCoin"):
            if q["settleCoin"] != by.COIN:
                return {"list": [], "nextPageCursor": "", "category": cat}
            keys = [k for k, p in acct.positions.items() if p.pos != 0]
        else:
            raise SimError("10001", "params error: symbol or settleCoin is required for linear")
        rows = [self.position_item(acct, k) for k in keys]
        chunk, cursor = cursor_page(rows, q, 20, 200)
        return {"list": chunk, "nextPageCursor": cursor, "category": cat}

    def set_leverage(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        self.linear(body)
        inst = self.inst(body.get("symbol"))
        buy, sell = body.get("buyLeverage"), body.get("sellLeverage")
        if buy in (None, "") or str(buy) != str(sell):
            raise SimError("10001", "params error: buyLeverage must equal sellLeverage in one-way mode")
        lever = dec(buy, "buyLeverage")
        if self.ex.lever_of(acct, inst, "cross") == lever:
            raise SimError("110043", "Set leverage not modified")
        self.ex.set_leverage(acct, inst, "cross", s(lever))
        return {}

    def switch_mode(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        """One-way (mode 0) or hedge (mode 3). The simulator keeps one mode per account, so the
        symbol or coin named switches every symbol; Bybit refuses a switch with a position open."""
        assert acct is not None
        self.linear(body)
        if not body.get("symbol") and not body.get("coin"):
            raise SimError("10001", "params error: symbol or coin is required")
        if body.get("symbol"):
            self.inst(body["symbol"])
        mode = {0: "net_mode", 3: "long_short_mode"}.get(int(body.get("mode", -1)))
        if mode is None:
            raise SimError("10001", "params error: mode must be 0 (one-way) or 3 (hedge)")
        if mode == acct.pos_mode:
            raise SimError("110025", "Position mode is not modified")
        if any(p.pos != 0 for p in acct.positions.values()) or acct.open_orders:
            raise SimError("110024", "You have an existing position, so position mode cannot be switched")
        self.ex.set_position_mode(acct, mode)
        return {}

    def trading_stop(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        """Position TP/SL (tpslMode Full): replaces the position's TP/SL; "0" removes one."""
        assert acct is not None
        self.linear(body)
        inst = self.inst(body.get("symbol"))
        if str(body.get("tpslMode") or "Full") != "Full":
            raise SimError("10001", "params error: the simulator serves tpslMode Full only")
        pos_side = {0: "net", 1: "long", 2: "short"}.get(int(body.get("positionIdx") or 0), "net")
        p = acct.positions.get((inst, "cross", pos_side))
        if p is None or p.pos == 0:
            raise SimError("10001", "can not set tp/sl/ts for zero position")
        current = [a for a in acct.algos.values() if a.state == "live" and a.reduce_only and a.inst_id == inst
                   and a.td_mode == "cross" and a.pos_side == pos_side and a.ord_type in ("conditional", "oco")]
        tp = current[0].tp_trigger_px if current else None
        sl = current[0].sl_trigger_px if current else None
        for name in ("takeProfit", "stopLoss"):
            v = body.get(name)
            if v not in (None, ""):
                d = dec(v, name)
                if name == "takeProfit":
                    tp = d if d > 0 else None
                else:
                    sl = d if d > 0 else None
        req: dict[str, Any] = {"instId": inst, "side": "sell" if p.direction_sign > 0 else "buy",
                               "ordType": "conditional", "tdMode": "cross", "closeFraction": "1",
                               "reduceOnly": True, "posSide": pos_side if pos_side != "net" else ""}
        if tp is not None:
            req["tpTriggerPx"] = s(tp)
        if sl is not None:
            req["slTriggerPx"] = s(sl)
        if tp is not None or sl is not None:
            self.ex.place_algo(acct, req)  # refused (price already through) before the old one goes
        for a in current:
            self.ex.cancel_algo(acct, a.algo_id)
        return {}

    def closed_pnl(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        cat = str(q.get("category") or "")
        if not self.linear(q):
            return {"nextPageCursor": "", "category": cat, "list": []}
        inst = self.inst(q.get("symbol"), required=False)
        start, end = window(q, self.ex.clock(), WEEK_MS)
        recs = [r for r in self.replay(acct).closed.values()
                if start <= r.updated <= end and (not inst or r.inst_id == inst)]
        recs.sort(key=lambda r: r.updated, reverse=True)
        chunk, cursor = cursor_page(recs, q, 50, 100)
        return {"nextPageCursor": cursor, "category": cat,
                "list": [by.closed_pnl(r, acct.orders.get(r.ord_id), self.ex.specs[r.inst_id]) for r in chunk]}
