"""The coordinator: lifecycle, the one event queue, publishing, and the public engine API.

Why one coordinator with one queue: fills, funding and position pushes change the same state
(the ledger's position lives) and the journal must see them in the order they happened, or a
funding bill lands on the wrong life and a close row carries the wrong funding. So every stateful
event goes through one ``asyncio.Queue`` and is handled by one task, in order. The parts it
coordinates are helpers it owns (see core/engine/__init__.py for the map).

Errors never stop the engine: a failed command returns ``CommandResult(ok=False, message)`` plus
a ``Notice``; a failed event is logged with a ``Notice``; a failed resync is retried.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from loguru import logger

from core.accounting.ledger import Ledger
from core.confirm.closes import CloseConfirmer
from core.confirm.unconfirmed import FILE_NAME as UNCONFIRMED_FILE
from core.engine.book import Book
from core.engine.commands import Commands
from core.engine.context import EngineContext
from core.engine.fills import FillPath
from core.engine.funding import Funding
from core.engine.inbound import Inbound, Reconnected
from core.engine.ports import Clock, ResyncRequest, ResyncSchedule, Subscriber, now
from core.engine.replay import replay_journal
from core.engine.resync import Resync
from core.engine.timer import FundingDue, run_timer
from core.events import (
    AccountSnapshot,
    Candle,
    Command,
    CommandResult,
    EngineEvent,
    FundingBill,
    FundingSignal,
    LinkState,
    Notice,
    NoticeLevel,
    PositionHistoryRecord,
    PositionPush,
    RiskStatus,
    TradingState,
)
from core.journal import Journal
from core.journal.history import DayHistory, HistoryKind, HistoryPager, read_day_async
from core.model import CloseResult, Fill, Instrument, OrderUpdate, Origin, PositionSnapshot, PosSide
from core.reconcile.compare import ReconcileReport, reconcile_with_venue
from core.risk.control import TradingControl
from core.settings.config import RiskSettings
from core.venue.base import Venue, VenueCapabilities

RESYNC_RETRY_S = 5.0
CONSUMER_YIELD_EVERY = 200  # events handled back to back before the consumer lets others run
STOP_DRAIN_S = 3.0  # at stop, queued events get this long to be handled
SETTLE_QUIET_S = 0.05  # settle: idle must hold this long (pushes in flight land first)


class Engine:
    """See the module docstring. Public surface: docs/architecture.md "Engine API"."""

    def __init__(self, venue: Venue, journal: Journal, *, read_only: bool = False,
                 position_snapshot_interval: float = 60.0, confirm_closes: bool = True,
                 tick_s: float = 0.5, risk: RiskSettings | None = None, candles: bool = True,
                 clock: Clock = now) -> None:
        self.venue = venue
        self.candles = candles  # stream one-minute candles (a strategy's input; nothing else reads them)
        self.journal = journal
        self.read_only = read_only
        self.position_snapshot_interval = position_snapshot_interval
        self.tick_s = tick_s
        self.clock = clock
        self.ledger = Ledger()
        # a tuple, replaced on (un)subscribe: a publish (several per mark push) iterates it as is,
        # with no copy, and a callback (un)subscribing meanwhile takes effect from the next event
        self._subscribers: tuple[Subscriber, ...] = ()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._idle = asyncio.Event()  # set while the queue is empty and nothing is being handled
        self._idle.set()
        self._busy = False
        self._account: AccountSnapshot | None = None
        self._journal_error: str | None = None  # last journal write error the trader was told of
        self._tasks: list[asyncio.Task[None]] = []
        self._stream_task: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False
        self.ctx = EngineContext(
            venue=venue, journal=journal, ledger=self.ledger, clock=clock, publish=self._publish,
            notice=self.notice, refuse=self._refuse, enqueue=self._enqueue,
            check_journal=self._check_journal, set_account=self._set_account,
            stopped=lambda: self._stopped, read_only=read_only)
        ctx = self.ctx
        self.schedule = ResyncSchedule()
        self.book = Book(ctx)
        self.confirmer = CloseConfirmer(self._fetch_history, self._emit_close,
                                        enabled=confirm_closes,
                                        sidecar=journal.directory / UNCONFIRMED_FILE)
        self.fills = FillPath(ctx, self.book, self.confirmer)
        self.funding = Funding(ctx, self.fills, self.book)
        self.inbound = Inbound(ctx, self.book, self.funding, self.schedule)
        self.resync = Resync(ctx, self.book, self.fills, self.funding, self.inbound, self.schedule)
        self.control = TradingControl(ctx, self.book, risk if risk is not None else RiskSettings(),
                                      self.subscribe)
        self.orders = Commands(ctx, self.book, self.control)  # .orders.checks: the pre-trade chain
        self.orders.checks.add(self.control.guard)  # the trading state and the [risk] limits

    # ================================================================ lifecycle

    @property
    def instruments(self) -> dict[str, Instrument]:
        return self.venue.instruments

    async def start(self) -> None:
        """Connect, rebuild from the journal, start streams, backfill the gap, adopt positions."""
        await self.venue.connect()
        offset = self.ctx.clock_offset()
        if abs(offset) >= 2.0:
            self.notice(NoticeLevel.WARNING,
                         f"this computer's clock is {abs(offset):.1f} s "
                         f"{'ahead of' if offset > 0 else 'behind'} the exchange's; trading uses the "
                         "exchange's time — sync the system clock (NTP)")
        await self.journal.start()
        replay_journal(self.journal, self.ledger, self.fills, self.funding, self.confirmer)
        self.confirmer.start()  # reads the unconfirmed list: a refused one stops the start here
        try:
            self._account = await self.venue.fetch_balance()
        except Exception as exc:  # noqa: BLE001 - the account stream will bring it
            logger.warning(f"initial balance unavailable: {exc}")
        self._stream_task = asyncio.create_task(
            self.venue.run_streams(self._sink, list(self.venue.instruments), candles=self.candles),
            name="venue-streams")
        try:
            await asyncio.wait_for(self.inbound.private_up.wait(), 10.0)
        except TimeoutError:
            logger.warning("private stream not connected after 10 s; starting from REST, "
                           "resync follows when it connects")
        try:
            await self.resync.sync("start")
        except Exception as exc:
            await self._teardown()
            raise exc
        self._tasks.append(asyncio.create_task(self._consume(), name="engine-consumer"))
        self._tasks.append(asyncio.create_task(
            run_timer(self.ctx, self.book, self.funding, self.schedule, self.positions,
                      self.position_snapshot_interval, self.tick_s), name="engine-timer"))
        await self.control.start()
        self._started = True
        logger.info(f"ENGINE STARTED symbols {', '.join(self.venue.instruments)} "
                    f"positions {len(self.ledger.positions())}")

    async def stop(self) -> None:
        """Stop streams, finish queued events and close confirmations, flush the journal."""
        if self._stopped:
            return
        self._stopped = True
        if self._stream_task is not None:
            self._stream_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._stream_task
        if self._started:  # let the consumer finish what is queued (bounded), then stop it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), STOP_DRAIN_S)
        await self.confirmer.drain(5.0)
        await self._teardown()
        for snap in self.positions():
            self.book.record_position(snap)
        try:
            await self.journal.flush()
        except Exception as exc:  # noqa: BLE001 - reported, shutdown continues
            logger.error(f"journal flush at stop failed: {exc}")
        logger.info("ENGINE STOPPED")

    async def _teardown(self) -> None:
        await self.control.stop()
        await self.confirmer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._stream_task is not None and not self._stream_task.done():
            self._stream_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._stream_task
        with contextlib.suppress(Exception):
            await self.venue.close()

    async def settle(self, timeout: float = 10.0) -> bool:
        """Wait until queued events and close confirmations are done (tests, headless stop)."""
        try:
            await asyncio.wait_for(self._quiet(), timeout)
        except TimeoutError:
            return False
        await self.journal.flush()
        return True

    async def _quiet(self) -> None:
        """Return once the queue and the confirmer are idle and stay so for SETTLE_QUIET_S."""
        while True:
            await self._idle.wait()
            await self.confirmer.wait_idle()
            await asyncio.sleep(SETTLE_QUIET_S)
            if self._idle.is_set() and self.confirmer.idle:
                return

    # ================================================================ public API

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register a cheap sync callback for every engine event; returns the unsubscribe."""
        self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            subs = list(self._subscribers)
            with contextlib.suppress(ValueError):
                subs.remove(callback)
            self._subscribers = tuple(subs)

        return unsubscribe

    async def submit(self, command: Command, *, origin: Origin = Origin.CONSOLE) -> CommandResult:
        """Run one command on the exchange. Never raises: failures are ok=False plus a Notice."""
        return await self.orders.submit(command, origin)

    @property
    def trading_state(self) -> TradingState:
        """running, paused (entries refused, exits allowed) or halted (until the trader resumes)."""
        return self.control.state

    def risk_status(self) -> RiskStatus:
        """What the strategy/risk line shows (also published as RiskStatus on change)."""
        return self.control.status()

    def positions(self) -> list[PositionSnapshot]:
        """Every open position life, valued at the latest mark."""
        return self.book.positions()

    def account(self) -> AccountSnapshot | None:
        return self._account

    def tp_sl(self, symbol: str, pos_side: PosSide) -> tuple[Decimal | None, Decimal | None]:
        """The exchange-side (take-profit, stop-loss) triggers of a position, from the exchange's
        latest position push or read (OKX closeOrderAlgo); (None, None) when it shows none."""
        push = self.book.pushes.get((symbol, pos_side))
        if push is None or push.contracts == 0:
            return None, None
        return push.take_profit, push.stop_loss

    async def resting(self) -> tuple[int, int]:
        """(open orders, live trigger orders) on the exchange now, read as the kill switch reads
        them (those of other apps count too). Raises VenueError."""
        orders, algos = await asyncio.gather(self.venue.fetch_open_orders(), self.venue.fetch_open_triggers())
        return len(orders), len(algos)

    @property
    def capabilities(self) -> VenueCapabilities:
        """What the venue can do: the console offers only that (core.service.view.CapabilitiesView)."""
        return self.venue.capabilities

    def mark(self, symbol: str) -> Decimal | None:
        """Latest mark price of ``symbol`` (stream, else the last positions push), None if unknown."""
        mark = self.book.mark_for(symbol)
        return mark if mark > 0 else None

    async def fetch_candles(self, symbol: str, bar: str = "1m", limit: int = 100) -> list[Candle]:
        """The newest ``limit`` candles of ``symbol`` from the exchange, oldest first (a strategy's
        warm-up; live one-minute candles are published as ``Candle`` events). Raises VenueError."""
        return await self.venue.fetch_candles(symbol, bar, limit)

    def links(self) -> dict[str, LinkState]:
        """Connection state per stream (public, private, business)."""
        return dict(self.inbound.links)

    def estimate_close_pnl(self, symbol: str, pos_side: PosSide, contracts: Decimal) -> Decimal:
        """Price PnL of closing ``contracts`` at the latest mark (fees and funding not included).

        Pro rata of the life's unrealized PnL, so closing everything estimates exactly the
        unrealized PnL the positions pane shows.
        """
        return self.book.estimate_close_pnl(symbol, pos_side, contracts)

    async def reconcile(self) -> ReconcileReport:
        """Journal vs exchange, position by position (what `perpdesk reconcile` prints)."""
        return await reconcile_with_venue(self.venue, self.journal.directory,
                                          settle=self._settle_for_reconcile)

    async def _settle_for_reconcile(self) -> None:
        """What the engine has received is journaled and on disk before reconcile reads it."""
        if not await self.settle(5.0):
            await self.journal.flush()

    async def today_history(self, day: date | None = None) -> DayHistory:
        """``day``'s (default: today UTC) fills, closes and funding from the journal, for a viewer
        that starts after events were published (the console seeds its header and panes with it).

        The journal is flushed first so that what was published before the viewer subscribed is
        on disk; the file reading runs in a worker thread. The viewer de-duplicates by fill id,
        close id and bill id against what it received live meanwhile.
        """
        try:
            await self.journal.flush()
        except Exception as exc:  # noqa: BLE001 - read what is on disk; the journal reports itself
            logger.warning(f"journal flush before history read failed: {exc}")
        return await read_day_async(self.journal.directory, day or self.clock().date())

    def history_pager(self, kind: HistoryKind, page_size: int = 200) -> HistoryPager:
        """Older fills / closes / funding from the journal in pages, newest first (history screen)."""
        return HistoryPager(self.journal.directory, kind, page_size)

    # ================================================================ shared by the helpers

    def _check_journal(self) -> None:
        """Tell the trader once when the journal starts or stops failing (disk full, read-only)."""
        error = self.journal.error
        if error == self._journal_error:
            return
        previous, self._journal_error = self._journal_error, error
        if error is not None:
            self.notice(NoticeLevel.ERROR, f"journal cannot write: {error} — trading commands are "
                                            "refused until it can; rows are kept in memory")
        elif previous is not None:
            self.notice(NoticeLevel.INFO, "journal writing again: pending rows written; trading "
                                           "commands accepted")

    def _publish(self, event: EngineEvent) -> None:
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - one bad subscriber never breaks the engine
                logger.exception(f"subscriber {callback!r} failed on {type(event).__name__}")

    def notice(self, level: NoticeLevel, text: str) -> None:
        """Tell the trader one line (published as a Notice and logged), e.g. from the strategy host."""
        log = logger.error if level is NoticeLevel.ERROR else (
            logger.warning if level is NoticeLevel.WARNING else logger.info)
        log(f"NOTICE {text}")
        self._publish(Notice(level, text, self.clock()))

    def _refuse(self, message: str) -> CommandResult:
        self.notice(NoticeLevel.ERROR, message)
        return CommandResult(False, message)

    def _set_account(self, account: AccountSnapshot) -> None:
        self._account = account

    def _emit_close(self, close: CloseResult) -> None:
        self.fills.emit_close(close)

    def _enqueue(self, event: object) -> None:
        """Queue a stateful event for the consumer (handled in order, one at a time)."""
        self._idle.clear()
        self._queue.put_nowait(event)

    def _sink(self, event: object) -> None:
        """The venue's sink (see core/engine/inbound.py)."""
        self.inbound.sink(event)

    async def _fetch_history(self, since: datetime) -> list[PositionHistoryRecord]:
        return await self.venue.fetch_positions_history(since)

    # ================================================================ the consumer

    @property
    def idle(self) -> bool:
        """Nothing queued nor being handled (benchmarks poll it without settle()'s quiet wait)."""
        return self._idle.is_set()

    def consume(self) -> Coroutine[Any, Any, None]:
        """The consumer loop alone: benchmarks drive the engine from recorded pushes, no venue."""
        return self._consume()

    async def _consume(self) -> None:
        queue = self._queue
        handled = 0
        while True:
            if queue.qsize():
                handled += 1
                if handled % CONSUMER_YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # a long backlog never holds the UI's loop for long
                event = queue.get_nowait()
            else:
                self._idle.set()
                event = await queue.get()
            self._busy = True
            try:
                # fills, orders, positions and bills are handled inline (no coroutine per event:
                # they are nearly all of the traffic); only REST-backed steps are awaited
                work = self._handle_inline(event)
                if work is not None:
                    await work
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad event never stops the engine
                logger.exception(f"engine failed on {type(event).__name__}")
                self._publish(Notice(NoticeLevel.ERROR,
                                     f"engine error on {type(event).__name__}: {exc}", self.clock()))
            finally:
                self._busy = False
                if queue.empty():
                    self._idle.set()

    def _handle_inline(self, event: object) -> Coroutine[Any, Any, None] | None:
        """Handle ``event`` now, or return the coroutine that handles it (REST-backed steps)."""
        kind = type(event)
        if kind is Fill:
            self.fills.on_fill(event)  # type: ignore[arg-type]
        elif kind is OrderUpdate:
            self.fills.on_order(event)  # type: ignore[arg-type]
        elif kind is PositionPush:
            self.book.on_position_push(event)  # type: ignore[arg-type]
        elif kind is FundingBill:
            self.funding.on_bill(event)  # type: ignore[arg-type]
        else:
            return self._handle(event)
        return None

    async def _handle(self, event: object) -> None:
        """Everything ``_handle_inline`` does not handle itself."""
        if isinstance(event, FundingSignal):
            await self._guarded(self.funding.sync(), "funding sync")
        elif isinstance(event, FundingDue):
            await self._guarded(self.funding.sync(), f"funding sync for {event.symbol}")
        elif isinstance(event, Reconnected):
            if event.number > self.resync.synced_connects:
                await self._guarded(self.resync.sync("reconnect"), "resync after reconnect")
        elif isinstance(event, ResyncRequest):
            await self._guarded(self.resync.sync(event.reason), f"resync ({event.reason})")

    async def _guarded(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run a REST-backed step; on failure tell the trader and retry the resync later."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            self.notice(NoticeLevel.WARNING, f"{what} failed: {exc}; retrying in "
                                              f"{RESYNC_RETRY_S:g} s")
            self.schedule.request_in(RESYNC_RETRY_S)
