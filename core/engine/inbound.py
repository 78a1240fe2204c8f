"""The venue's sink: every parsed push arrives here first, on the venue's task.

Why split inline and queued: fills, funding and position pushes change the same state and the
journal must see them in order, so they go through the engine's one queue; mark prices, account
equity, funding rates, candles and latency are stateless and high-rate, so they are handled right here.
The sink is cheap, never blocks and never raises. It also tracks the streams' link states: a
private reconnect queues a resync before the stream is trusted again.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from loguru import logger

from core.engine.book import MISMATCH_GRACE_S
from core.events import (
    AccountSnapshot,
    Candle,
    FundingRate,
    LinkState,
    MalformedPush,
    MarkPrice,
    NoticeLevel,
    StreamStatus,
)

if TYPE_CHECKING:
    from core.engine.book import Book
    from core.engine.context import EngineContext
    from core.engine.funding import Funding
    from core.engine.ports import ResyncSchedule


@dataclass(frozen=True, slots=True)
class Reconnected:
    """Queued: the private stream (re)connected; ``number`` counts connections since start."""

    number: int


class Inbound:
    """The venue's sink and the streams' link states."""

    def __init__(self, ctx: EngineContext, book: Book, funding: Funding,
                 schedule: ResyncSchedule) -> None:
        self._ctx = ctx
        self._book = book
        self._funding = funding
        self._schedule = schedule
        self.links: dict[str, LinkState] = {}
        self.private_connects = 0
        self.disconnected_at: datetime | None = None
        self.private_up = asyncio.Event()

    def sink(self, event: object) -> None:
        """Called by the venue for every parsed push: cheap, never blocks, never raises."""
        e = self._ctx
        try:
            if type(event) is MarkPrice:
                self._book.on_mark(event.symbol, event.price)
                e.publish(event)
            elif isinstance(event, Candle):
                e.publish(event)  # market data for the strategy host; nothing to journal
            elif isinstance(event, AccountSnapshot):
                e.set_account(event)
                e.publish(event)
            elif isinstance(event, StreamStatus):
                self._on_status(event)
            elif isinstance(event, MalformedPush):
                self._on_malformed(event)
            elif isinstance(event, FundingRate):
                if event.next_funding_time is not None:
                    self._funding.next_funding[event.symbol] = event.next_funding_time
                e.publish(event)
            else:
                e.enqueue(event)
        except Exception:  # noqa: BLE001
            logger.exception(f"engine sink failed on {type(event).__name__}")

    def _on_malformed(self, event: MalformedPush) -> None:
        e = self._ctx
        if event.stream != "public" and self._schedule.due is None and not e.stopped():
            # the skipped push may have been a fill or a settlement: resync shortly (after the
            # pushes behind it), and once for a burst of bad pushes
            self._schedule.request_in(MISMATCH_GRACE_S)
            e.notice(NoticeLevel.WARNING, f"skipped an unreadable {event.stream} "
                                           f"{event.channel or 'frame'} push ({event.reason}); "
                                           "resyncing from REST")

    def _on_status(self, status: StreamStatus) -> None:
        e = self._ctx
        previous = self.links.get(status.stream)
        self.links[status.stream] = status.state
        e.publish(status)
        if status.message == "latency" or previous is status.state or status.stream != "private":
            return
        if status.state is LinkState.CONNECTED:
            self.private_connects += 1
            self.private_up.set()
            if self.private_connects > 1:
                e.notice(NoticeLevel.INFO, "private stream reconnected; resyncing from REST")
            e.enqueue(Reconnected(self.private_connects))
        elif status.state is LinkState.DISCONNECTED and not e.stopped():
            self.private_up.clear()
            if self.disconnected_at is None:
                self.disconnected_at = status.ts or self._ctx.clock()
            if previous is LinkState.CONNECTED:
                e.notice(NoticeLevel.WARNING, f"private stream disconnected: {status.message}")
