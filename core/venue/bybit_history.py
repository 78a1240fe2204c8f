"""Backfill of a Bybit account's books: everything that happened while we were not listening.

Bybit answers its history endpoints for at most 7 days per request (``endTime - startTime <= 7
days``) and pages within that with ``nextPageCursor``; ccxt's ``fetch_my_trades`` asks for
execType ``Trade`` only and its ``fetch_positions_history`` reads one page. So the backfill walks
every 7-day window from ``since`` to now and every page of each, and asks the execution list for
every execType (trades, ADL and takeover fills, funding). Rows are kept once: executions by
execId, closed-PnL records by (orderId, updatedTime).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.events import FundingBill
from core.model import Fill, Instrument, PosSide
from core.venue import bybit_parse as bp
from core.venue.base import VenueError, VenueErrorKind

WEEK_MS = 7 * 24 * 3600 * 1000
PAGE = 100  # Bybit's largest page for both endpoints
ORDER_PAGE = 50  # the order history's largest page
MAX_PAGES = 10_000  # a cursor that never ends is the exchange's bug; stop rather than loop forever

Fetch = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Backfill:
    """What a Bybit account did between ``since`` and the moment the backfill asked."""

    fills: list[Fill]
    funding: list[FundingBill]
    closes: list[bp.ClosedPnl]
    skipped: int  # rows of symbols we do not trade


def windows(since_ms: int, until_ms: int, span: int = WEEK_MS) -> list[tuple[int, int]]:
    """[start, end] windows of at most ``span`` covering since..until, oldest first, no overlap."""
    out = []
    start = since_ms
    while start <= until_ms:
        end = min(start + span, until_ms)
        out.append((start, end))
        start = end + 1
    return out


async def rows(fetch: Fetch, params: dict[str, Any], since_ms: int, until_ms: int,
               page: int = PAGE) -> list[dict[str, Any]]:
    """Every row of one Bybit history endpoint between since and until: each window, each page."""
    out: list[dict[str, Any]] = []
    for start, end in windows(since_ms, until_ms):
        cursor = ""
        for _ in range(MAX_PAGES):
            query = {**params, "startTime": start, "endTime": end, "limit": page}
            if cursor:
                query["cursor"] = cursor
            answer = await fetch(query)
            result = answer.get("result") if isinstance(answer, dict) else None
            if not isinstance(result, dict) or not isinstance(result.get("list"), list):
                raise VenueError(f"Bybit answered a history page without result.list: {str(answer)[:200]}",
                                 VenueErrorKind.MALFORMED)
            out.extend(r for r in result["list"] if isinstance(r, dict))
            cursor = str(result.get("nextPageCursor") or "")
            if not cursor:
                break
        else:
            raise VenueError("Bybit kept answering history pages without end; backfill stopped",
                             VenueErrorKind.MALFORMED)
    return out


async def backfill(ex: Any, instruments: Mapping[str, Instrument], since: datetime, until: datetime,
                   page: int = PAGE, *, closed_pnl: bool = True,
                   legs: Mapping[str, PosSide] | None = None) -> Backfill:
    """Executions of every execType and (unless ``closed_pnl`` is False: fills and funding need
    none) closed PnL of the linear ``instruments`` (by Bybit id).

    ``legs`` (hedge mode): the legs of the orders already known, by orderId; a trade execution
    carries no positionIdx, so the legs of the other orders are read from the order history of
    the same windows (every page) and each fill takes its order's leg."""
    since_ms, until_ms = int(since.timestamp() * 1000), int(until.timestamp() * 1000)
    execs = await rows(ex.privateGetV5ExecutionList, {"category": "linear"}, since_ms, until_ms, page)
    closed = (await rows(ex.privateGetV5PositionClosedPnl, {"category": "linear"}, since_ms, until_ms, page)
              if closed_pnl else [])
    fills: dict[str, Fill] = {}
    funding: dict[str, FundingBill] = {}
    closes: dict[tuple[str, str], bp.ClosedPnl] = {}
    skipped = 0
    for item in execs:
        inst = instruments.get(str(item.get("symbol") or ""))
        if inst is None:
            skipped += 1
        elif bp.is_trade(item):
            f = bp.parse_execution(item, inst)
            fills.setdefault(f.fill_id, f)
        elif bp.is_funding(item):
            b = bp.parse_funding_execution(item, inst)
            funding.setdefault(b.bill_id, b)
    for item in closed:
        inst = instruments.get(str(item.get("symbol") or ""))
        if inst is None:
            skipped += 1
            continue
        c = bp.parse_closed_pnl(item, inst)
        closes.setdefault((c.order_id, str(item.get("updatedTime"))), c)
    if legs is not None:
        fills = await _with_legs(ex, fills, legs, since_ms, until_ms, page)
    return Backfill(sorted(fills.values(), key=lambda f: (f.ts, f.fill_id)),
                    sorted(funding.values(), key=lambda b: (b.ts, b.bill_id)),
                    sorted(closes.values(), key=lambda c: c.updated_at), skipped)


async def _with_legs(ex: Any, fills: dict[str, Fill], legs: Mapping[str, PosSide], since_ms: int, until_ms: int,
                     page: int) -> dict[str, Fill]:
    known = dict(legs)
    if any(f.order_id not in known for f in fills.values()):
        for item in await rows(ex.privateGetV5OrderHistory, {"category": "linear"}, since_ms, until_ms,
                               min(page, ORDER_PAGE)):
            known.setdefault(str(item.get("orderId") or ""), bp.leg_of(item))
    missing = sorted({f.order_id for f in fills.values() if f.order_id not in known})
    if missing:  # an order older than the window (a fill at its start): asked for by id
        for order_id in missing:
            found = await ex.privateGetV5OrderHistory({"category": "linear", "orderId": order_id})
            for item in (found.get("result") or {}).get("list") or ():
                known.setdefault(str(item.get("orderId") or ""), bp.leg_of(item))
    unknown = [f.fill_id for f in fills.values() if f.order_id not in known]
    if unknown:
        raise VenueError(f"Bybit's order history does not list the orders of fills {', '.join(unknown[:5])}: "
                         "their hedge leg is unknown", VenueErrorKind.MALFORMED)
    return {k: dataclasses.replace(f, pos_side=known[f.order_id]) for k, f in fills.items()}
