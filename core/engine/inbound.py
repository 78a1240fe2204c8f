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
from core.engine.ports import now
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
    from core.engine.coordinator import Engine


@dataclass(frozen=True, slots=True)
class Reconnected:
    """Queued: the private stream (re)connected; ``number`` counts connections since start."""

    number: int


class Inbound:
    """The venue's sink and the streams' link states."""

    def __init__(self, engine: Engine) -> None:
        self._e = engine
        self.links: dict[str, LinkState] = {}
        self.private_connects = 0
        self.disconnected_at: datetime | None = None
        self.private_up = asyncio.Event()

    def sink(self, event: object) -> None:
        """Called by the venue for every parsed push: cheap, never blocks, never raises."""
        e = self._e
        try:
            if type(event) is MarkPrice:
                e.book.on_mark(event.symbol, event.price)
                e._publish(event)
            elif isinstance(event, Candle):
                e._publish(event)  # market data for the strategy host; nothing to journal
            elif isinstance(event, AccountSnapshot):
                e._account = event
                e._publish(event)
            elif isinstance(event, StreamStatus):
                self._on_status(event)
            elif isinstance(event, MalformedPush):
                self._on_malformed(event)
            elif isinstance(event, FundingRate):
                if event.next_funding_time is not None:
                    e.funding.next_funding[event.symbol] = event.next_funding_time
                e._publish(event)
            else:
                e._enqueue(event)
        except Exception:  # noqa: BLE001
            logger.exception(f"engine sink failed on {type(event).__name__}")

    def _on_malformed(self, event: MalformedPush) -> None:
        e = self._e
        if event.stream != "public" and e.resync.due is None and not e._stopped:
            # the skipped push may have been a fill or a settlement: resync shortly (after the
            # pushes behind it), and once for a burst of bad pushes
            e.resync.request_in(MISMATCH_GRACE_S)
            e._notice(NoticeLevel.WARNING, f"skipped an unreadable {event.stream} "
                                           f"{event.channel or 'frame'} push ({event.reason}); "
                                           "resyncing from REST")

    def _on_status(self, status: StreamStatus) -> None:
        e = self._e
        previous = self.links.get(status.stream)
        self.links[status.stream] = status.state
        e._publish(status)
        if status.message == "latency" or previous is status.state or status.stream != "private":
            return
        if status.state is LinkState.CONNECTED:
            self.private_connects += 1
            self.private_up.set()
            if self.private_connects > 1:
                e._notice(NoticeLevel.INFO, "private stream reconnected; resyncing from REST")
            e._enqueue(Reconnected(self.private_connects))
        elif status.state is LinkState.DISCONNECTED and not e._stopped:
            self.private_up.clear()
            if self.disconnected_at is None:
                self.disconnected_at = status.ts or now()
            if previous is LinkState.CONNECTED:
                e._notice(NoticeLevel.WARNING, f"private stream disconnected: {status.message}")
