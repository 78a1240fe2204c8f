"""Algo orders: TP/SL (conditional, oco), trigger orders and the TP/SL attached to an entry.

The exchange holds them until the price reaches a trigger, then places a normal order carrying
the algo's ``algoId`` (source 6 for a trigger, 7 for TP/SL), as OKX does. An entry's
``attachAlgoOrds`` get their ``attachAlgoId`` when the entry is accepted and become live algos
with that id once the entry has filled; a flat position takes its reduce-only TP/SL with it.
"""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from core.money import ZERO
from core.sim import okx_shapes as shapes
from core.sim import params
from core.sim.matching import Matching
from core.sim.params import SimError
from core.sim.state import Account, AlgoOrder, Order, Position

TP_SL_FIELDS = ("tpTriggerPx", "tpOrdPx", "tpTriggerPxType", "slTriggerPx", "slOrdPx", "slTriggerPxType")


class AlgoBook(Matching):
    """Algo orders on top of matching."""

    def place_algo(self, acct: Account, req: dict[str, Any], attached_to: str = "", algo_id: str = "") -> AlgoOrder:
        spec = self.spec(str(req.get("instId", "")))
        ctx = self._context(acct)
        if algo_id:
            ctx = params.Context(lambda: algo_id, ctx.now, ctx.lever)
        a = params.parse_algo(acct, req, spec, ctx, self.last(spec.inst_id), attached_to)
        acct.algos[a.algo_id] = a
        self._emit_algo(acct, a)
        return a

    def find_algo(self, acct: Account, algo_id: str = "", algo_cl_ord_id: str = "", inst_id: str = "") -> AlgoOrder:
        a = acct.algos.get(algo_id) if algo_id else next(
            (x for x in acct.algos.values() if algo_cl_ord_id and x.algo_cl_ord_id == algo_cl_ord_id), None)
        if a is None or (inst_id and a.inst_id != inst_id):
            raise SimError("51603", "Order does not exist")
        return a

    def cancel_algo(self, acct: Account, algo_id: str, inst_id: str = "") -> AlgoOrder:
        a = self.find_algo(acct, algo_id, inst_id=inst_id)
        if a.state != "live":
            raise SimError("51400", "Algo order cannot be canceled: it is no longer live")
        a.state, a.u_time = "canceled", self.clock()
        self._emit_algo(acct, a)
        return a

    def drop_leg(self, acct: Account, algo_id: str, leg: str) -> AlgoOrder:
        """Remove the TP (``leg`` "tp") or SL ("sl") of a live TP/SL algo; without a leg left the
        algo is canceled. Why: Bybit lists a TP+SL as two orders and cancels each on its own."""
        a = self.find_algo(acct, algo_id)
        if a.state != "live" or a.ord_type not in ("conditional", "oco"):
            raise SimError("51400", "Algo order cannot be canceled: it is no longer live")
        if (a.tp_trigger_px if leg == "tp" else a.sl_trigger_px) is None:
            raise SimError("51603", "Order does not exist")
        if leg == "tp":
            a.tp_trigger_px = a.tp_ord_px = None
        else:
            a.sl_trigger_px = a.sl_ord_px = None
        if a.tp_trigger_px is None and a.sl_trigger_px is None:
            a.state = "canceled"
        a.ord_type = "conditional"
        a.u_time = self.clock()
        self._emit_algo(acct, a)
        return a

    def amend_algo(self, acct: Account, req: dict[str, Any]) -> AlgoOrder:
        """trade/amend-algos: new TP/SL triggers (and order prices, size) of a live TP/SL algo.

        Why it matters: moving a stop to break-even is an amend on OKX, not cancel-and-replace,
        so the algoId a journal or a console shows stays the same.
        """
        a = self.find_algo(acct, str(req.get("algoId") or ""), str(req.get("algoClOrdId") or ""),
                           str(req.get("instId") or ""))
        if a.state != "live" or a.ord_type not in ("conditional", "oco"):
            raise SimError("51000", "Only a live TP/SL algo order can be amended")
        new = {k: req.get("new" + k[0].upper() + k[1:]) for k in TP_SL_FIELDS}
        merged = {"tpTriggerPx": a.tp_trigger_px, "tpOrdPx": a.tp_ord_px, "tpTriggerPxType": a.tp_trigger_px_type,
                  "slTriggerPx": a.sl_trigger_px, "slOrdPx": a.sl_ord_px, "slTriggerPxType": a.sl_trigger_px_type}
        merged.update({k: v for k, v in new.items() if v not in (None, "")})
        trial = replace(a)  # validated on a copy: a refused amend leaves the algo as it was
        params.set_tp_sl(trial, {k: shapes.s(v) if isinstance(v, Decimal) else v for k, v in merged.items()
                                 if v is not None})
        params.check_tp_sl_side(trial, self.last(a.inst_id))
        if req.get("newSz") not in (None, ""):
            trial.sz = params.dec(req.get("newSz"), "newSz", string_only=True)
        for f in ("tp_trigger_px", "tp_ord_px", "tp_trigger_px_type", "sl_trigger_px", "sl_ord_px",
                  "sl_trigger_px_type", "sz"):
            setattr(a, f, getattr(trial, f))
        a.ord_type = "oco" if a.tp_trigger_px is not None and a.sl_trigger_px is not None else "conditional"
        a.u_time = self.clock()
        self._emit_algo(acct, a)
        return a

    def _after_fill(self, acct: Account, o: Order, p: Position, closed_life: bool) -> None:
        if closed_life:
            self._cancel_position_algos(acct, p)
        if o.attach_algo_ords and o.state == "filled":
            self._create_attached(acct, o)

    def _create_attached(self, acct: Account, o: Order) -> None:
        """attachAlgoOrds of an entry order become live TP/SL once the entry has filled."""
        for x in o.attach_algo_ords:
            req = {"instId": o.inst_id, "side": "sell" if o.side == "buy" else "buy", "ordType": "conditional",
                   "tdMode": o.td_mode, "sz": shapes.s(o.acc_fill_sz), "reduceOnly": True,
                   "posSide": o.pos_side if o.pos_side != "net" else "",
                   "algoClOrdId": x.get("attachAlgoClOrdId", ""), "tag": o.tag}
            for k in TP_SL_FIELDS:
                if x.get(k) not in (None, ""):
                    req[k] = x[k]
            try:
                self.place_algo(acct, req, attached_to=o.ord_id, algo_id=str(x.get("attachAlgoId") or ""))
            except SimError:
                pass  # a TP/SL already through the price: OKX drops it too (the entry stands)
        o.attach_algo_ords = []

    def _cancel_position_algos(self, acct: Account, p: Position) -> None:
        """A flat position takes its reduce-only TP/SL with it (as OKX does for position TP/SL)."""
        for a in acct.algos.values():
            if (a.state == "live" and a.ord_type in ("conditional", "oco") and a.reduce_only
                    and a.inst_id == p.inst_id and a.td_mode == p.mgn_mode and a.pos_side == p.pos_side):
                a.state, a.u_time = "canceled", self.clock()
                self._emit_algo(acct, a)

    def _fire_algos(self, acct: Account, inst_id: str) -> None:
        """Fire every live algo of ``inst_id`` whose trigger the price has reached."""
        for a in [a for a in acct.algos.values() if a.state == "live" and a.inst_id == inst_id]:
            if a.state == "live":
                self._check_trigger(acct, a)

    def _check_trigger(self, acct: Account, a: AlgoOrder) -> None:
        last, mark = self.last(a.inst_id), self.mark(a.inst_id)
        if a.ord_type == "trigger":
            assert a.trigger_px is not None
            if (last >= a.trigger_px) if a.trigger_up else (last <= a.trigger_px):
                self._fire(acct, a, "", a.trigger_px, a.order_px)
            return
        sell = a.side == "sell"
        tp, sl = a.tp_trigger_px, a.sl_trigger_px
        px = last if a.tp_trigger_px_type == "last" else mark
        if tp is not None and ((px >= tp) if sell else (px <= tp)):
            self._fire(acct, a, "tp", tp, a.tp_ord_px)
            return
        px = last if a.sl_trigger_px_type == "last" else mark
        if sl is not None and ((px <= sl) if sell else (px >= sl)):
            self._fire(acct, a, "sl", sl, a.sl_ord_px)

    def _fire(self, acct: Account, a: AlgoOrder, actual_side: str, trigger: Decimal, ord_px: Decimal | None) -> None:
        a.state, a.actual_side, a.trigger_time, a.u_time = "effective", actual_side, self.clock(), self.clock()
        a.actual_px = trigger
        sz = a.sz
        if a.close_fraction == "1":
            p = acct.positions.get((a.inst_id, a.td_mode, a.pos_side))
            sz = p.size if p is not None else ZERO
        a.actual_sz = sz
        market = ord_px is None or ord_px == -1
        req: dict[str, Any] = {"instId": a.inst_id, "side": a.side, "ordType": "market" if market else "limit",
                               "tdMode": a.td_mode, "sz": shapes.s(sz), "reduceOnly": a.reduce_only,
                               "posSide": a.pos_side if a.pos_side != "net" else "", "tag": a.tag}
        if not market:
            req["px"] = shapes.s(ord_px)
        try:
            o = self.place_order(acct, req, source="6" if a.ord_type == "trigger" else "7", algo=a)
            a.ord_id = o.ord_id
        except SimError:
            a.state = "order_failed"
        self._emit_algo(acct, a)
