"""REST endpoints of the simulator's Bybit v5 face (/v5/...): the route table, envelope, errors.

Every answer is Bybit's envelope ``{"retCode", "retMsg", "result", "retExtInfo", "time"}``. The
matching engine and the account are the exchange core's (the OKX face speaks for the same core):
the route families (bybit_market, bybit_account, bybit_positions, bybit_orders, over the shared
translation of bybit_face) turn Bybit's requests into the core's, and this module the core's
rejections into Bybit's retCodes.

Only what a USDT-perpetual trader uses is served: category ``linear`` (spot, inverse and option
answer empty lists), one-way mode, cross margin (isolated positions made through the OKX face are
still shown).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from core.sim import bybit_auth
from core.sim import bybit_shapes as by
from core.sim.bybit_account import BybitAccount
from core.sim.bybit_face import BybitFace
from core.sim.bybit_market import BybitMarket
from core.sim.bybit_orders import BybitOrders
from core.sim.bybit_positions import BybitPositions
from core.sim.params import SimError
from core.sim.state import Account

if TYPE_CHECKING:
    from core.sim.server import SimServer

Handler = Callable[[Account | None, dict[str, str], dict[str, Any]], dict[str, Any]]

RET_CODES = {
    "51008": ("110007", "ab not enough for new order"),
    "51603": ("110001", "order not exists or too late to cancel"),
    "51400": ("110001", "order not exists or too late to cancel"),
    "51401": ("110001", "order not exists or too late to cancel"),
    "51402": ("110001", "order not exists or too late to cancel"),
    "51503": ("110001", "order not exists or too late to replace"),
    "51509": ("110001", "order not exists or too late to replace"),
    "51510": ("110001", "order not exists or too late to replace"),
    "51169": ("110017", "current position is zero, cannot fix reduce-only order qty"),
    "51023": ("110017", "current position is zero, cannot fix reduce-only order qty"),
    "51016": ("110072", "OrderLinkedID is duplicate"),
    "51202": ("10001", "The quantity of a single market order must be less than the maximum order quantity"),
}


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def bybit_error(e: SimError) -> tuple[str, str]:
    """(retCode, retMsg) of a core rejection; Bybit's own codes (5 digits or more) pass as they are."""
    if e.code in RET_CODES:
        code, msg = RET_CODES[e.code]
        return code, f"{msg} ({e.msg})"
    if e.code.startswith("5"):
        return "10001", e.msg  # a parameter the core refused: Bybit's "params error"
    return e.code, e.msg


def envelope(result: dict[str, Any], now: int, code: str = "0", msg: str = "OK") -> dict[str, Any]:
    return {"retCode": int(code), "retMsg": msg, "result": result, "retExtInfo": {}, "time": now}


class BybitRest(BybitFace):
    """The /v5 surface of one SimServer: the routes of each family, faults, signatures, errors."""

    def __init__(self, srv: SimServer) -> None:
        super().__init__(srv, {})
        self.server = srv
        market = self.market = BybitMarket(srv, self.replays)
        account = self.account = BybitAccount(srv, self.replays)
        positions = self.positions = BybitPositions(srv, self.replays)
        orders = self.orders = BybitOrders(srv, self.replays)
        self.routes: dict[tuple[str, str], tuple[bool, Handler]] = {
            ("GET", "market/time"): (False, market.time),
            ("GET", "market/instruments-info"): (False, market.instruments),
            ("GET", "market/tickers"): (False, market.tickers),
            ("GET", "market/orderbook"): (False, market.orderbook),
            ("GET", "market/kline"): (False, market.kline),
            ("GET", "market/funding/history"): (False, market.funding_history),
            ("GET", "user/query-api"): (True, account.query_api),
            ("GET", "account/info"): (True, account.account_info),
            ("GET", "account/wallet-balance"): (True, account.wallet_balance),
            ("GET", "account/fee-rate"): (True, account.fee_rate),
            ("GET", "account/transaction-log"): (True, account.transaction_log),
            ("GET", "position/list"): (True, positions.position_list),
            ("POST", "position/set-leverage"): (True, positions.set_leverage),
            ("POST", "position/trading-stop"): (True, positions.trading_stop),
            ("POST", "position/switch-mode"): (True, positions.switch_mode),
            ("GET", "position/closed-pnl"): (True, positions.closed_pnl),
            ("POST", "order/create"): (True, orders.create),
            ("POST", "order/cancel"): (True, orders.cancel),
            ("POST", "order/amend"): (True, orders.amend),
            ("POST", "order/cancel-all"): (True, orders.cancel_all),
            ("GET", "order/realtime"): (True, orders.realtime),
            ("GET", "order/history"): (True, orders.history),
            ("GET", "execution/list"): (True, account.executions),
        }

    async def fault(self) -> web.Response | None:
        """The next injected fault (POST /sim/v1/fault), as Bybit shows each: a rate limit is
        retCode 10006, a 5xx and a timeout come from the gateway as plain HTTP errors."""
        if not self.server.faults:
            return None
        f = self.server.faults[0]
        f["count"] -= 1
        if f["count"] <= 0:
            self.server.faults.pop(0)
        if f["kind"] == "rate_limit":
            return _json(envelope({}, self.ex.clock(), "10006", "Too many visits!"))
        if f["kind"] == "timeout":
            assert self.server.stopping is not None
            try:
                await asyncio.wait_for(self.server.stopping.wait(), float(f.get("delay", 30.0)))  # float ok: seconds
            except TimeoutError:
                pass
            return web.Response(status=504, text="504 Gateway Time-out")
        return web.Response(status=503, text="503 Service Temporarily Unavailable")

    async def handle(self, request: web.Request) -> web.Response:
        faulted = await self.fault()
        if faulted is not None:
            return faulted
        now = self.ex.clock()
        path = request.match_info["tail"]
        route = self.routes.get((request.method, path))
        if route is None:
            return _json({"retCode": 404, "retMsg": f"Endpoint {request.method} /v5/{path} not supported by "
                                                    "perpdesk sim", "result": {}, "retExtInfo": {}, "time": now}, 404)
        private, handler = route
        body_text = await request.text() if request.method == "POST" else ""
        try:
            acct = None
            if private:
                raw = request.raw_path
                payload = body_text if request.method == "POST" else (raw.split("?", 1)[1] if "?" in raw else "")
                acct = bybit_auth.verify_rest(self.ex.accounts, request.headers, payload, now)
            body: dict[str, Any] = {}
            if body_text:
                try:
                    parsed = orjson.loads(body_text)
                except orjson.JSONDecodeError:
                    raise SimError("10001", "request body is not valid JSON") from None
                if not isinstance(parsed, dict):
                    raise SimError("10001", "request body must be a JSON object")
                body = parsed
            result = handler(acct, dict(request.query), body)
        except SimError as e:
            self.server.flush()
            code, msg = bybit_error(e)
            return _json(envelope({}, self.ex.clock(), code, msg), e.http)
        except (ValueError, TypeError, ArithmeticError, KeyError, AttributeError) as e:
            # a parameter of the wrong type or form (positionIdx "x", qty [1]): Bybit's params error
            self.server.flush()
            return _json(envelope({}, self.ex.clock(), "10001", f"params error: {type(e).__name__}: {e}"))
        self.server.flush()
        if private and request.method == "POST":
            self.server.mark_changed()
        return _json(envelope(result, self.ex.clock()))

    def ticker(self, inst: str) -> dict[str, Any]:
        """The tickers item (the public stream sends the REST answer's fields)."""
        return self.market.ticker(inst)

    def control_state(self, acct: Account) -> dict[str, Any]:
        """An account in GET /sim/v1/state, in Bybit's shapes and symbols (the face's own view)."""
        keys = [k for k, p in acct.positions.items() if p.pos != 0]
        return {
            "uid": acct.uid, "apiKey": acct.api_key, "posMode": acct.pos_mode,
            "balance": self.wallet_item(acct),
            "positions": [self.position_item(acct, k) for k in keys],
            "openOrders": [by.order(acct, o, self.ex.specs[o.inst_id], o.tag) for o in acct.open_orders.values()],
            "liveAlgos": [x for a in acct.algos.values() if a.state == "live"
                          for x in by.algo_orders(a, self.ex.specs[a.inst_id])],
            "fills": str(len(acct.fills)), "bills": str(len(acct.bills)),
        }
