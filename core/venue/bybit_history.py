"""Backfill of a Bybit account's books: everything that happened while we were not listening.

Bybit answers its history endpoints for at most 7 days per request (``endTime - startTime <= 7
days``) and pages within that with ``nextPageCursor``; ccxt's ``fetch_my_trades`` asks for
execType ``Trade`` only and its ``fetch_positions_history`` reads one page. So the backfill walks
every 7-day window from ``since`` to now and every page of each, and asks the execution list for
every execType (trades, ADL and takeover fills, funding). Rows are kept once: executions by
execId, closed-PnL records by (orderId, updatedTime).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.events import FundingBill
from core.model import Fill, Instrument
from core.venue import bybit_parse as bp
from core.venue.base import VenueError, VenueErrorKind

WEEK_MS = 7 * 24 * 3600 * 1000
PAGE = 100  # Bybit's largest page for both endpoints
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
                   page: int = PAGE, *, closed_pnl: bool = True) -> Backfill:
    """Executions of every execType and (unless ``closed_pnl`` is False: fills and funding need
    none) closed PnL of the linear ``instruments`` (by Bybit id)."""
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
    return Backfill(sorted(fills.values(), key=lambda f: (f.ts, f.fill_id)),
                    sorted(funding.values(), key=lambda b: (b.ts, b.bill_id)),
                    sorted(closes.values(), key=lambda c: c.updated_at), skipped)
