"""Request parameters of the simulated exchange: OKX's rejections and the parsing of order bodies.

Kept apart from matching so the rules "what OKX refuses" read in one place. OKX is strict about
its string numbers: ``"1_0"``, ``" 1 "`` or a JSON float where a string size is expected are
refused with 51000, and so are booleans spelled anything but true/false. Python's ``Decimal``
would accept the first two silently, so numbers are checked against OKX's grammar first.

Empty means absent: OKX's official SDKs send every optional field of a request as ``""``, and OKX
reads that as "not given". ``ENDPOINTS`` declares each endpoint's fields and ``request`` applies
that one rule to every request before any handler sees it (a required field empty or missing is
50014, as OKX answers).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core.money import ZERO
from core.sim import okx_shapes as shapes
from core.sim.market import InstrumentSpec
from core.sim.state import Account, AlgoOrder, Order

CL_ORD_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
# ASCII digits only: ``\d`` and Python's Decimal/int also take "１" (full-width) or "٣" (Arabic-Indic)
NUMBER_RE = re.compile(r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
INTEGER_RE = re.compile(r"^-?[0-9]{1,19}$")
MAX_NUMBER_LEN = 64  # characters of a string number: OKX's are far shorter
MAX_EXPONENT = 20  # |adjusted exponent|: 1e-20 .. 1e20 is more than any size, price or rate needs


@dataclass(frozen=True, slots=True)
class Fields:
    """One endpoint's parameters as OKX documents them (query for GET, JSON body for POST).

    ``required``: 50014 "Parameter X can not be empty" when missing, ``""`` or null (only those
    the simulator needs; OKX's "conditional" ones are checked where the condition is known).
    ``optional``: what an official SDK may send as ``""``. ``items``: the body is a JSON array
    of such objects (batch endpoints).
    """

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    items: bool = False


_PAGE = ("after", "before", "limit")
_ORDER = ("ccy", "clOrdId", "tag", "posSide", "px", "pxUsd", "pxVol", "reduceOnly", "tgtCcy", "banAmend",
          "quickMgnType", "stpId", "stpMode", "attachAlgoOrds", "tpTriggerPx", "tpOrdPx", "slTriggerPx",
          "slOrdPx", "tpTriggerPxType", "slTriggerPxType", "tradeQuoteCcy", "pxAmendType", "isElpTakerAccess")
_ORDER_LIST = ("instType", "uly", "instFamily", "instId", "ordType", "state", *_PAGE)
_FILLS = ("instType", "uly", "instFamily", "instId", "ordId", "subType", "begin", "end", *_PAGE)
_BILLS = ("instType", "ccy", "mgnMode", "ctType", "type", "subType", "begin", "end", *_PAGE)
_ALGO_LIST = ("algoId", "instType", "instId", *_PAGE)
_CANDLES = ("bar", *_PAGE)
_CANCEL = ("ordId", "clOrdId")

# (method, path after /api/v5/) -> its fields; every route the simulator serves is here (a test
# walks this table with every optional field "", so a new endpoint is covered by declaring it).
ENDPOINTS: dict[tuple[str, str], Fields] = {
    ("GET", "public/instruments"): Fields(("instType",), ("uly", "instFamily", "instId")),
    ("GET", "public/time"): Fields(),
    ("GET", "public/mark-price"): Fields((), ("instType", "uly", "instFamily", "instId")),
    ("GET", "public/funding-rate"): Fields(("instId",)),
    ("GET", "public/funding-rate-history"): Fields(("instId",), _PAGE),
    ("GET", "market/ticker"): Fields(("instId",)),
    ("GET", "market/tickers"): Fields(("instType",), ("uly", "instFamily")),
    ("GET", "market/books"): Fields(("instId",), ("sz",)),
    ("GET", "market/candles"): Fields(("instId",), _CANDLES),
    ("GET", "market/history-candles"): Fields(("instId",), _CANDLES),
    ("GET", "account/max-size"): Fields(("instId", "tdMode"), ("ccy", "px", "leverage", "tradeQuoteCcy")),
    ("GET", "account/max-avail-size"): Fields(("instId", "tdMode"), ("ccy", "reduceOnly", "px", "tradeQuoteCcy")),
    ("GET", "account/balance"): Fields((), ("ccy",)),
    ("GET", "account/positions"): Fields((), ("instType", "instId", "posId")),
    ("GET", "account/config"): Fields(),
    ("GET", "account/leverage-info"): Fields(("instId",), ("mgnMode", "ccy")),
    ("GET", "account/trade-fee"): Fields((), ("instType", "instId", "uly", "instFamily", "ruleType")),
    ("GET", "account/bills"): Fields((), _BILLS),
    ("GET", "account/bills-archive"): Fields((), _BILLS),
    ("GET", "account/positions-history"): Fields((), ("instType", "instId", "mgnMode", "type", "posId", *_PAGE)),
    ("POST", "account/set-leverage"): Fields(("instId", "lever", "mgnMode"), ("ccy", "posSide")),
    ("POST", "account/set-position-mode"): Fields(("posMode",)),
    ("POST", "trade/order"): Fields(("instId", "side", "ordType", "sz"), ("tdMode", *_ORDER)),
    ("POST", "trade/batch-orders"): Fields(("instId", "side", "ordType", "sz"), ("tdMode", *_ORDER), items=True),
    ("POST", "trade/cancel-order"): Fields((), ("instId", *_CANCEL)),
    ("POST", "trade/cancel-batch-orders"): Fields((), ("instId", *_CANCEL), items=True),
    ("POST", "trade/amend-order"): Fields((), ("instId", *_CANCEL, "cxlOnFail", "reqId", "newSz", "newPx",
                                               "newPxUsd", "newPxVol", "attachAlgoOrds", "pxAmendType")),
    ("POST", "trade/amend-algos"): Fields((), ("instId", "algoId", "algoClOrdId", "cxlOnFail", "reqId", "newSz",
                                               "newTpTriggerPx", "newTpOrdPx", "newTpTriggerPxType",
                                               "newSlTriggerPx", "newSlOrdPx", "newSlTriggerPxType",
                                               "newTriggerPx", "newOrdPx", "newTriggerPxType", "attachAlgoOrds")),
    ("POST", "trade/order-algo"): Fields(("instId", "side", "ordType"), (
        "tdMode", "ccy", "posSide", "sz", "tag", "tgtCcy", "algoClOrdId", "clOrdId", "closeFraction",
        "reduceOnly", "tpTriggerPx", "tpTriggerPxType", "tpOrdPx", "slTriggerPx", "slTriggerPxType", "slOrdPx",
        "cxlOnClosePos", "triggerPx", "orderPx", "triggerPxType", "attachAlgoOrds", "quickMgnType")),
    ("POST", "trade/cancel-algos"): Fields(("algoId",), ("instId",), items=True),
    ("POST", "trade/close-position"): Fields(("instId", "mgnMode"), ("posSide", "ccy", "autoCxl", "clOrdId", "tag")),
    ("GET", "trade/order"): Fields(("instId",), _CANCEL),
    ("GET", "trade/orders-pending"): Fields((), _ORDER_LIST),
    ("GET", "trade/orders-history"): Fields((), ("category", "begin", "end", *_ORDER_LIST)),
    ("GET", "trade/orders-history-archive"): Fields((), ("category", "begin", "end", *_ORDER_LIST)),
    ("GET", "trade/fills"): Fields((), _FILLS),
    ("GET", "trade/fills-history"): Fields((), _FILLS),
    ("GET", "trade/order-algo"): Fields((), ("algoId", "algoClOrdId")),
    ("GET", "trade/orders-algo-pending"): Fields((), ("ordType", *_ALGO_LIST)),
    ("GET", "trade/orders-algo-history"): Fields((), ("ordType", "state", *_ALGO_LIST)),
}


def _present(v: Any) -> bool:
    return v is not None and v != ""


def absent_empty(v: Any, depth: int = 4) -> Any:
    """``v`` with every ``""`` (and null) field of its objects dropped, nested ones included
    (a batch's items and their ``attachAlgoOrds`` items; no request nests deeper than ``depth``,
    and a deeper value is left as it is rather than recursed into)."""
    if depth <= 0:
        return v
    if isinstance(v, dict):
        return {k: absent_empty(x, depth - 1) for k, x in v.items() if _present(x)}
    if isinstance(v, list):
        return [absent_empty(x, depth - 1) for x in v]
    return v


def request(route: tuple[str, str], query: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
    """The query and body of a request to ``route`` as the handlers read them: empty fields
    absent; SimError 50014 naming the first required field that is missing or empty."""
    fields = ENDPOINTS.get(route, Fields())
    query = absent_empty(query)
    body = absent_empty(body)
    if route[0] == "GET":
        objects: list[Any] = [query]
    else:
        objects = body if isinstance(body, list) else [body]
    for obj in objects:
        if isinstance(obj, dict):
            for name in fields.required:
                if name not in obj:
                    raise SimError("50014", f"Parameter {name} can not be empty")
    return query, body


class SimError(Exception):
    """A rejection with an OKX code; order-level ones become sCode/sMsg in a code "1" envelope."""

    def __init__(self, code: str, msg: str, http: int = 200) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.http = http


def dec(v: Any, field: str, *, string_only: bool = False) -> Decimal:
    """A request number (OKX string, or a JSON number unless ``string_only``) as a finite Decimal.

    51000 naming the field otherwise. OKX documents its sizes and prices as strings; ccxt sends
    ``lever`` as a JSON number, which OKX accepts, so only the caller knows which applies.
    """
    if isinstance(v, bool) or v is None or v == "":
        raise SimError("51000", f"Parameter {field} error")
    if isinstance(v, str):
        if len(v) > MAX_NUMBER_LEN or not NUMBER_RE.match(v):
            raise SimError("51000", f"Parameter {field} error")
    elif string_only or not isinstance(v, (int, float)):
        raise SimError("51000", f"Parameter {field} error")
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise SimError("51000", f"Parameter {field} error") from None
    if not d.is_finite() or (d and abs(d.adjusted()) > MAX_EXPONENT):
        raise SimError("51000", f"Parameter {field} error")  # "1e999999" would overflow the arithmetic
    return d


def integer(v: str | None, field: str) -> int | None:
    """A query integer (limit, after, before, begin, end, sz of books), None when absent: ASCII
    digits, 51000 otherwise (``int()`` would take "１" and raise on "x")."""
    if v is None or v == "":
        return None
    if not INTEGER_RE.match(v):
        raise SimError("51000", f"Parameter {field} error")
    return int(v)


def limit(v: str | None, default: int, most: int, field: str = "limit") -> int:
    """A page size: ``default`` when absent, clamped to 1..``most``."""
    n = integer(v, field)
    return max(1, min(most, default if n is None else n))


def opt_dec(v: Any, field: str) -> Decimal | None:
    return None if v is None or v == "" else dec(v, field)


def flag(v: Any, field: str) -> bool:
    """OKX booleans: JSON true/false or the strings "true"/"false"; anything else is 51000."""
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise SimError("51000", f"Parameter {field} error")


def on_grid(v: Decimal, step: Decimal) -> bool:
    return (v / step) == (v / step).to_integral_value()


def one_of(req: dict[str, Any], field: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    v = req.get(field, default)
    if v not in allowed:
        raise SimError("51000", f"Parameter {field} error")
    return str(v)


def pos_side_of(acct: Account, req: dict[str, Any], *, strict_net: bool = True) -> str:
    """net in net mode (an explicit long/short is refused there when ``strict_net``); long/short in hedge mode."""
    pos_side = str(req.get("posSide") or "")
    if acct.pos_mode == "net_mode":
        if strict_net and pos_side not in ("", "net"):
            raise SimError("51000", "Parameter posSide error")
        return "net"
    if pos_side not in ("long", "short"):
        raise SimError("51000", "Parameter posSide error")
    return pos_side


def order_size(req: dict[str, Any], spec: InstrumentSpec, market: bool) -> Decimal:
    sz = dec(req.get("sz"), "sz", string_only=True)
    if sz <= 0:
        raise SimError("51000", "Parameter sz error")
    if sz < spec.min_sz:
        raise SimError("51020", f"Order quantity must be at least the minimum size {shapes.s(spec.min_sz)}")
    if not on_grid(sz, spec.lot_sz):
        raise SimError("51121", f"Order quantity must be a multiple of the lot size {shapes.s(spec.lot_sz)}")
    if market and sz > spec.max_mkt_sz:
        raise SimError("51202", "Market order amount exceeds the maximum amount")
    return sz


def price(v: Any, spec: InstrumentSpec, field: str = "px") -> Decimal:
    px = dec(v, field)
    if px <= 0 or not on_grid(px, spec.tick_sz):
        raise SimError("51000", f"Parameter {field} error")
    return px


def client_id(acct: Account, req: dict[str, Any]) -> str:
    cl = str(req.get("clOrdId") or "")
    if cl and not CL_ORD_ID_RE.match(cl):
        raise SimError("51000", "Parameter clOrdId error")
    if cl and cl in acct.orders_by_cl and acct.orders[acct.orders_by_cl[cl]].is_open:
        raise SimError("51016", "Duplicated client order ID")
    return cl


def attached_algos(req: dict[str, Any]) -> list[dict[str, Any]]:
    attach = req.get("attachAlgoOrds")
    if not attach:
        return []
    if not isinstance(attach, list) or not all(isinstance(x, dict) for x in attach):
        raise SimError("51000", "Parameter attachAlgoOrds error")
    out = [dict(x) for x in attach]
    for x in out:
        for k in ("tpTriggerPx", "slTriggerPx"):
            opt_dec(x.get(k), k)
    return out


@dataclass(frozen=True, slots=True)
class Context:
    """What parsing needs from the exchange: an id, the time and the account's leverage."""

    next_id: Callable[[], str]
    now: int
    lever: Callable[[str, str], Decimal]  # (instId, tdMode) -> leverage


def parse_order(acct: Account, req: dict[str, Any], spec: InstrumentSpec, ctx: Context) -> Order:
    """A normal order from a trade/order body, or the SimError OKX would answer."""
    side = one_of(req, "side", ("buy", "sell"))
    ord_type = one_of(req, "ordType", ("market", "limit", "post_only", "ioc", "fok"))
    td_mode = one_of(req, "tdMode", ("cross", "isolated"), "cross")
    sz = order_size(req, spec, ord_type == "market")
    px = price(req.get("px"), spec) if ord_type != "market" else None
    pos_side = pos_side_of(acct, req)
    cl = client_id(acct, req)
    reduce_only = flag(req.get("reduceOnly", False), "reduceOnly")
    if pos_side in ("long", "short") and (pos_side == "long") == (side == "sell"):
        reduce_only = True  # hedge mode: the closing side of a leg can only reduce it
    o = Order(ord_id=ctx.next_id(), cl_ord_id=cl, tag=str(req.get("tag") or ""), inst_id=spec.inst_id,
              side=side, pos_side=pos_side, ord_type=ord_type, td_mode=td_mode, px=px, sz=sz,
              reduce_only=reduce_only, lever=ctx.lever(spec.inst_id, td_mode), c_time=ctx.now, u_time=ctx.now)
    o.attach_algo_ords = attached_algos(req)
    for x in o.attach_algo_ords:
        x["attachAlgoId"] = ctx.next_id()  # OKX assigns it when the entry is accepted
    o.attached = [{k: str(v) for k, v in x.items()} for x in o.attach_algo_ords]
    return o


def _algo_size(req: dict[str, Any], spec: InstrumentSpec, close_fraction: str) -> Decimal:
    if close_fraction == "1":
        return ZERO
    sz = dec(req.get("sz"), "sz", string_only=True)
    if sz <= 0 or not on_grid(sz, spec.lot_sz):
        raise SimError("51121", f"Order quantity must be a multiple of the lot size {shapes.s(spec.lot_sz)}")
    if sz < spec.min_sz:
        raise SimError("51020", "Order quantity below the minimum size")
    return sz


def set_tp_sl(a: AlgoOrder, req: dict[str, Any]) -> None:
    """TP and/or SL fields of a conditional/oco algo (also used by amend-algos)."""
    a.tp_trigger_px = opt_dec(req.get("tpTriggerPx"), "tpTriggerPx")
    a.sl_trigger_px = opt_dec(req.get("slTriggerPx"), "slTriggerPx")
    if a.tp_trigger_px is None and a.sl_trigger_px is None:
        raise SimError("51000", "Parameter tpTriggerPx or slTriggerPx required")
    if a.tp_trigger_px is not None:
        a.tp_ord_px = dec(req.get("tpOrdPx", "-1"), "tpOrdPx")
        a.tp_trigger_px_type = str(req.get("tpTriggerPxType") or "last")
    if a.sl_trigger_px is not None:
        a.sl_ord_px = dec(req.get("slOrdPx", "-1"), "slOrdPx")
        a.sl_trigger_px_type = str(req.get("slTriggerPxType") or "last")


def check_tp_sl_side(a: AlgoOrder, last: Decimal) -> None:
    """OKX refuses a TP/SL that would fire at once (51277/51279 family)."""
    buy = a.side == "buy"
    if a.tp_trigger_px is not None and (a.tp_trigger_px >= last if buy else a.tp_trigger_px <= last):
        raise SimError("51279" if not buy else "51277", "TP trigger price must be on the profit side of the last price")
    if a.sl_trigger_px is not None and (a.sl_trigger_px <= last if buy else a.sl_trigger_px >= last):
        raise SimError("51280", "SL trigger price must be on the loss side of the last price")


def parse_algo(acct: Account, req: dict[str, Any], spec: InstrumentSpec, ctx: Context, last: Decimal,
               attached_to: str = "") -> AlgoOrder:
    """A conditional, oco or trigger algo from a trade/order-algo body, or the SimError OKX would answer."""
    side = one_of(req, "side", ("buy", "sell"))
    ord_type = one_of(req, "ordType", ("conditional", "oco", "trigger"))
    td_mode = one_of(req, "tdMode", ("cross", "isolated"), "cross")
    close_fraction = str(req.get("closeFraction") or "")
    sz = _algo_size(req, spec, close_fraction)
    pos_side = pos_side_of(acct, req, strict_net=False)
    cl = str(req.get("algoClOrdId") or req.get("clOrdId") or "")
    reduce_only = flag(req.get("reduceOnly", False), "reduceOnly") or (ord_type != "trigger" and close_fraction == "1")
    a = AlgoOrder(algo_id=ctx.next_id(), algo_cl_ord_id=cl, cl_ord_id=str(req.get("clOrdId") or ""),
                  tag=str(req.get("tag") or ""), inst_id=spec.inst_id, side=side, pos_side=pos_side,
                  ord_type=ord_type, td_mode=td_mode, sz=sz, reduce_only=reduce_only,
                  lever=ctx.lever(spec.inst_id, td_mode), c_time=ctx.now, u_time=ctx.now,
                  close_fraction=close_fraction, attached_to=attached_to)
    if ord_type == "trigger":
        a.trigger_px = dec(req.get("triggerPx"), "triggerPx")
        a.order_px = dec(req.get("orderPx", "-1"), "orderPx")
        a.trigger_px_type = str(req.get("triggerPxType") or "last")
        a.trigger_up = a.trigger_px >= last
        return a
    set_tp_sl(a, req)
    if ord_type == "conditional" and a.tp_trigger_px is not None and a.sl_trigger_px is not None:
        a.ord_type = "oco"
    check_tp_sl_side(a, last)
    return a
