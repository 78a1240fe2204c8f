"""The simulator's control API (/sim/v1: price, funding, ADL, drop, fault, state), outside OKX's.

Why its own module: it is the test and demo remote of the exchange, guarded apart from the OKX
protocol the rest of the server speaks (no web page may reach it), and it only drives the server's
public methods.
"""
from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from core.sim import okx_shapes as shapes
from core.sim import params
from core.sim.exchange import SimError

if TYPE_CHECKING:
    from core.sim.server import SimServer

CONTROL_TOKEN_HEADER = "X-Sim-Token"


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


class ControlApi:
    """The /sim/v1 routes of one SimServer."""

    def __init__(self, srv: SimServer) -> None:
        self.srv = srv

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/sim/v1/price", self._ctl_price)
        app.router.add_post("/sim/v1/funding", self._ctl_funding)
        app.router.add_post("/sim/v1/adl", self._ctl_adl)
        app.router.add_post("/sim/v1/drop", self._ctl_drop)
        app.router.add_post("/sim/v1/fault", self._ctl_fault)
        app.router.add_get("/sim/v1/state", self._ctl_state)

    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The /sim/v1 control API moves prices and books money, so no web page may reach it.

        A browser sends a cross-site ``text/plain`` POST without asking (no CORS preflight), so
        a POST must say ``application/json``; any request with an ``Origin`` header came from a
        page and is refused; with ``allow_remote`` every call must carry the ``X-Sim-Token``
        generated at start (the demo credentials are public, the token is not).
        """
        if not request.path.startswith("/sim/v1/"):
            answer: web.StreamResponse = await handler(request)
            return answer
        if "Origin" in request.headers:
            return _json({"code": "403", "msg": "cross-origin requests to the control API are refused",
                          "data": []}, 403)
        if self.srv.control_token is not None and not hmac.compare_digest(
                request.headers.get(CONTROL_TOKEN_HEADER, ""), self.srv.control_token):
            return _json({"code": "401", "msg": f"missing or wrong {CONTROL_TOKEN_HEADER} header", "data": []}, 401)
        if request.method == "POST" and request.content_type != "application/json":
            return _json({"code": "415", "msg": "the control API takes Content-Type: application/json",
                          "data": []}, 415)
        response: web.StreamResponse = await handler(request)
        if request.method == "POST":
            self.srv.keep()  # a price, funding or ADL moved money: on disk before the answer
        return response

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            raise SimError("50002", "Json data format error", 400) from None
        if not isinstance(body, dict):
            raise SimError("50002", "Json data format error", 400)
        return body

    def _inst(self, body: dict[str, Any]) -> str:
        """The core's instrument id of a control request: a Bybit face also takes its own symbols
        (BTCUSDT), so a test or a demo drives it with the ids its clients see."""
        inst = str(body.get("instId") or "")
        if self.srv.protocol == "bybit":
            return self.srv.bybit.symbols.get(inst, inst)
        return inst

    @staticmethod
    def _ctl_error(e: SimError) -> web.Response:
        return _json({"code": e.code, "msg": e.msg, "data": []}, 400 if e.http == 200 else e.http)

    async def _ctl_price(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            inst = self._inst(body)
            px = params.dec(body.get("px"), "px")
            if px <= 0:
                raise SimError("51000", "Parameter px error")
            new = self.srv.set_price(inst, px)
        except SimError as e:
            return self._ctl_error(e)
        except (ArithmeticError, ValueError):
            return self._ctl_error(SimError("51000", "Parameter px error"))
        return _json({"code": "0", "msg": "", "data": [{"instId": inst, "px": shapes.s(new)}]})

    async def _ctl_funding(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            inst = self._inst(body)
            self.srv.exchange.spec(inst)
            rate = params.dec(body["rate"], "rate") if body.get("rate") not in (None, "") else None
            bills = self.srv.settle_funding(inst, rate)
        except SimError as e:
            return self._ctl_error(e)
        except (ArithmeticError, ValueError):
            return self._ctl_error(SimError("51000", "Parameter rate error"))
        return _json({"code": "0", "msg": "", "data": [shapes.bill(b) for b in bills]})

    async def _ctl_adl(self, request: web.Request) -> web.Response:
        """Auto-deleverage the demo account's position: {"instId", "sz"?: contracts or "all", "px"?,
        "mgnMode"?, "posSide"?}. The reply names the ADL order and fill and the position left."""
        try:
            body = await self._body(request)
            inst = self._inst(body)
            sz = body.get("sz")
            if self.srv.protocol == "bybit" and sz not in (None, "") and str(sz).lower() != "all":
                sz = shapes.s(params.dec(sz, "sz") / self.srv.exchange.spec(inst).ct_val)  # Bybit: coins
            o = self.srv.exchange.adl(self.srv.account, inst, sz, body.get("px"),
                                  mgn_mode=str(body.get("mgnMode") or ""), pos_side=str(body.get("posSide") or ""))
        except SimError as e:
            self.srv.flush()
            return self._ctl_error(e)
        self.srv.flush()
        p = self.srv.account.positions[(o.inst_id, o.td_mode, o.pos_side)]
        return _json({"code": "0", "msg": "", "data": [{
            "instId": o.inst_id, "ordId": o.ord_id, "tradeId": o.trade_id, "side": o.side,
            "sz": shapes.s(o.acc_fill_sz), "px": shapes.s(o.fill_px), "pnl": shapes.s(o.pnl),
            "pos": shapes.s(p.pos), "mgnMode": o.td_mode, "posSide": o.pos_side}]})

    async def _ctl_drop(self, request: web.Request) -> web.Response:
        n = await self.srv.hub.drop_all()
        return _json({"code": "0", "msg": "", "data": [{"closed": str(n)}]})

    async def _ctl_fault(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
        except SimError as e:
            return self._ctl_error(e)
        kind = body.get("kind")
        if kind not in ("5xx", "timeout", "rate_limit"):
            return self._ctl_error(SimError("51000", "kind must be 5xx, timeout or rate_limit"))
        try:
            count = int(body.get("count", 1))
            delay = float(body.get("delay", 30.0))  # float ok: seconds
        except (TypeError, ValueError, OverflowError):
            return self._ctl_error(SimError("51000", "count/delay must be numbers"))
        if not (1 <= count <= 1_000_000 and 0 <= delay <= 3600):  # NaN fails too (it held a request forever)
            return self._ctl_error(SimError("51000", "count must be 1..1000000 and delay 0..3600 seconds"))
        self.srv.faults.append({"kind": kind, "count": count, "delay": delay})
        return _json({"code": "0", "msg": "", "data": [{"kind": kind, "count": str(count)}]})

    async def _ctl_state(self, request: web.Request) -> web.Response:
        ex = self.srv.exchange
        now = ex.clock()
        accounts = []
        for acct in ex.accounts.values():
            am = ex.account_metrics(acct)
            accounts.append({
                "uid": acct.uid, "apiKey": acct.api_key, "posMode": acct.pos_mode,
                "balance": shapes.account(am, now),
                "positions": [ex.position_item(acct, p, am)
                              for p in acct.positions.values() if p.pos != 0],
                "openOrders": [shapes.order(o, ex.specs[o.inst_id].ct_val) for o in acct.open_orders.values()],
                "liveAlgos": [shapes.algo(a) for a in acct.algos.values() if a.state == "live"],
                "fills": str(len(acct.fills)), "bills": str(len(acct.bills)),
            })
        if self.srv.protocol == "bybit":
            accounts = [self.srv.bybit.control_state(acct) for acct in ex.accounts.values()]
        name = (lambda i: self.srv.bybit.symbol_of(i)) if self.srv.protocol == "bybit" else (lambda i: i)
        data = {"ts": str(now), "speed": str(self.srv.speed), "seed": str(self.srv.seed),
                "protocol": self.srv.protocol,
                "prices": {name(i): shapes.s(p) for i, p in self.srv.market.prices.items()},
                "fundingRates": {name(i): shapes.s(r) for i, r in self.srv.market.funding_rates.items()},
                "nextFunding": {name(i): str(t) for i, t in ex.next_funding.items()},
                "wsConnections": str(len(self.srv.hub.conns)), "accounts": accounts}
        return _json({"code": "0", "msg": "", "data": [data]})
