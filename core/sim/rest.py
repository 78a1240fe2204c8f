"""REST endpoints of the simulator (/api/v5/...): routing table, envelopes, filters and paging.

Handlers return the ``data`` list; order-style endpoints return per-item sCode/sMsg and the
envelope code OKX uses ("0" all succeeded, "1" all failed, "2" some failed). Other errors raise
SimError and become ``{"code": <code>, "msg": ..., "data": []}``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger

from core.sim import okx_shapes as shapes
from core.sim import params
from core.sim.exchange import Exchange, SimError
from core.sim.state import Account, Order

if TYPE_CHECKING:
    from core.sim.server import SimServer

T = TypeVar("T")
Result = tuple[str, str, list[Any]]  # (code, msg, data)
Handler = Callable[[Account | None, dict[str, str], Any], Result]


def ok(data: list[Any]) -> Result:
    return "0", "", data


def page(items: Iterable[T], key: Callable[[T], int], q: dict[str, str], ts: Callable[[T], int] | None = None,
         default_limit: int = 100) -> list[T]:
    """OKX paging: newest first; ``after`` = older than, ``before`` = newer than; begin/end on ts."""
    out = list(items)
    after, before = params.integer(q.get("after"), "after"), params.integer(q.get("before"), "before")
    begin, end = params.integer(q.get("begin"), "begin"), params.integer(q.get("end"), "end")
    limit = params.limit(q.get("limit"), default_limit, 100)
    if after is not None:
        out = [x for x in out if key(x) < after]
    if before is not None:
        out = [x for x in out if key(x) > before]
    tsf = ts or key
    if begin is not None:
        out = [x for x in out if tsf(x) >= begin]
    if end is not None:
        out = [x for x in out if tsf(x) <= end]
    out.reverse()  # newest first, also among equal keys (two lives updated in one millisecond)
    out.sort(key=key, reverse=True)
    return out[:limit]


def _insts(q: dict[str, str]) -> set[str] | None:
    v = q.get("instId")
    return set(v.split(",")) if v else None


def _order_results(items: list[tuple[dict[str, Any], Callable[[], dict[str, Any]]]], now: Callable[[], int]) -> Result:
    """Run each order operation; collect sCode/sMsg items and the envelope code."""
    data: list[dict[str, Any]] = []
    failed = 0
    for req, op in items:
        try:
            item = op()
            item.setdefault("sCode", "0")
            item.setdefault("sMsg", "Order placed")
        except SimError as e:
            failed += 1
            item = {"clOrdId": str(req.get("clOrdId") or ""), "ordId": "", "tag": str(req.get("tag") or ""),
                    "sCode": e.code, "sMsg": e.msg}
            if "algoId" in req or req.get("ordType") in ("conditional", "oco", "trigger"):
                item.update({"algoId": str(req.get("algoId") or ""), "algoClOrdId": str(req.get("algoClOrdId") or "")})
        item["ts"] = str(now())
        data.append(item)
    if failed == 0:
        return "0", "", data
    if failed == len(items):
        return "1", "All operations failed", data
    return "2", "Some operations failed", data


class Rest:
    """The /api/v5 surface; ``routes`` maps (METHOD, path-after-/api/v5/) to (private, handler)."""

    def __init__(self, server: SimServer) -> None:
        self.srv = server
        self.ex: Exchange = server.exchange
        self.routes: dict[tuple[str, str], tuple[bool, Handler]] = {
            ("GET", "public/instruments"): (False, self.instruments),
            ("GET", "public/time"): (False, self.time),
            ("GET", "public/mark-price"): (False, self.mark_price),
            ("GET", "public/funding-rate"): (False, self.funding_rate),
            ("GET", "public/funding-rate-history"): (False, self.funding_rate_history),
            ("GET", "market/ticker"): (False, self.ticker),
            ("GET", "market/tickers"): (False, self.tickers),
            ("GET", "market/books"): (False, self.books),
            ("GET", "market/candles"): (False, self.candles),
            ("GET", "market/history-candles"): (False, self.history_candles),
            ("GET", "account/max-size"): (True, self.max_size),
            ("GET", "account/max-avail-size"): (True, self.max_avail_size),
            ("POST", "trade/amend-order"): (True, self.amend_order),
            ("POST", "trade/amend-algos"): (True, self.amend_algos),
            ("GET", "account/balance"): (True, self.balance),
            ("GET", "account/positions"): (True, self.positions),
            ("GET", "account/config"): (True, self.config),
            ("GET", "account/leverage-info"): (True, self.leverage_info),
            ("GET", "account/trade-fee"): (True, self.trade_fee),
            ("GET", "account/bills"): (True, self.bills),
            ("GET", "account/bills-archive"): (True, self.bills),
            ("GET", "account/positions-history"): (True, self.positions_history),
            ("POST", "account/set-leverage"): (True, self.set_leverage),
            ("POST", "account/set-position-mode"): (True, self.set_position_mode),
            ("POST", "trade/order"): (True, self.order),
            ("POST", "trade/batch-orders"): (True, self.batch_orders),
            ("POST", "trade/cancel-order"): (True, self.cancel_order),
            ("POST", "trade/cancel-batch-orders"): (True, self.cancel_batch_orders),
            ("POST", "trade/order-algo"): (True, self.order_algo),
            ("POST", "trade/cancel-algos"): (True, self.cancel_algos),
            ("POST", "trade/close-position"): (True, self.close_position),
            ("GET", "trade/order"): (True, self.get_order),
            ("GET", "trade/orders-pending"): (True, self.orders_pending),
            ("GET", "trade/orders-history"): (True, self.orders_history),
            ("GET", "trade/orders-history-archive"): (True, self.orders_history),
            ("GET", "trade/fills"): (True, self.fills),
            ("GET", "trade/fills-history"): (True, self.fills),
            ("GET", "trade/order-algo"): (True, self.get_algo),
            ("GET", "trade/orders-algo-pending"): (True, self.algos_pending),
            ("GET", "trade/orders-algo-history"): (True, self.algos_history),
        }
        self.routes = {route: (private, self._guarded(route, h)) for route, (private, h) in self.routes.items()}

    @staticmethod
    def _guarded(route: tuple[str, str], handler: Handler) -> Handler:
        """``handler`` behind the rules every request obeys: OKX's empty-means-absent and required
        fields (``params.request``, one place for every endpoint); and for input nobody foresaw an
        OKX-shaped answer and one log line, never a traceback."""
        def run(acct: Account | None, q: dict[str, str], body: Any) -> Result:
            try:
                q, body = params.request(route, q, body)
                return handler(acct, q, body)
            except SimError:
                raise
            except Exception as exc:  # a bug or an input no check foresaw: said, not crashed on
                logger.error("SIM {} /api/v5/{} failed: {}: {}", route[0], route[1], type(exc).__name__, exc)
                raise SimError("50026", "System error, please try again later", 500) from None
        return run

    # ------------------------------------------------------------------ public

    def _inst_list(self, q: dict[str, str]) -> list[str]:
        it = q.get("instType")
        if it and it not in ("SWAP", "ANY"):
            return []
        wanted = _insts(q)
        if wanted and wanted != {"ANY"}:
            for i in wanted:
                self.ex.spec(i)
            return [i for i in self.ex.specs if i in wanted]
        return list(self.ex.specs)

    def instruments(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        if not q.get("instType"):
            raise SimError("50014", "Parameter instType can not be empty")
        return ok([shapes.instrument(self.ex.specs[i], self.ex.list_time) for i in self._inst_list(q)])

    def time(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        return ok([{"ts": str(self.ex.clock())}])

    def mark_price(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        now = str(self.ex.clock())
        return ok([{"instType": "SWAP", "instId": i, "markPx": shapes.s(self.ex.mark(i)), "ts": now}
                   for i in self._inst_list(q)])

    def funding_rate(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        if not q.get("instId"):
            raise SimError("50014", "Parameter instId can not be empty")
        return ok([self.srv.funding_item(i) for i in self._inst_list(q)])

    def funding_rate_history(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        inst = q.get("instId") or ""
        self.ex.spec(inst)
        rows = [r for r in self.srv.funding_history if r["instId"] == inst]
        return ok(page(rows, lambda r: int(r["fundingTime"]), q))

    def ticker(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        inst = q.get("instId") or ""
        self.ex.spec(inst)
        return ok([self.srv.ticker_item(inst)])

    def tickers(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        if not q.get("instType"):
            raise SimError("50014", "Parameter instType can not be empty")
        return ok([self.srv.ticker_item(i) for i in self._inst_list(q)])

    def books(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        inst = q.get("instId") or ""
        spec = self.ex.spec(inst)
        depth = params.limit(q.get("sz"), 5, 400, "sz")
        bid, ask = self.ex.bid_ask(inst)
        asks = [[shapes.s(ask + spec.tick_sz * k), "100", "0", "3"] for k in range(depth)]
        bids = [[shapes.s(bid - spec.tick_sz * k), "100", "0", "3"] for k in range(depth) if bid - spec.tick_sz * k > 0]
        return ok([{"asks": asks, "bids": bids, "ts": str(self.ex.clock())}])

    def _candles(self, q: dict[str, str], max_limit: int) -> Result:
        inst = q.get("instId") or ""
        if not inst:
            raise SimError("50014", "Parameter instId can not be empty")
        self.ex.spec(inst)
        rows = self.srv.candles.bars(inst, q.get("bar") or "1m", self.ex.clock())
        after, before = params.integer(q.get("after"), "after"), params.integer(q.get("before"), "before")
        if after is not None:
            rows = [r for r in rows if int(r[0]) < after]
        if before is not None:
            rows = [r for r in rows if int(r[0]) > before]
        limit = params.limit(q.get("limit"), 100, max_limit)
        if q.get("before") and not q.get("after"):
            return ok(rows[-limit:])  # "newer than": the oldest page after it, still newest first
        return ok(rows[:limit])

    def candles(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        """market/candles: newest first, up to 300 rows a page."""
        return self._candles(q, 300)

    def history_candles(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        """market/history-candles: the same rows, up to 100 a page (all the simulator keeps)."""
        return self._candles(q, 100)

    # ------------------------------------------------------------------ account

    def max_size(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        out = []
        for inst in (q.get("instId") or "").split(","):
            buy, sell = self.ex.max_size(acct, inst, q.get("tdMode") or "", q.get("px"))
            out.append({"ccy": "USDT", "instId": inst, "maxBuy": shapes.s(buy), "maxSell": shapes.s(sell)})
        return ok(out)

    def max_avail_size(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        """For a USDT swap: the margin (USDT) available to open either way (single-currency margin)."""
        assert acct is not None
        out = []
        avail = shapes.s(max(self.ex.account_metrics(acct).avail, Decimal(0)))
        for inst in (q.get("instId") or "").split(","):
            self.ex.spec(inst)
            if (q.get("tdMode") or "") not in ("cross", "isolated"):
                raise SimError("51000", "Parameter tdMode error")
            out.append({"instId": inst, "availBuy": avail, "availSell": avail})
        return ok(out)


    def balance(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        return ok([shapes.account(self.ex.account_metrics(acct), self.ex.clock())])

    def positions(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        it = q.get("instType")
        if it and it not in ("SWAP", "ANY"):
            return ok([])
        wanted = _insts(q)
        pos_ids = set(q["posId"].split(",")) if q.get("posId") else None
        am = self.ex.account_metrics(acct)
        out = [self.ex.position_item(acct, p, am)
               for p in sorted(acct.positions.values(), key=lambda p: p.c_time, reverse=True)
               if p.pos != 0 and (wanted is None or p.inst_id in wanted) and (pos_ids is None or p.pos_id in pos_ids)]
        return ok(out)

    def config(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        return ok([{
            "acctLv": "2", "acctStpMode": "cancel_maker", "autoLoan": False, "ctIsoMode": "automatic",
            "enableSpotBorrow": False, "feeType": "0", "greeksType": "PA", "ip": "", "kycLv": "2", "label": "perpdesk-demo",
            "level": "Lv1", "levelTmp": "", "liquidationGear": "-1", "mainUid": acct.uid, "mgnIsoMode": "automatic",
            "opAuth": "0", "perm": "read_only,trade", "posMode": acct.pos_mode, "roleType": "0",
            "spotBorrowAutoRepay": False, "spotOffsetType": "", "spotRoleType": "0", "spotTraderInsts": [],
            "stgyType": "0", "traderInsts": [], "type": "0", "uid": acct.uid,
            # the settlement currency of USD-margined contracts (an account setting; OKX's default)
            "settleCcy": "USDC", "settleCcyList": ["USD", "USDC", "USDG"],
        }])

    def leverage_info(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        mode = q.get("mgnMode") or "cross"
        out = []
        for inst in (q.get("instId") or "").split(","):
            self.ex.spec(inst)
            out.append({"instId": inst, "mgnMode": mode, "posSide": "net" if acct.pos_mode == "net_mode" else "",
                        "lever": shapes.s(self.ex.lever_of(acct, inst, mode))})
        return ok(out)

    def trade_fee(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        mk, tk = shapes.s(-self.ex.maker_fee), shapes.s(-self.ex.taker_fee)
        return ok([{"category": "1", "delivery": "", "exercise": "", "instType": q.get("instType") or "SWAP",
                    "level": "Lv1", "maker": mk, "makerU": mk, "makerUSDC": mk, "taker": tk, "takerU": tk,
                    "takerUSDC": tk, "ts": str(self.ex.clock()), "fiat": []}])

    def bills(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        rows = acct.bills
        if q.get("instType") and q["instType"] != "SWAP":
            return ok([])
        if q.get("ccy") and q["ccy"] != "USDT":
            return ok([])
        if q.get("ctType") and q["ctType"] != "linear":
            return ok([])
        if q.get("type"):
            rows = [b for b in rows if b.type == q["type"]]
        if q.get("subType"):
            rows = [b for b in rows if b.sub_type == q["subType"]]
        if q.get("instId"):
            rows = [b for b in rows if b.inst_id == q["instId"]]
        if q.get("mgnMode"):
            rows = [b for b in rows if b.mgn_mode == q["mgnMode"]]
        return ok([shapes.bill(b) for b in page(rows, lambda b: int(b.bill_id), q, lambda b: b.ts)])

    def positions_history(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        rows = acct.pos_history
        for k, attr in (("instId", "inst_id"), ("mgnMode", "mgn_mode"), ("type", "type"), ("posId", "pos_id")):
            if q.get(k):
                rows = [h for h in rows if getattr(h, attr) == q[k]]
        if q.get("instType") and q["instType"] not in ("SWAP", "ANY"):
            rows = []
        got = page(rows, lambda h: h.u_time, q)
        return ok([shapes.position_history(h, self.ex.specs[h.inst_id].ct_val) for h in got])

    def set_leverage(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        body = body if isinstance(body, dict) else {}
        inst = str(body.get("instId") or "")
        if not inst:
            raise SimError("50014", "Parameter instId can not be empty")
        mode = str(body.get("mgnMode") or "")
        lv = self.ex.set_leverage(acct, inst, mode, body.get("lever"))
        pos_side = str(body.get("posSide") or "")
        return ok([{"lever": shapes.s(lv), "mgnMode": mode, "instId": inst, "posSide": pos_side}])

    def set_position_mode(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        mode = str((body or {}).get("posMode") or "") if isinstance(body, dict) else ""
        self.ex.set_position_mode(acct, mode)
        return ok([{"posMode": mode}])

    # ------------------------------------------------------------------ trading

    def _place(self, acct: Account, req: Any) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            if not isinstance(req, dict):
                raise SimError("50002", "Json data format error")
            o = self.ex.place_order(acct, req)
            return {"clOrdId": o.cl_ord_id, "ordId": o.ord_id, "tag": o.tag, "sCode": "0", "sMsg": "Order placed"}
        return run

    def order(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        if not isinstance(body, dict):
            raise SimError("50002", "Json data format error")
        return _order_results([(body, self._place(acct, body))], self.ex.clock)

    def batch_orders(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        if not isinstance(body, list) or not body:
            raise SimError("50002", "Json data format error")
        if len(body) > 20:
            raise SimError("51000", "Parameter batch orders error: at most 20 orders")
        return _order_results([(r if isinstance(r, dict) else {}, self._place(acct, r)) for r in body], self.ex.clock)

    def _cancel(self, acct: Account, req: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            o = self.ex.cancel_order(acct, str(req.get("instId") or ""), str(req.get("ordId") or ""),
                                     str(req.get("clOrdId") or ""))
            return {"clOrdId": o.cl_ord_id, "ordId": o.ord_id, "sCode": "0", "sMsg": ""}
        return run

    def cancel_order(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        if not isinstance(body, dict):
            raise SimError("50002", "Json data format error")
        return _order_results([(body, self._cancel(acct, body))], self.ex.clock)

    def cancel_batch_orders(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        if not isinstance(body, list) or not body:
            raise SimError("50002", "Json data format error")
        return _order_results([(r, self._cancel(acct, r)) for r in body if isinstance(r, dict)], self.ex.clock)

    def order_algo(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        if not isinstance(body, dict):
            raise SimError("50002", "Json data format error")

        def run() -> dict[str, Any]:
            a = self.ex.place_algo(acct, body)
            return {"algoId": a.algo_id, "algoClOrdId": a.algo_cl_ord_id, "clOrdId": a.cl_ord_id, "tag": a.tag,
                    "sCode": "0", "sMsg": "Order placed"}
        return _order_results([(dict(body, ordType=body.get("ordType") or "conditional"), run)], self.ex.clock)

    def cancel_algos(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        reqs = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
        if not reqs:
            raise SimError("50002", "Json data format error")

        def mk(r: dict[str, Any]) -> Callable[[], dict[str, Any]]:
            def run() -> dict[str, Any]:
                a = self.ex.cancel_algo(acct, str(r.get("algoId") or ""), str(r.get("instId") or ""))
                return {"algoId": a.algo_id, "algoClOrdId": a.algo_cl_ord_id, "sCode": "0", "sMsg": ""}
            return run
        return _order_results([(dict(r, algoId=r.get("algoId", "")), mk(r)) for r in reqs if isinstance(r, dict)],
                              self.ex.clock)

    def close_position(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        if not isinstance(body, dict):
            raise SimError("50002", "Json data format error")
        inst = str(body.get("instId") or "")
        o = self.ex.close_position(acct, inst, str(body.get("mgnMode") or ""), str(body.get("posSide") or ""),
                                   cl_ord_id=str(body.get("clOrdId") or ""), tag=str(body.get("tag") or ""))
        return ok([{"instId": inst, "posSide": o.pos_side, "clOrdId": o.cl_ord_id, "tag": str(body.get("tag") or "")}])

    def amend_order(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        if not isinstance(body, dict):
            raise SimError("50002", "Json data format error")

        def run() -> dict[str, Any]:
            o = self.ex.amend_order(acct, body)
            return {"clOrdId": o.cl_ord_id, "ordId": o.ord_id, "reqId": str(body.get("reqId") or ""),
                    "sCode": "0", "sMsg": ""}
        code, msg, data = _order_results([(body, run)], self.ex.clock)
        for item in data:
            item.setdefault("reqId", str(body.get("reqId") or ""))
            item.pop("tag", None)
        return code, msg, data

    def amend_algos(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        if not isinstance(body, dict):
            raise SimError("50002", "Json data format error")

        def run() -> dict[str, Any]:
            a = self.ex.amend_algo(acct, body)
            return {"algoClOrdId": a.algo_cl_ord_id, "algoId": a.algo_id, "reqId": str(body.get("reqId") or ""),
                    "sCode": "0", "sMsg": ""}
        code, msg, data = _order_results([(dict(body, algoId=body.get("algoId") or ""), run)], self.ex.clock)
        for item in data:
            item.setdefault("reqId", str(body.get("reqId") or ""))
            for k in ("clOrdId", "ordId", "tag", "ts"):
                item.pop(k, None)
        return code, msg, data

    # ------------------------------------------------------------------ queries

    def _order_item(self, o: Order) -> dict[str, Any]:
        return shapes.order(o, self.ex.specs[o.inst_id].ct_val)

    def get_order(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        inst = q.get("instId") or ""
        if not inst:
            raise SimError("50014", "Parameter instId can not be empty")
        self.ex.spec(inst)
        return ok([self._order_item(self.ex.find_order(acct, inst, q.get("ordId") or "", q.get("clOrdId") or ""))])

    def _orders(self, acct: Account, q: dict[str, str], open_: bool) -> list[Order]:
        rows = list(acct.open_orders.values()) if open_ else [o for o in acct.orders.values() if not o.is_open]
        if q.get("instType") and q["instType"] not in ("SWAP", "ANY"):
            return []
        for k, attr in (("instId", "inst_id"), ("ordType", "ord_type"), ("state", "state"), ("category", "category")):
            if q.get(k):
                vals = set(q[k].split(","))
                rows = [o for o in rows if getattr(o, attr) in vals]
        return page(rows, lambda o: int(o.ord_id), q, lambda o: o.c_time)

    def orders_pending(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        return ok([self._order_item(o) for o in self._orders(acct, q, True)])

    def orders_history(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        return ok([self._order_item(o) for o in self._orders(acct, q, False)])

    def fills(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        rows = acct.fills
        if q.get("instType") and q["instType"] not in ("SWAP", "ANY"):
            return ok([])
        if q.get("instId"):
            rows = [f for f in rows if f.inst_id == q["instId"]]
        if q.get("ordId"):
            rows = [f for f in rows if f.ord_id == q["ordId"]]
        mk, tk = -self.ex.maker_fee, -self.ex.taker_fee
        return ok([shapes.fill(f, mk if f.exec_type == "M" else tk) for f in page(rows, lambda f: int(f.bill_id), q, lambda f: f.ts)])

    def get_algo(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        a = acct.algos.get(q.get("algoId") or "")
        if a is None:
            raise SimError("51603", "Order does not exist")
        return ok([shapes.algo(a, self.ex.last(a.inst_id))])

    def _algos(self, acct: Account, q: dict[str, str], live: bool) -> list[dict[str, Any]]:
        rows = [a for a in acct.algos.values() if (a.state == "live") == live]
        if q.get("algoId"):
            rows = [a for a in rows if a.algo_id == q["algoId"]]
        if q.get("instId"):
            rows = [a for a in rows if a.inst_id == q["instId"]]
        if q.get("ordType"):
            types = set(q["ordType"].split(","))
            rows = [a for a in rows if a.ord_type in types or ("conditional" in types and a.ord_type == "oco")]
        if q.get("state"):
            rows = [a for a in rows if a.state == q["state"]]
        return [shapes.algo(a, self.ex.last(a.inst_id)) for a in page(rows, lambda a: int(a.algo_id), q, lambda a: a.c_time)]

    def algos_pending(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        return ok(self._algos(acct, q, True))

    def algos_history(self, acct: Account | None, q: dict[str, str], body: Any) -> Result:
        assert acct is not None
        if not q.get("state") and not q.get("algoId"):
            raise SimError("51000", "Parameter state or algoId required")
        return ok(self._algos(acct, q, False))

