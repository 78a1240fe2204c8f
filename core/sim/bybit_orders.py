"""Order routes of the simulator's Bybit v5 face: create (plain and conditional), cancel, amend,
cancel all, open orders and order history; a TP/SL leg or a trigger is a conditional order.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from core.sim import bybit_shapes as by
from core.sim.bybit_face import (
    WEEK_MS,
    BybitFace,
    Teller,
    cursor_page,
    window,
)
from core.sim.market import InstrumentSpec
from core.sim.okx_shapes import s
from core.sim.params import SimError, dec
from core.sim.state import Account, AlgoOrder, Order

LINK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
ORDER_TYPES = {("Market", ""): "market", ("Limit", "GTC"): "limit", ("Limit", ""): "limit",
               ("Limit", "PostOnly"): "post_only", ("Limit", "IOC"): "ioc", ("Limit", "FOK"): "fok",
               ("Market", "IOC"): "market", ("Market", "GTC"): "market", ("Market", "FOK"): "market"}


class BybitOrders(BybitFace):
    """/v5/order/..."""

    def find(self, acct: Account, body: dict[str, Any], inst: str) -> Order:
        oid, link = str(body.get("orderId") or ""), str(body.get("orderLinkId") or "")
        if not oid and not link:
            raise SimError("10001", "params error: orderId or orderLinkId is required")
        o = acct.orders.get(oid) if oid else next(
            (x for x in reversed(acct.orders.values()) if x.tag == link), None)
        if o is None or (inst and o.inst_id != inst):
            raise SimError("110001", "order not exists or too late to cancel")
        return o

    def create(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        self.linear(body)
        if body.get("category") != "linear":
            raise SimError("10001", "params error: the simulator trades category linear only")
        inst = self.inst(body.get("symbol"))
        spec = self.ex.specs[inst]
        sd = {"Buy": "buy", "Sell": "sell"}.get(str(body.get("side") or ""))
        if sd is None:
            raise SimError("10001", "params error: side invalid")
        kind = ORDER_TYPES.get((str(body.get("orderType") or ""), str(body.get("timeInForce") or "")))
        if kind is None:
            raise SimError("10001", "params error: orderType or timeInForce invalid")
        coins = self._qty(body, spec)
        link = self._link_id(acct, body)
        if body.get("triggerPrice") not in (None, ""):
            return self._conditional(acct, body, inst, sd, kind, coins / spec.ct_val, link)
        idx = int(body.get("positionIdx") or 0)
        req: dict[str, Any] = {"instId": inst, "side": sd, "ordType": kind, "tdMode": "cross",
                               "sz": s(coins / spec.ct_val), "tag": link,
                               "reduceOnly": bool(body.get("reduceOnly") or body.get("closeOnTrigger")),
                               "posSide": {1: "long", 2: "short"}.get(idx, "")}
        if kind != "market":
            req["px"] = str(body.get("price") or "")
        attach = {k: s(dec(body[name], name)) for k, name in (("tpTriggerPx", "takeProfit"), ("slTriggerPx", "stopLoss"))
                  if body.get(name) not in (None, "", "0")}
        if attach:
            req["attachAlgoOrds"] = [attach]
        o = self.ex.place_order(acct, req)
        return {"orderId": o.ord_id, "orderLinkId": o.tag}

    def _conditional(self, acct: Account, body: dict[str, Any], inst: str, sd: str, kind: str, sz: Decimal,
                     link: str) -> dict[str, Any]:
        """A conditional order (triggerPrice): held by the exchange (Untriggered) until the last
        price reaches triggerPrice, then a market or limit order. Its TP/SL are not served."""
        if body.get("takeProfit") not in (None, "", "0") or body.get("stopLoss") not in (None, "", "0"):
            raise SimError("10001", "params error: takeProfit/stopLoss on a conditional order are not served by "
                                    "the simulator; set them on the position once it is open")
        trigger = dec(body["triggerPrice"], "triggerPrice")
        last = self.ex.last(inst)
        direction = str(body.get("triggerDirection") or "")
        if (direction == "1" and trigger <= last) or (direction == "2" and trigger >= last):
            raise SimError("110092" if direction == "1" else "110093",
                           f"expect {'Rising' if direction == '1' else 'Falling'}, but trigger_price["
                           f"{s(trigger)}] {'<=' if direction == '1' else '>='} current[{s(last)}]")
        req = {"instId": inst, "side": sd, "ordType": "trigger", "tdMode": "cross", "sz": s(sz),
               "triggerPx": s(trigger), "orderPx": "-1" if kind == "market" else str(body.get("price") or ""),
               "reduceOnly": bool(body.get("reduceOnly") or body.get("closeOnTrigger")), "algoClOrdId": link}
        a = self.ex.place_algo(acct, req)
        return {"orderId": a.algo_id, "orderLinkId": link}

    @staticmethod
    def _qty(body: dict[str, Any], spec: InstrumentSpec) -> Decimal:
        """The order's qty in coins, refused in Bybit's units (qtyStep, minOrderQty)."""
        coins = dec(body.get("qty"), "qty")
        step, least = spec.lot_sz * spec.ct_val, spec.min_sz * spec.ct_val
        if coins <= 0 or (coins / step) != (coins / step).to_integral_value():
            raise SimError("10001", f"params error: qty {body.get('qty')} is not a positive multiple of the "
                                    f"qtyStep {s(step.normalize())} of {body.get('symbol')}")
        if coins < least:
            raise SimError("10001", f"params error: qty {body.get('qty')} is below the minOrderQty "
                                    f"{s(least.normalize())} of {body.get('symbol')}")
        return coins

    @staticmethod
    def _link_id(acct: Account, body: dict[str, Any]) -> str:
        link = str(body.get("orderLinkId") or "")
        if link and not LINK_ID_RE.match(link):
            raise SimError("10001", "params error: orderLinkId invalid")
        if link and any(o.tag == link for o in acct.orders.values()):
            raise SimError("110072", "OrderLinkedID is duplicate")
        return link

    def cancel(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        self.linear(body)
        inst = self.inst(body.get("symbol"))
        oid = str(body.get("orderId") or "")
        algo_id, leg = by.split_leg_id(oid)
        a = acct.algos.get(algo_id) if oid else None
        if a is not None and a.inst_id == inst:  # a TP/SL leg or trigger still waiting: a conditional order
            if leg:
                gone = [x for x in by.algo_orders(a, self.ex.specs[inst], push=True) if x["orderId"] == oid]
                self.ex.drop_leg(acct, a.algo_id, leg)
                for x in gone:  # the canceled leg's last word; the algo's push shows the leg left
                    x.update(orderStatus="Deactivated", cancelType="CancelByUser", leavesQty="0",
                             updatedTime=str(a.u_time))
                    if isinstance(self.srv.hub, Teller):
                        self.srv.hub.told(acct.uid, "order", x)
            else:
                self.ex.cancel_algo(acct, a.algo_id)
            return {"orderId": oid, "orderLinkId": a.algo_cl_ord_id}
        o = self.find(acct, body, inst)
        self.ex.cancel_order(acct, inst, o.ord_id)
        return {"orderId": o.ord_id, "orderLinkId": o.tag}

    def amend(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        self.linear(body)
        inst = self.inst(body.get("symbol"))
        o = self.find(acct, body, inst)
        req: dict[str, Any] = {"instId": inst, "ordId": o.ord_id}
        if body.get("qty") not in (None, ""):
            req["newSz"] = s(dec(body["qty"], "qty") / self.ex.specs[inst].ct_val)
        if body.get("price") not in (None, ""):
            req["newPx"] = str(body["price"])
        self.ex.amend_order(acct, req)
        return {"orderId": o.ord_id, "orderLinkId": o.tag}

    def cancel_all(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        self.linear(body)
        inst = self.inst(body.get("symbol"), required=False)
        if not inst and body.get("settleCoin") not in (by.COIN,) and not body.get("baseCoin"):
            raise SimError("10001", "params error: symbol, baseCoin or settleCoin is required")
        done = []
        for o in list(acct.open_orders.values()):
            if not inst or o.inst_id == inst:
                self.ex.cancel_order(acct, o.inst_id, o.ord_id)
                done.append({"orderId": o.ord_id, "orderLinkId": o.tag})
        return {"list": done, "success": "1"}

    def _algo_rows(self, acct: Account, q: dict[str, str], inst: str, live: bool,
                   any_status: bool = False) -> list[tuple[int, dict[str, Any]]]:
        if q.get("orderFilter") not in (None, "", "StopOrder"):
            return []
        return [(a.c_time, item) for a in acct.algos.values()
                if (any_status or (a.state == "live") == live) and (not inst or a.inst_id == inst)
                and (not q.get("orderLinkId") or a.algo_cl_ord_id == q["orderLinkId"])
                for item in by.algo_orders(a, self.ex.specs[a.inst_id])
                if not q.get("orderId") or item["orderId"] == q["orderId"]]

    def _order_rows(self, acct: Account, q: dict[str, str], inst: str, orders: list[Order]) -> list[
            tuple[int, dict[str, Any]]]:
        if q.get("orderFilter") not in (None, "", "Order"):
            return []
        return [(o.c_time, by.order(acct, o, self.ex.specs[o.inst_id], o.tag)) for o in orders
                if (not inst or o.inst_id == inst) and (not q.get("orderId") or o.ord_id == q["orderId"])
                and (not q.get("orderLinkId") or o.tag == q["orderLinkId"])]

    def realtime(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        cat = str(q.get("category") or "")
        if not self.linear(q):
            return {"list": [], "nextPageCursor": "", "category": cat}
        inst = self.inst(q.get("symbol"), required=False)
        if not inst and not q.get("settleCoin") and not q.get("baseCoin") and not q.get("orderId") \
                and not q.get("orderLinkId"):
            raise SimError("10001", "params error: symbol, baseCoin or settleCoin is required for linear")
        closed = str(q.get("openOnly") or "0") == "1"
        # an order asked for by its id is found whatever its status (among the recent 500), as
        # Bybit answers it (ccxt's fetch_order relies on it); otherwise openOnly picks open or closed
        any_status = bool(q.get("orderId") or q.get("orderLinkId")) and not q.get("openOnly")
        orders = [o for o in acct.orders.values() if any_status or o.is_open != closed]
        rows = self._order_rows(acct, q, inst, orders) + self._algo_rows(acct, q, inst, not closed, any_status)
        rows.sort(key=lambda r: r[0], reverse=True)
        chunk, cursor = cursor_page([r[1] for r in rows][:500], q, 20, 50)
        return {"list": chunk, "nextPageCursor": cursor, "category": cat}

    def history(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        cat = str(q.get("category") or "")
        if not self.linear(q):
            return {"list": [], "nextPageCursor": "", "category": cat}
        inst = self.inst(q.get("symbol"), required=False)
        start, end = window(q, self.ex.clock(), WEEK_MS)
        orders = [o for o in acct.orders.values() if start <= o.c_time <= end]
        algos: list[AlgoOrder] = [a for a in acct.algos.values() if start <= a.c_time <= end]
        rows = self._order_rows(acct, q, inst, orders)
        if q.get("orderFilter") in (None, "", "StopOrder"):
            rows += [(a.c_time, item) for a in algos if not inst or a.inst_id == inst
                     for item in by.algo_orders(a, self.ex.specs[a.inst_id])
                     if not q.get("orderId") or item["orderId"] == q["orderId"]]
        if q.get("orderStatus"):
            rows = [r for r in rows if r[1]["orderStatus"] == q["orderStatus"]]
        rows.sort(key=lambda r: r[0], reverse=True)
        chunk, cursor = cursor_page([r[1] for r in rows], q, 20, 50)
        return {"list": chunk, "nextPageCursor": cursor, "category": cat}
