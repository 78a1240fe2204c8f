"""REST endpoints of the simulator's Bybit v5 face (/v5/...): routes, envelope, paging, errors.

Every answer is Bybit's envelope ``{"retCode", "retMsg", "result", "retExtInfo", "time"}``. The
matching engine and the account are the exchange core's (the OKX face speaks for the same core):
this module translates Bybit's requests into the core's (symbol BTCUSDT -> BTC-USDT-SWAP, coins ->
contracts) and the core's rejections into Bybit's retCodes. Lists page with an opaque
``nextPageCursor`` (here: the offset of the next row); the history endpoints keep Bybit's time
windows (7 days by default and at most, 24 hours for the transaction log).

Only what a USDT-perpetual trader uses is served: category ``linear`` (spot, inverse and option
answer empty lists), one-way mode, cross margin (isolated positions made through the OKX face are
still shown).
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from core.money import ZERO
from core.sim import bybit_auth
from core.sim import bybit_shapes as by
from core.sim.bybit_ws import BybitHub
from core.sim.market import InstrumentSpec
from core.sim.okx_shapes import s
from core.sim.params import SimError, dec
from core.sim.state import Account, AlgoOrder, Order

if TYPE_CHECKING:
    from core.sim.server import SimServer

Handler = Callable[[Account | None, dict[str, str], dict[str, Any]], dict[str, Any]]
DAY_MS = 24 * 3600 * 1000
WEEK_MS = 7 * DAY_MS
LINK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
ORDER_TYPES = {("Market", ""): "market", ("Limit", "GTC"): "limit", ("Limit", ""): "limit",
               ("Limit", "PostOnly"): "post_only", ("Limit", "IOC"): "ioc", ("Limit", "FOK"): "fok",
               ("Market", "IOC"): "market", ("Market", "GTC"): "market", ("Market", "FOK"): "market"}
KLINE_BARS = by.KLINE_BARS

# The core's OKX codes as Bybit answers the same refusal (ccxt maps these retCodes to its errors).
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


def _int(q: dict[str, str], name: str, default: int | None = None) -> int | None:
    v = q.get(name)
    if v in (None, ""):
        return default
    try:
        return int(str(v))
    except ValueError:
        raise SimError("10001", f"params error: {name} invalid") from None


def cursor_page(rows: list[Any], q: dict[str, str], default: int, most: int) -> tuple[list[Any], str]:
    """One page of ``rows`` (already in Bybit's order) and the cursor of the next, "" when none."""
    limit = _int(q, "limit", default) or default
    if not 1 <= limit <= most:
        raise SimError("10001", f"params error: limit must be within [1, {most}]")
    start = 0
    if q.get("cursor"):
        try:
            start = int(q["cursor"])
        except ValueError:
            raise SimError("10001", "params error: cursor invalid") from None
    chunk = rows[start:start + limit]
    return chunk, str(start + limit) if start + limit < len(rows) else ""


def window(q: dict[str, str], now: int, span: int) -> tuple[int, int]:
    """Bybit's [startTime, endTime] rule: ``span`` back from now by default, from startTime or up to
    endTime when only one is given; both given: at most ``span`` apart."""
    start, end = _int(q, "startTime"), _int(q, "endTime")
    if start is None and end is None:
        return now - span, now
    if end is None:
        assert start is not None
        return start, start + span
    if start is None:
        return end - span, end
    if end < start or end - start > span:
        raise SimError("10001", f"params error: endTime - startTime must be within {span // DAY_MS} days")
    return start, end


class BybitRest:
    """The /v5 surface of one SimServer."""

    def __init__(self, srv: SimServer) -> None:
        self.srv = srv
        self.ex = srv.exchange
        self.symbols = by.symbol_map(self.ex.specs)
        self.replays: dict[str, by.Replay] = {}
        self.routes: dict[tuple[str, str], tuple[bool, Handler]] = {
            ("GET", "market/time"): (False, self.time),
            ("GET", "market/instruments-info"): (False, self.instruments),
            ("GET", "market/tickers"): (False, self.tickers),
            ("GET", "market/orderbook"): (False, self.orderbook),
            ("GET", "market/kline"): (False, self.kline),
            ("GET", "market/funding/history"): (False, self.funding_history),
            ("GET", "user/query-api"): (True, self.query_api),
            ("GET", "account/info"): (True, self.account_info),
            ("GET", "account/wallet-balance"): (True, self.wallet_balance),
            ("GET", "account/fee-rate"): (True, self.fee_rate),
            ("GET", "account/transaction-log"): (True, self.transaction_log),
            ("GET", "position/list"): (True, self.position_list),
            ("POST", "position/set-leverage"): (True, self.set_leverage),
            ("POST", "position/trading-stop"): (True, self.trading_stop),
            ("POST", "position/switch-mode"): (True, self.switch_mode),
            ("GET", "position/closed-pnl"): (True, self.closed_pnl),
            ("POST", "order/create"): (True, self.create),
            ("POST", "order/cancel"): (True, self.cancel),
            ("POST", "order/amend"): (True, self.amend),
            ("POST", "order/cancel-all"): (True, self.cancel_all),
            ("GET", "order/realtime"): (True, self.realtime),
            ("GET", "order/history"): (True, self.history),
            ("GET", "execution/list"): (True, self.executions),
        }

    # ------------------------------------------------------------------ plumbing

    async def fault(self) -> web.Response | None:
        """The next injected fault (POST /sim/v1/fault), as Bybit shows each: a rate limit is
        retCode 10006, a 5xx and a timeout come from the gateway as plain HTTP errors."""
        if not self.srv.faults:
            return None
        f = self.srv.faults[0]
        f["count"] -= 1
        if f["count"] <= 0:
            self.srv.faults.pop(0)
        if f["kind"] == "rate_limit":
            return _json(envelope({}, self.ex.clock(), "10006", "Too many visits!"))
        if f["kind"] == "timeout":
            assert self.srv.stopping is not None
            try:
                await asyncio.wait_for(self.srv.stopping.wait(), float(f.get("delay", 30.0)))  # float ok: seconds
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
            self.srv.flush()
            code, msg = bybit_error(e)
            return _json(envelope({}, self.ex.clock(), code, msg), e.http)
        except (ValueError, TypeError, ArithmeticError, KeyError, AttributeError) as e:
            # a parameter of the wrong type or form (positionIdx "x", qty [1]): Bybit's params error
            self.srv.flush()
            return _json(envelope({}, self.ex.clock(), "10001", f"params error: {type(e).__name__}: {e}"))
        self.srv.flush()
        if private and request.method == "POST":
            self.srv.mark_changed()
        return _json(envelope(result, self.ex.clock()))

    def inst(self, sym: Any, *, required: bool = True) -> str:
        sym = str(sym or "")
        if not sym:
            if required:
                raise SimError("10001", "params error: symbol is required")
            return ""
        inst = self.symbols.get(sym)
        if inst is None:
            raise SimError("10001", f"params error: symbol invalid: {sym}")
        return inst

    @staticmethod
    def linear(q: dict[str, Any]) -> bool:
        """False for the categories the simulator has no instruments of; an unknown one is refused."""
        cat = str(q.get("category") or "")
        if cat not in ("linear", "spot", "inverse", "option"):
            raise SimError("10001", "params error: category is required (linear, inverse, spot, option)")
        return cat == "linear"

    @staticmethod
    def symbol_of(inst: str) -> str:
        return by.symbol(inst)

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

    def replay(self, acct: Account) -> by.Replay:
        return by.replay(acct, self.ex.specs, self.replays)

    def fee_rate_of(self, maker: bool) -> Decimal:
        return self.ex.maker_fee if maker else self.ex.taker_fee

    def funding_rate_at(self, inst: str, ts: int) -> Decimal:
        """The rate of the settlement a funding bill of time ``ts`` belongs to: the latest of
        ``inst`` at or before ``ts`` (the bill may carry a later millisecond than the record)."""
        for row in reversed(self.srv.funding_history):
            if row["instId"] == inst and int(row["fundingTime"]) <= ts:
                return Decimal(row["fundingRate"])
        return self.srv.market.funding_rates[inst]

    def realised(self, acct: Account, inst: str | None = None) -> Decimal:
        """What every bill (of ``inst``) moved: realised PnL, fees and funding together."""
        return sum((b.bal_chg + b.pos_bal_chg for b in acct.bills if inst is None or b.inst_id == inst), ZERO)

    # ------------------------------------------------------------------ public

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
        depth = max(1, min(500, _int(q, "limit", 25) or 25))
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
        start, end = _int(q, "start"), _int(q, "end")
        out = []
        for r in rows:  # newest first, as Bybit lists them
            ts = int(r[0])
            if (start is not None and ts < start) or (end is not None and ts > end):
                continue
            coins = Decimal(r[5]) * spec.ct_val
            out.append([r[0], r[1], r[2], r[3], r[4], s(coins), r[7] if len(r) > 7 else s(coins * Decimal(r[4]))])
        limit = max(1, min(1000, _int(q, "limit", 200) or 200))
        return {"symbol": by.symbol(inst), "category": "linear", "list": out[:limit]}

    def funding_history(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self.linear(q)
        inst = self.inst(q.get("symbol"))
        start, end = _int(q, "startTime"), _int(q, "endTime")
        rows = [r for r in reversed(self.srv.funding_history) if r["instId"] == inst
                and (start is None or int(r["fundingTime"]) >= start) and (end is None or int(r["fundingTime"]) <= end)]
        limit = max(1, min(200, _int(q, "limit", 200) or 200))
        return {"category": "linear", "list": [{"symbol": by.symbol(inst), "fundingRate": r["fundingRate"],
                                                "fundingRateTimestamp": r["fundingTime"]} for r in rows[:limit]]}

    # ------------------------------------------------------------------ account

    def query_api(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        return {
            "id": acct.uid[-8:], "note": "perpdesk sim", "apiKey": acct.api_key, "readOnly": 0, "secret": "",
            "permissions": {"ContractTrade": ["Order", "Position"], "Spot": [], "Wallet": [], "Options": [],
                            "Derivatives": ["DerivativesTrade"], "CopyTrading": [], "BlockTrade": [],
                            "Exchange": [], "NFT": [], "Affiliate": [], "Earn": [], "FiatP2P": [],
                            "FiatConvertBroker": [], "FiatGlobalPay": [], "FiatBitPay": [], "BitCard": [],
                            "ByXPost": []},
            "ips": ["*"], "type": 1, "deadlineDay": -2, "expiredAt": "1970-01-01T00:00:00Z",
            "createdAt": "2026-01-01T00:00:00Z", "unified": 0, "uta": 1, "userID": int(acct.uid),
            "inviterID": 0, "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0, "rsaPublicKey": "",
            "isMaster": True, "parentUid": "0", "kycLevel": "LEVEL_1", "kycRegion": "", "userIDInt64": acct.uid,
            "inviterIDInt64": "0", "affiliateIDInt64": "0",
        }

    def account_info(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        # unifiedMarginStatus 6: a unified trading account (UTA 2.0), what Bybit opens today
        return {"marginMode": "REGULAR_MARGIN", "updatedTime": str(acct.u_time), "unifiedMarginStatus": 6,
                "dcpStatus": "OFF", "timeWindow": 10, "smpGroup": 0, "isMasterTrader": False,
                "spotHedgingStatus": "OFF"}

    def wallet_item(self, acct: Account) -> dict[str, Any]:
        return by.wallet(self.ex.account_metrics(acct), self.realised(acct))

    def wallet_balance(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        if str(q.get("accountType") or "") != "UNIFIED":
            raise SimError("10001", "params error: accountType only support UNIFIED")
        return {"list": [self.wallet_item(acct)]}

    def fee_rate(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if not self.linear(q):
            return {"list": []}
        insts = [self.inst(q["symbol"])] if q.get("symbol") else list(self.ex.specs)
        return {"list": [{"symbol": by.symbol(i), "takerFeeRate": s(self.ex.taker_fee),
                          "makerFeeRate": s(self.ex.maker_fee)} for i in insts]}

    def transaction_log(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        if q.get("category") and q["category"] != "linear":
            return {"list": [], "nextPageCursor": ""}
        start, end = window(q, self.ex.clock(), DAY_MS if not (q.get("startTime") and q.get("endTime")) else WEEK_MS)
        fills = {f.trade_id: f for f in acct.fills}
        size: dict[tuple[str, str, str], Decimal] = {}
        penalties: dict[str, Decimal] = {}  # ordId -> liquidation fee, folded into its fill's row
        rows = []
        for b in acct.bills:  # oldest first: the position size after each row is a running sum
            if by.is_penalty(b):
                penalties[b.ord_id] = penalties.get(b.ord_id, ZERO) - b.bal_chg
                continue
            spec = self.ex.specs[b.inst_id]
            f = fills.get(b.trade_id) if b.trade_id else None
            key = (b.inst_id, b.mgn_mode, f.pos_side if f is not None else "net")
            if f is not None:
                signed = f.fill_sz if f.side == "buy" else -f.fill_sz
                size[key] = size.get(key, ZERO) + signed
            want = q.get("type")
            kind = "SETTLEMENT" if b.type == "8" else "TRADE"
            if start <= b.ts <= end and (not want or want == kind) and (not q.get("currency") or q["currency"] == by.COIN):
                rate = self.funding_rate_at(b.inst_id, b.ts) if b.type == "8" else self.fee_rate_of(
                    f is not None and f.exec_type == "M")
                o = acct.orders.get(b.ord_id)
                rows.append(by.transaction(b, spec, f, size.get(key, ZERO) * spec.ct_val, rate,
                                           o.tag if o is not None else "", penalties.pop(b.ord_id, ZERO)))
        rows.reverse()
        chunk, cursor = cursor_page(rows, q, 20, 50)
        return {"nextPageCursor": cursor, "list": chunk}

    # ------------------------------------------------------------------ positions

    def position_item(self, acct: Account, key: tuple[str, str, str], *, push: bool = False) -> dict[str, Any]:
        inst, mode, pos_side = key
        p = acct.positions.get(key)
        if p is None:
            p = self.ex.slot(acct, inst, mode, pos_side)
        tp = sl = None
        for a in acct.algos.values():
            if (a.state == "live" and a.reduce_only and a.ord_type in ("conditional", "oco") and a.inst_id == inst
                    and a.td_mode == mode and a.pos_side == pos_side):
                tp = a.tp_trigger_px if a.tp_trigger_px is not None else tp
                sl = a.sl_trigger_px if a.sl_trigger_px is not None else sl
        return by.position(p, self.ex.position_metrics(acct, p), self.ex.specs[inst],
                           lever=p.lever if p.pos else self.ex.lever_of(acct, inst, mode), tp=tp, sl=sl,
                           cum_realised=self.realised(acct, inst), seq=int(p.last_trade_id or 0), push=push)

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

    # ------------------------------------------------------------------ orders

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
                    if isinstance(self.srv.hub, BybitHub):
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

    def execution_rows(self, acct: Account, inst: str = "", *, start: int = 0, end: int | None = None,
                       kinds: set[str] | None = None, order_id: str = "", link: str = "") -> list[dict[str, Any]]:
        """Every execution of the account (trades, ADL and bust fills, funding), newest first."""
        r = self.replay(acct)
        out: list[tuple[int, int, dict[str, Any]]] = []
        for f in acct.fills:
            if (inst and f.inst_id != inst) or f.ts < start or (end is not None and f.ts > end):
                continue
            if order_id and f.ord_id != order_id:
                continue
            o = acct.orders.get(f.ord_id)
            tag = o.tag if o is not None else ""
            if link and tag != link:
                continue
            item = by.execution(acct, f, self.ex.specs[f.inst_id], r.execs.get(f.trade_id, by.ExecInfo()), tag,
                                self.fee_rate_of(f.exec_type == "M"))
            if kinds is None or item["execType"] in kinds:
                out.append((f.ts, int(f.trade_id), item))
        if (kinds is None or "Funding" in kinds) and not order_id and not link:
            for b in acct.bills:
                if b.type == "8" and (not inst or b.inst_id == inst) and b.ts >= start and (end is None or b.ts <= end):
                    item = by.funding_execution(b, self.ex.specs[b.inst_id], self.funding_rate_at(b.inst_id, b.ts))
                    out.append((b.ts, int(b.bill_id), item))
        out.sort(key=lambda x: (x[0], x[1]), reverse=True)
        return [x[2] for x in out]

    def executions(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        cat = str(q.get("category") or "")
        if not self.linear(q):
            return {"nextPageCursor": "", "category": cat, "list": []}
        inst = self.inst(q.get("symbol"), required=False)
        start, end = window(q, self.ex.clock(), WEEK_MS)
        kinds = {q["execType"]} if q.get("execType") else None
        rows = self.execution_rows(acct, inst, start=start, end=end, kinds=kinds,
                                   order_id=str(q.get("orderId") or ""), link=str(q.get("orderLinkId") or ""))
        chunk, cursor = cursor_page(rows, q, 50, 100)
        return {"nextPageCursor": cursor, "category": cat, "list": chunk}
