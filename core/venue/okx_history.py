"""OKX history over REST: fills, positions-history, funding bills, and what an algo order was.

Why apart from the live streams: these are the exchange's records of what happened, read after the
fact (at start, after a reconnect, to confirm a close); they page newest-first with OKX's ``after``
cursor and each needs its own care (fills-history has no algoId, bills live in two endpoints).
A record that cannot be read is skipped with a warning and never stops the others.
"""
from __future__ import annotations

import functools
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
from loguru import logger

from core.events import FundingBill, PositionHistoryRecord
from core.model import Fill, Instrument, ms_from_utc
from core.venue import okx_parse as P
from core.venue.base import VenueError
from core.venue.okx_markets import Markets
from core.venue.okx_rest import OkxRest

PAGE = 100
ALGO_MEMORY = 10_000
_PARSE_ERRORS = (KeyError, ValueError, TypeError, ArithmeticError, AttributeError)
T = TypeVar("T")
S = TypeVar("S")
Endpoint = Callable[[dict[str, str]], Awaitable[Any]]


def parse_each(what: str, items: Iterable[S], parse: Callable[[S], T | None]) -> list[T]:
    """``parse`` over ``items``, skipping (with one warning each) the ones that cannot be read."""
    out: list[T] = []
    for item in items:
        try:
            parsed = parse(item)
        except _PARSE_ERRORS as exc:
            record = item[0] if isinstance(item, tuple) else item
            ident = (record.get("tradeId") or record.get("billId") or record.get("posId") or "?"
                     if isinstance(record, Mapping) else "?")
            logger.warning(f"REST skipped a malformed {what} record ({ident}): {P.describe_error(exc)}")
            continue
        if parsed is not None:
            out.append(parsed)
    return out


class OkxHistory:
    """REST history reads and the algo-kind memory (which algo orders are TP and which SL)."""

    def __init__(self, rest: OkxRest, markets: Markets) -> None:
        self._rest = rest
        self._markets = markets
        self.algo_kinds: OrderedDict[str, str] = OrderedDict()

    async def pages(self, what: str, endpoint: Endpoint, params: dict[str, str], cursor: str,
                    ts_key: str, since_ms: int | None, after: str | None = None) -> list[dict[str, Any]]:
        """Newest-first OKX history, paged with ``after=<cursor of the oldest item>``.

        Stops when a page is short, older than ``since`` or the cursor stops moving; returns only
        items at or after ``since``, each once.

        A timestamp cursor (positions-history pages by uTime) is moved to the oldest item's time
        + 1 ms, not to its time: ``after`` means strictly older, so records that share the last
        item's millisecond (two positions closed by one sweep) would otherwise be skipped. The
        page that follows repeats the ones already read of that millisecond; exactly those are
        dropped (by content, as many times as they were read): two records of one millisecond with
        the same content are two position lives (opened and closed twice within it), never one.
        """
        out: list[dict[str, Any]] = []
        repeats: Counter[bytes] = Counter()  # the last page's items the next page starts with
        for _ in range(1000):
            query = {**params, "limit": str(PAGE)}
            if after:
                query["after"] = after
            page = (await self._rest.call(what, functools.partial(endpoint, query), retry=True)).get("data") or []
            for item in page:
                key = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
                if repeats[key] > 0:
                    repeats[key] -= 1
                    continue
                out.append(item)
            if len(page) < PAGE:
                break
            oldest = page[-1]
            nxt = str(oldest.get(cursor) or "")
            repeats = Counter()
            if cursor == ts_key and nxt.isdigit():
                repeats = Counter(orjson.dumps(i, option=orjson.OPT_SORT_KEYS) for i in page
                                  if str(i.get(ts_key) or "") == nxt)
                nxt = str(int(nxt) + 1)
            if (since_ms is not None and _ms(oldest.get(ts_key)) < since_ms) or not nxt or nxt == after:
                break
            after = nxt
        return [i for i in out if since_ms is None or _ms(i.get(ts_key)) >= since_ms]

    async def fetch_fills(self, since: datetime | None) -> list[Fill]:
        """Fills since ``since`` (oldest first) from GET /trade/fills-history, OKX fields kept.

        fills-history has no algoId or category; for orders that are not ours the order itself
        is looked up once so a TP/SL/liquidation fill is not journaled as 'external'.
        """
        since_ms = ms_from_utc(since) if since else None
        params = {"instType": "SWAP"}
        if since_ms is not None:
            params["begin"] = str(since_ms)
        items = await self.pages("reading fills history", self._rest.ex.private_get_trade_fills_history,
                                 params, "billId", "ts", since_ms)
        orders: dict[str, dict[str, Any]] = {}
        enriched: list[tuple[dict[str, Any], Instrument, str | None]] = []
        for item in items:
            inst = self._markets.by_id.get(str(item.get("instId") or ""))
            if inst is None or not item.get("tradeId"):
                continue
            enriched.append(await self._with_order(item, inst, orders))
        fills: dict[str, Fill] = {}
        for fill in parse_each("fills-history", enriched, lambda e: P.parse_fill_history(e[0], e[1], e[2])):
            fills.setdefault(fill.fill_id, fill)
        return sorted(fills.values(), key=lambda f: (f.ts, f.fill_id))

    async def _with_order(self, item: dict[str, Any], inst: Instrument, orders: dict[str, dict[str, Any]]
                          ) -> tuple[dict[str, Any], Instrument, str | None]:
        """A fill of an order that is not ours, merged with its order's algoId/category/source."""
        cl_id = str(item.get("clOrdId") or "")
        if cl_id.startswith((P.CONSOLE_PREFIX, P.STRATEGY_PREFIX)) or P.fill_category(item) != "normal":
            return item, inst, None
        order_id = str(item.get("ordId") or "")
        order = orders.get(order_id)
        if order is None:
            order = orders[order_id] = await self._order_details(inst, order_id)
        item = {**item, **{k: order[k] for k in ("algoId", "category", "reduceOnly", "source") if order.get(k)}}
        kind = None
        if item.get("algoId"):
            kind = P.order_algo_kind(item, self.algo_kinds)
            if kind is None:
                kind = await self.algo_kind(str(item["algoId"]))
        return item, inst, kind

    async def _order_details(self, inst: Instrument, order_id: str) -> dict[str, Any]:
        try:
            resp = await self._rest.call("reading an order", lambda: self._rest.ex.private_get_trade_order(
                {"instId": inst.inst_id, "ordId": order_id}), retry=True)
        except VenueError as exc:
            logger.warning(f"order {order_id} details unavailable, origin stays external: {exc}")
            return {}
        data = resp.get("data") or [{}]
        return dict(data[0])

    async def fetch_positions_history(self, since: datetime | None) -> list[PositionHistoryRecord]:
        """Closed/partially closed positions (OKX's realized truth), oldest update first."""
        since_ms = ms_from_utc(since) if since else None
        params = {"instType": "SWAP"}
        if since_ms is not None:
            # ``before`` (strictly newer uTime; alone, the newest first as without it): the page
            # holds only the records since, not the 100 newest of the account's history. The
            # close confirmer asks once per close; reading, decoding and skipping a full page of
            # old lives each time was most of its cost (issue 25). A full page pages on as before.
            params["before"] = str(since_ms - 1)
        items = await self.pages("reading positions history", self._rest.ex.private_get_account_positions_history,
                                 params, "uTime", "uTime", since_ms)
        by_id = self._markets.by_id
        recs = parse_each("positions-history", items, lambda i: P.parse_position_history(i, by_id[i["instId"]])
                          if i.get("instId") in by_id else None)
        # OKX lists newest first; reversed, then stably sorted, records updated in one millisecond
        # stay in the order they happened (the lives of one leg opened in one millisecond are
        # told apart by it: core/confirm/history_match.py)
        recs.reverse()
        return sorted(recs, key=lambda r: r.updated_at)

    async def fetch_funding_bills(self, since: datetime | None) -> list[FundingBill]:
        """Funding bills (type 8) since ``since``, oldest first.

        /account/bills covers 7 days; older history is in /bills-archive (3 months), read only
        when ``since`` reaches further back (or is None).
        """
        since_ms = ms_from_utc(since) if since else None
        params = {"instType": "SWAP", "type": "8"}
        if since_ms is not None:
            params["begin"] = str(since_ms)
        ex = self._rest.ex
        items = await self.pages("reading funding bills", ex.private_get_account_bills,
                                 params, "billId", "ts", since_ms)
        week_ago = datetime.now(UTC) - timedelta(days=6, hours=12)
        if since is None or since < week_ago:
            items += await self.pages("reading archived funding bills", ex.private_get_account_bills_archive,
                                      params, "billId", "ts", since_ms)
        by_id = self._markets.by_id
        bills: dict[str, FundingBill] = {}
        for bill in parse_each("funding bill", items, lambda i: P.funding_bill_or_none(i, by_id)):
            bills.setdefault(bill.bill_id, bill)
        return sorted(bills.values(), key=lambda b: (b.ts, b.bill_id))

    async def algo_kind(self, algo_id: str) -> str | None:
        """What an algo order is ('tp', 'sl' or 'other'): remembered from orders-algo pushes, else
        asked via REST; None when the exchange cannot tell."""
        if algo_id in self.algo_kinds:
            return self.algo_kinds[algo_id]
        ex = self._rest.ex
        queries: list[tuple[Endpoint, dict[str, str]]] = [
            (ex.private_get_trade_order_algo, {"algoId": algo_id}),
            (ex.private_get_trade_orders_algo_history, {"ordType": "conditional", "algoId": algo_id}),
            (ex.private_get_trade_orders_algo_history, {"ordType": "oco", "algoId": algo_id}),
        ]
        for endpoint, query in queries:
            try:
                data = (await self._rest.call("reading an algo order", functools.partial(endpoint, query),
                                              retry=True)).get("data") or []
            except VenueError as exc:
                logger.debug(f"algo {algo_id}: {exc}")
                continue
            kind = P.algo_kind_of(data[0]) if data else None
            if kind is not None:
                self.remember_algo(algo_id, kind)
                return kind
        return None

    def remember_algo(self, algo_id: str, kind: str) -> None:
        self.algo_kinds[algo_id] = kind
        if len(self.algo_kinds) > ALGO_MEMORY:
            self.algo_kinds.popitem(last=False)


def _ms(value: Any) -> int:
    """An OKX ms timestamp string as int; "" or a non-number counts as 0 (oldest)."""
    text = str(value or "")
    return int(text) if text.isdigit() else 0
