"""The engine: one coordinator between the exchange, the ledger, the journal and the console.

Why one coordinator with one queue: fills, funding and position pushes change the same state
(the ledger's position lives) and the journal must see them in the order they happened, or a
funding bill lands on the wrong life and a close row carries the wrong funding. So every stateful
event goes through one ``asyncio.Queue`` and is handled by one task, in order. Only stateless,
high-rate events (mark prices, account equity, latency) are handled inline in the venue's sink.

Data flow for a fill: journal.record_fill (+ FILL log line) -> ledger.apply_fill -> each
CloseResult goes to the ``CloseConfirmer`` (core/closes.py), which confirms it against the
exchange's positions-history and hands back the final row -> journal.record_close (+ POSITION
CLOSED log line) -> subscribers. Funding: the venue signals a settlement (balance_and_position
funding_fee) or a settlement time passes; the engine fetches the funding bills (type 8), records
each bill once (keyed by bill id) and attributes it to the position life open at the bill's time.

Gaps: on start the ledger is rebuilt from the journal, then everything since the journal's last
fill is backfilled from fills-history and bills, and positions the exchange holds are adopted.
After the private stream reconnects the same resync runs before the stream is trusted again.
The ledger never applies a fill id twice (``_applied``) and the journal refuses duplicates.

Errors never stop the engine: a failed command returns ``CommandResult(ok=False, message)`` plus
a ``Notice``; a failed event is logged with a ``Notice``; a failed resync is retried.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any, Protocol

from loguru import logger

from core.closes import (
    CloseConfirmer,
    LifeTotals,
    PendingClose,
    match_history,
    reason_from_close_type,
)
from core.events import (
    AccountSnapshot,
    CancelOrder,
    CloseAll,
    ClosePosition,
    Command,
    CommandResult,
    FundingBill,
    LinkState,
    MarkPrice,
    Notice,
    NoticeLevel,
    PlaceOrder,
    PositionGone,
    PositionHistoryRecord,
    PositionPush,
    StreamStatus,
)
from core.journal import Journal
from core.journal.history import (
    DayHistory,
    HistoryKind,
    HistoryPager,
    read_day_async,
)
from core.journal.history import (
    close_from_row as _close_from_row,
)
from core.journal.history import (
    fill_from_row as _fill_from_row,
)
from core.journal.schema import parse_ts
from core.ledger import Ledger, LedgerPosition
from core.logs import log_close, log_fill, log_funding
from core.model import (
    CloseReason,
    CloseResult,
    Fill,
    FundingPayment,
    Instrument,
    OrderUpdate,
    Origin,
    PositionSide,
    PositionSnapshot,
)
from core.money import ZERO, dec, plain
from core.reconcile import ReconcileReport, reconcile_with_venue
from core.venue.okx import VenueError
from core.venue.okx_parse import FundingRate, FundingSignal, MalformedPush

BACKFILL_SLACK = timedelta(seconds=2)  # fills-history overlap behind the journal's last fill
FUNDING_SLACK = timedelta(seconds=120)  # bills overlap behind the previous funding sync
LIFE_MATCH = timedelta(seconds=5)  # exchange cTime vs ledger opened_at: the same life
MISMATCH_GRACE_S = 2.0  # a position push that disagrees with the ledger, re-checked after this
RESYNC_RETRY_S = 5.0
FUNDING_GRACE_S = 3.0  # bills are fetched this long after a settlement time passes
RATE_QUANTUM = Decimal("1e-12")
CONSUMER_YIELD_EVERY = 200  # events handled back to back before the consumer lets others run
POS_SIDES = ("net", "long", "short")  # OKX posSide values a life can be keyed by

Subscriber = Callable[[Any], None]
Key = tuple[str, str]  # (symbol, pos_side)


class VenueLike(Protocol):
    """What the engine needs from ``core.venue.OkxVenue`` (a protocol so tests can read it)."""

    instruments: dict[str, Instrument]
    symbols: tuple[str, ...]

    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def fetch_balance(self) -> AccountSnapshot: ...
    async def fetch_positions(self) -> list[PositionPush]: ...
    async def fetch_fills(self, since: datetime | None) -> list[Fill]: ...
    async def fetch_positions_history(self, since: datetime | None) -> list[PositionHistoryRecord]: ...
    async def fetch_funding_bills(self, since: datetime | None) -> list[FundingBill]: ...
    async def place_order(self, cmd: PlaceOrder, origin: Origin) -> str: ...
    async def cancel_order(self, symbol: str, order_id: str) -> None: ...
    async def close_position(self, symbol: str, pos_side: str = "net",
                             contracts: Decimal | None = None,
                             origin: Origin = Origin.CONSOLE) -> str: ...
    async def run_streams(self, sink: Callable[[object], None],
                          symbols: list[str] | None = None) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LifeWindow:
    """When a position life was open: funding bills are attributed by time to the right life."""

    position_id: str
    symbol: str
    pos_side: str
    side: PositionSide
    opened_at: datetime
    closed_at: datetime | None = None

    def covers(self, ts: datetime) -> bool:
        return self.opened_at <= ts and (self.closed_at is None or ts <= self.closed_at)


@dataclass(frozen=True, slots=True)
class _Reconnected:
    """The private stream (re)connected; ``number`` counts connections since start."""

    number: int


@dataclass(frozen=True, slots=True)
class _Resync:
    reason: str


@dataclass(frozen=True, slots=True)
class _FundingDue:
    symbol: str


def _push_side(push: PositionPush) -> PositionSide:
    if push.pos_side in ("long", "short"):
        return PositionSide(push.pos_side)
    return PositionSide.LONG if push.contracts > 0 else PositionSide.SHORT


def _origin_for(reason: CloseReason) -> Origin:
    return {CloseReason.LIQUIDATION: Origin.LIQUIDATION, CloseReason.ADL: Origin.ADL,
            CloseReason.TP: Origin.TP, CloseReason.SL: Origin.SL}.get(reason, Origin.EXTERNAL)


class Engine:
    """See the module docstring. Public surface: docs/architecture.md "Engine API"."""

    def __init__(self, venue: VenueLike, journal: Journal, *, read_only: bool = False,
                 position_snapshot_interval: float = 60.0, confirm_closes: bool = True,
                 tick_s: float = 0.5) -> None:
        self.venue = venue
        self.journal = journal
        self.read_only = read_only
        self.position_snapshot_interval = position_snapshot_interval
        self.tick_s = tick_s
        self.ledger = Ledger()
        self.confirmer = CloseConfirmer(self._fetch_history, self._emit_close,
                                        enabled=confirm_closes)
        self._subscribers: list[Subscriber] = []
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._applied: set[str] = set()
        self._bills_seen: set[str] = set()
        self._windows: OrderedDict[str, LifeWindow] = OrderedDict()
        self._fill_counts: dict[str, int] = {}
        self._pushes: dict[Key, PositionPush] = {}
        self._marks: dict[str, Decimal] = {}
        self._marked: set[str] = set()  # symbols whose mark moved, revalued once per loop pass
        self._changed: set[Key] = set()  # lives a fill moved, published once per loop pass
        self._revalue_scheduled = False
        self._next_funding: dict[str, datetime] = {}
        self._funding_synced_at: datetime | None = None
        self._shown: dict[Key, str] = {}
        self._account: AccountSnapshot | None = None
        self._links: dict[str, LinkState] = {}
        self._private_connects = 0
        self._synced_connects = 0
        self._disconnected_at: datetime | None = None
        self._private_up = asyncio.Event()
        self._mismatch_due: dict[Key, float] = {}
        self._resync_due: float | None = None
        self._busy = False
        self._journal_error: str | None = None  # last journal write error the trader was told of
        self._tasks: list[asyncio.Task[Any]] = []
        self._stream_task: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False

    # ================================================================ public API

    @property
    def instruments(self) -> dict[str, Instrument]:
        return self.venue.instruments

    async def start(self) -> None:
        """Connect, rebuild from the journal, start streams, backfill the gap, adopt positions."""
        await self.venue.connect()
        offset = self._clock_offset()
        if abs(offset) >= 2.0:
            self._notice(NoticeLevel.WARNING,
                         f"this computer's clock is {abs(offset):.1f} s "
                         f"{'ahead of' if offset > 0 else 'behind'} the exchange's; trading uses the "
                         "exchange's time — sync the system clock (NTP)")
        await self.journal.start()
        self._replay_journal()
        try:
            self._account = await self.venue.fetch_balance()
        except Exception as exc:  # noqa: BLE001 - the account stream will bring it
            logger.warning(f"initial balance unavailable: {exc}")
        self._stream_task = asyncio.create_task(
            self.venue.run_streams(self._sink, list(self.venue.instruments)), name="venue-streams")
        self.confirmer.start()
        try:
            await asyncio.wait_for(self._private_up.wait(), 10.0)
        except TimeoutError:
            logger.warning("private stream not connected after 10 s; starting from REST, "
                           "resync follows when it connects")
        try:
            await self._sync("start")
        except Exception as exc:
            await self._teardown()
            raise exc
        self._tasks.append(asyncio.create_task(self._consume(), name="engine-consumer"))
        self._tasks.append(asyncio.create_task(self._timer(), name="engine-timer"))
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
        # let the consumer finish what is queued (bounded), then stop it
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3.0
        while self._started and (not self._queue.empty() or self._busy) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        await self.confirmer.drain(5.0)
        await self._teardown()
        for snap in self.positions():
            self._record_position(snap)
        try:
            await self.journal.flush()
        except Exception as exc:  # noqa: BLE001 - reported, shutdown continues
            logger.error(f"journal flush at stop failed: {exc}")
        logger.info("ENGINE STOPPED")

    async def _teardown(self) -> None:
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

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register a cheap sync callback for every engine event; returns the unsubscribe."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    async def submit(self, command: Command, *, origin: Origin = Origin.CONSOLE) -> CommandResult:
        """Run one command on the exchange. Never raises: failures are ok=False plus a Notice."""
        if self.read_only:
            return self._refuse("read-only mode: trading commands are disabled")
        if origin not in (Origin.CONSOLE, Origin.STRATEGY):
            return self._refuse(f"commands come from the console or a strategy, not {origin.value}")
        if self.journal.error is not None:
            # a trade we could not journal is a trade the trader cannot account for: refuse until
            # the journal writes again (its pending rows are kept and land then, once)
            self._check_journal()
            return self._refuse(f"trading refused: the journal cannot write ({self.journal.error}) — "
                                "free disk space; pending rows are kept and written when it can")
        try:
            if isinstance(command, PlaceOrder):
                return await self._place(command, origin)
            if isinstance(command, ClosePosition):
                return await self._close(command, origin)
            if isinstance(command, CloseAll):
                return await self._close_all(origin)
            if isinstance(command, CancelOrder):
                await self.venue.cancel_order(command.symbol, command.order_id)
                return CommandResult(True, f"order {command.order_id} on {command.symbol} canceled",
                                     (command.order_id,))
            return self._refuse(f"unknown command {type(command).__name__}")
        except VenueError as exc:  # the exchange said no, or could not be reached
            return self._refuse(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug: logged in full, one plain line shown
            logger.exception(f"command {command!r} failed")
            return self._refuse(f"{type(command).__name__} failed: {exc or type(exc).__name__}")

    def positions(self) -> list[PositionSnapshot]:
        """Every open position life, valued at the latest mark."""
        out = []
        for pos in self.ledger.positions():
            snap = self._snapshot((pos.symbol, pos.pos_side))
            if snap is not None:
                out.append(snap)
        return out

    def account(self) -> AccountSnapshot | None:
        return self._account

    def mark(self, symbol: str) -> Decimal | None:
        """Latest mark price of ``symbol`` (stream, else the last positions push), None if unknown."""
        mark = self._mark_for(symbol)
        return mark if mark > 0 else None

    def links(self) -> dict[str, LinkState]:
        """Connection state per stream (public, private, business)."""
        return dict(self._links)

    def estimate_close_pnl(self, symbol: str, pos_side: str, contracts: Decimal) -> Decimal:
        """Price PnL of closing ``contracts`` at the latest mark (fees and funding not included).

        Pro rata of the life's unrealized PnL, so closing everything estimates exactly the
        unrealized PnL the positions pane shows.
        """
        pos = self.ledger.position(symbol, pos_side)
        if pos is None or pos.contracts == 0:
            return ZERO
        part = min(abs(contracts), pos.contracts)
        mark = self._mark_for(symbol, pos)
        with localcontext(Context(prec=60)):
            return pos.unrealized(mark) * part / pos.contracts

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
        return await read_day_async(self.journal.directory, day or _now().date())

    def history_pager(self, kind: HistoryKind, page_size: int = 200) -> HistoryPager:
        """Older fills / closes / funding from the journal in pages, newest first (history screen)."""
        return HistoryPager(self.journal.directory, kind, page_size)

    async def settle(self, timeout: float = 10.0) -> bool:
        """Wait until queued events and close confirmations are done (tests, headless stop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._queue.empty() and not self._busy and self.confirmer.idle:
                await asyncio.sleep(0.05)
                if self._queue.empty() and not self._busy and self.confirmer.idle:
                    await self.journal.flush()
                    return True
            await asyncio.sleep(0.02)
        return False

    def _clock_offset(self) -> float:
        """This computer's clock minus the exchange's (s); 0 for venues that do not measure it."""
        return float(getattr(self.venue, "clock_offset_s", 0.0) or 0.0)  # float ok: seconds

    def _check_journal(self) -> None:
        """Tell the trader once when the journal starts or stops failing (disk full, read-only)."""
        error = self.journal.error
        if error == self._journal_error:
            return
        previous, self._journal_error = self._journal_error, error
        if error is not None:
            self._notice(NoticeLevel.ERROR, f"journal cannot write: {error} — trading commands are "
                                            "refused until it can; rows are kept in memory")
        elif previous is not None:
            self._notice(NoticeLevel.INFO, "journal writing again: pending rows written; trading "
                                           "commands accepted")

    # ================================================================ publishing

    def _publish(self, event: object) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - one bad subscriber never breaks the engine
                logger.exception(f"subscriber {callback!r} failed on {type(event).__name__}")

    def _notice(self, level: NoticeLevel, text: str) -> None:
        log = logger.error if level is NoticeLevel.ERROR else (
            logger.warning if level is NoticeLevel.WARNING else logger.info)
        log(f"NOTICE {text}")
        self._publish(Notice(level, text, _now()))

    def _refuse(self, message: str) -> CommandResult:
        self._notice(NoticeLevel.ERROR, message)
        return CommandResult(False, message)

    # ================================================================ venue sink (inline part)

    def _sink(self, event: object) -> None:
        """Called by the venue for every parsed push: cheap, never blocks, never raises."""
        try:
            if isinstance(event, MarkPrice):
                self._marks[event.symbol] = event.price
                self._publish(event)
                # Hot path: a burst of ticks read from the socket in one go revalues each symbol's
                # lives once, after the burst (last write wins), not once per tick.
                self._revalue_soon(event.symbol)
                return
            if isinstance(event, AccountSnapshot):
                self._account = event
                self._publish(event)
                return
            if isinstance(event, StreamStatus):
                self._on_status(event)
                return
            if isinstance(event, MalformedPush):
                if event.stream != "public" and self._resync_due is None and not self._stopped:
                    # the skipped push may have been a fill or a settlement: resync shortly (after
                    # the pushes behind it), and once for a burst of bad pushes
                    self._resync_due = asyncio.get_running_loop().time() + MISMATCH_GRACE_S
                    self._notice(NoticeLevel.WARNING, f"skipped an unreadable {event.stream} "
                                                      f"{event.channel or 'frame'} push ({event.reason}); "
                                                      "resyncing from REST")
                return
            if isinstance(event, FundingRate):
                if event.next_funding_time is not None:
                    self._next_funding[event.symbol] = event.next_funding_time
                self._publish(event)
                return
            self._queue.put_nowait(event)
        except Exception:  # noqa: BLE001
            logger.exception(f"engine sink failed on {type(event).__name__}")

    def _revalue_soon(self, symbol: str) -> None:
        self._marked.add(symbol)
        if not self._revalue_scheduled:
            self._revalue_scheduled = True
            asyncio.get_running_loop().call_soon(self._revalue_marked)

    def _revalue_marked(self) -> None:
        """Publish (and for fills, journal) the lives that changed since the last call.

        Why batched per loop pass: a socket read can hold dozens of pushes; the positions pane and
        the positions_open rows only need the state after them, and revaluing per push was a
        large share of the stream pipeline's cost (bench/stream.py)."""
        self._revalue_scheduled = False
        marked, self._marked = self._marked, set()
        changed, self._changed = self._changed, set()
        for key in changed:  # fills moved these lives: journal a row, publish (or PositionGone)
            self._position_changed(key)
        for symbol in marked:  # marks moved these: publish their new valuation, no row
            for pos_side in POS_SIDES:
                if (symbol, pos_side) not in changed and self.ledger.holds(symbol, pos_side):
                    self._position_changed((symbol, pos_side), record=False)

    def _on_status(self, status: StreamStatus) -> None:
        previous = self._links.get(status.stream)
        self._links[status.stream] = status.state
        self._publish(status)
        if status.message == "latency" or previous is status.state:
            return
        if status.stream != "private":
            return
        if status.state is LinkState.CONNECTED:
            self._private_connects += 1
            self._private_up.set()
            if self._private_connects > 1:
                self._notice(NoticeLevel.INFO, "private stream reconnected; resyncing from REST")
            self._queue.put_nowait(_Reconnected(self._private_connects))
        elif status.state is LinkState.DISCONNECTED and not self._stopped:
            self._private_up.clear()
            if self._disconnected_at is None:
                self._disconnected_at = status.ts or _now()
            if previous is LinkState.CONNECTED:
                self._notice(NoticeLevel.WARNING, f"private stream disconnected: {status.message}")

    # ================================================================ the consumer

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
                                     f"engine error on {type(event).__name__}: {exc}", _now()))
            finally:
                self._busy = False

    def _handle_inline(self, event: object) -> Awaitable[None] | None:
        """Handle ``event`` now, or return the coroutine that handles it (REST-backed steps)."""
        kind = type(event)
        if kind is Fill:
            self._on_fill(event)  # type: ignore[arg-type]
        elif kind is OrderUpdate:
            self._on_order(event)  # type: ignore[arg-type]
        elif kind is PositionPush:
            self._on_position_push(event)  # type: ignore[arg-type]
        elif kind is FundingBill:
            self._on_bill(event)  # type: ignore[arg-type]
        else:
            return self._handle(event)
        return None

    async def _handle(self, event: object) -> None:
        """Everything ``_handle_inline`` does not handle itself."""
        if isinstance(event, FundingSignal):
            await self._guarded(self._sync_funding(), "funding sync")
        elif isinstance(event, _FundingDue):
            await self._guarded(self._sync_funding(), f"funding sync for {event.symbol}")
        elif isinstance(event, _Reconnected):
            if event.number > self._synced_connects:
                await self._guarded(self._sync("reconnect"), "resync after reconnect")
        elif isinstance(event, _Resync):
            await self._guarded(self._sync(event.reason), f"resync ({event.reason})")

    async def _guarded(self, work: Any, what: str) -> None:
        """Run a REST-backed step; on failure tell the trader and retry the resync later."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            self._notice(NoticeLevel.WARNING, f"{what} failed: {exc}; retrying in "
                                              f"{RESYNC_RETRY_S:g} s")
            loop = asyncio.get_running_loop()
            self._resync_due = loop.time() + RESYNC_RETRY_S

    # ================================================================ fills and orders

    def _on_order(self, update: OrderUpdate) -> None:
        self.journal.record_order(update)
        self._publish(update)
        if update.state.value == "rejected":
            self._notice(NoticeLevel.ERROR, f"order {update.order_id} on {update.symbol} rejected: "
                                            f"{update.message or 'no reason given'}")

    def _on_fill(self, fill: Fill, *, publish: bool = True) -> None:
        """Journal, book and close one execution; a fill id is applied at most once."""
        if fill.fill_id in self._applied or self.journal.has_fill(fill.fill_id, fill.ts):
            return  # the replay applies only open lives' fills: older ones are in the journal
        self._applied.add(fill.fill_id)
        if self.journal.record_fill(fill):
            log_fill(fill)
        if publish:
            self._publish(fill)
        key = (fill.symbol, fill.pos_side)
        before = self.ledger.position(*key)
        try:
            closes = self.ledger.apply_fill(fill)
        except ValueError as exc:
            self._notice(NoticeLevel.WARNING, f"fill {fill.fill_id} does not fit the ledger ({exc}); "
                                              "resyncing positions from the exchange")
            self._queue.put_nowait(_Resync("fill did not fit the ledger"))
            return
        self._after_fill(fill, before, closes)

    def _after_fill(self, fill: Fill, before: LedgerPosition | None,
                    closes: list[CloseResult]) -> None:
        key = (fill.symbol, fill.pos_side)
        after = self.ledger.position(*key)
        if before is not None:
            self._count_fill(before.position_id)
        for close in closes:
            window = self._windows.get(close.position_id)
            if close.is_full and window is not None:
                self._windows[close.position_id] = dataclasses.replace(window, closed_at=fill.ts)
            self._submit_close(close, fill.pos_side)
        if after is not None:
            if after.position_id not in self._windows:
                self._add_window(after)
            if before is None or before.position_id != after.position_id:
                self._count_fill(after.position_id)
        self._changed.add(key)  # journaled and published with this loop pass's other changes
        self._revalue_soon(fill.symbol)

    def _count_fill(self, position_id: str) -> None:
        self._fill_counts[position_id] = self._fill_counts.get(position_id, 0) + 1

    def _submit_close(self, close: CloseResult, pos_side: str) -> None:
        pid = close.position_id
        seen = self._fill_counts.get(pid, 0)
        self.confirmer.submit(PendingClose(
            close, pos_side, later_fills=lambda: self._fill_counts.get(pid, 0) > seen))

    def _add_window(self, pos: LedgerPosition) -> None:
        self._windows[pos.position_id] = LifeWindow(pos.position_id, pos.symbol, pos.pos_side,
                                                    pos.side, pos.opened_at)
        while len(self._windows) > 5000:
            old, _ = self._windows.popitem(last=False)
            self._fill_counts.pop(old, None)

    def _emit_close(self, close: CloseResult) -> None:
        """A final close row from the confirmer: journal it once, log it, publish it."""
        try:
            if self.journal.record_close(close):
                log_close(close)
                self._publish(close)
        except Exception as exc:  # noqa: BLE001
            logger.exception("journal refused a close row")
            self._publish(Notice(NoticeLevel.ERROR, f"journal error on a close row: {exc}", _now()))

    async def _fetch_history(self, since: datetime) -> list[PositionHistoryRecord]:
        return await self.venue.fetch_positions_history(since)

    # ================================================================ positions

    def _mark_for(self, symbol: str, pos: LedgerPosition | None = None) -> Decimal:
        mark = self._marks.get(symbol)
        if mark is not None:
            return mark
        for key, push in self._pushes.items():
            if key[0] == symbol and push.mark_price is not None:
                return push.mark_price
        return pos.entry_price if pos is not None else ZERO

    def _snapshot(self, key: Key) -> PositionSnapshot | None:
        if not self.ledger.holds(*key):
            return None
        mark = self._marks.get(key[0])
        if mark is None:
            mark = self._mark_for(key[0], self.ledger.position(*key))
        push = self._pushes.get(key)
        return self.ledger.snapshot(
            key[0], key[1], mark, _now(),
            push.leverage if push is not None and push.leverage is not None else ZERO,
            push.margin_mode if push is not None and push.margin_mode else "cross",
            push.liq_price if push is not None else None)

    def _record_position(self, snap: PositionSnapshot) -> None:
        try:
            self.journal.record_position(snap)
        except Exception as exc:  # noqa: BLE001
            logger.error(f"journal refused a position snapshot: {exc}")

    def _position_changed(self, key: Key, *, record: bool = True) -> None:
        """Publish (and journal on change) the life at ``key``, or PositionGone when it went flat."""
        snap = self._snapshot(key)
        shown = self._shown.get(key)
        if shown is not None and (snap is None or snap.position_id != shown):
            self._publish(PositionGone(key[0], key[1], shown))
            del self._shown[key]
        if snap is None:
            return
        self._shown[key] = snap.position_id
        if record:
            self._record_position(snap)
        self._publish(snap)

    def _on_position_push(self, push: PositionPush) -> None:
        key = (push.symbol, push.pos_side)
        self._pushes[key] = push
        if push.mark_price is not None and push.symbol not in self._marks:
            self._marks[push.symbol] = push.mark_price
        # Only the push's leverage / liq price can have changed (the ledger moves on fills, which
        # publish their own change): revalue with the next mark batch rather than per push.
        self._revalue_soon(push.symbol)
        if self._disagrees(key):
            loop = asyncio.get_running_loop()
            self._mismatch_due.setdefault(key, loop.time() + MISMATCH_GRACE_S)
        else:
            self._mismatch_due.pop(key, None)

    def _disagrees(self, key: Key) -> bool:
        push = self._pushes.get(key)
        exch = push.contracts if push is not None else ZERO
        return exch != self.ledger.signed_contracts(*key)

    # ================================================================ funding

    def _funding_since(self, floor: datetime | None = None) -> datetime:
        if self._funding_synced_at is not None:
            since = self._funding_synced_at - FUNDING_SLACK
        else:
            opens = [p.opened_at for p in self.ledger.positions()]
            last = self.journal.last_fill_time()
            since = min(opens + ([last] if last else []) + [_now()]) - BACKFILL_SLACK
        return min(since, floor) if floor is not None else since

    async def _sync_funding(self) -> None:
        started = _now()
        bills = await self.venue.fetch_funding_bills(self._funding_since())
        for bill in bills:
            self._on_bill(bill)
        self._funding_synced_at = started

    def _on_bill(self, bill: FundingBill) -> None:
        """Record one funding bill once, attributed to the life open when it was booked."""
        if bill.bill_id in self._bills_seen or self.journal.has_bill(bill.bill_id):
            self._bills_seen.add(bill.bill_id)
            return
        self._bills_seen.add(bill.bill_id)
        inst = self.venue.instruments.get(bill.symbol)
        contract_size = inst.contract_size if inst is not None else Decimal(1)
        window = self._window_for(bill, contract_size)
        position_id = ""
        side = PositionSide.LONG
        if window is not None:
            position_id, side = window.position_id, window.side
            live = self.ledger.position(window.symbol, window.pos_side)
            if live is not None and live.position_id == window.position_id:
                self.ledger.apply_funding(window.symbol, window.pos_side, bill.amount)
                self._position_changed((window.symbol, window.pos_side), record=False)
        else:
            logger.warning(f"funding bill {bill.bill_id} {bill.symbol} {plain(bill.amount)} at "
                           f"{bill.ts.isoformat()} matches no known position life")
        coins = bill.position_contracts * contract_size
        payment = FundingPayment(
            bill_id=bill.bill_id, symbol=bill.symbol, position_id=position_id,
            rate=bill.rate if bill.rate is not None else self._rate_of(bill, coins, side),
            position_contracts=bill.position_contracts, position_coins=coins,
            mark_price=bill.mark_price, amount=bill.amount, ccy=bill.ccy, ts=bill.ts)
        if self.journal.record_funding(payment):
            log_funding(payment)
            self._publish(payment)

    def _window_for(self, bill: FundingBill, contract_size: Decimal) -> LifeWindow | None:
        """The life of ``bill.symbol`` open at the bill's time; the one of matching size wins."""
        found = [w for w in reversed(self._windows.values())
                 if w.symbol == bill.symbol and w.covers(bill.ts)]
        if len(found) > 1:
            sized = [w for w in found if (p := self.ledger.position(w.symbol, w.pos_side))
                     is not None and p.position_id == w.position_id
                     and p.contracts == bill.position_contracts]
            if sized:
                return sized[0]
            paying = [w for w in found if (bill.amount < 0) == (w.side is PositionSide.LONG)]
            found = paying or found
        return found[0] if found else None

    @staticmethod
    def _rate_of(bill: FundingBill, coins: Decimal, side: PositionSide) -> Decimal:
        """OKX bills carry no rate: amount = -direction x coins x mark x rate, solved for rate."""
        base = coins * bill.mark_price * side.sign
        if base == 0:
            return ZERO
        with localcontext(Context(prec=40)):
            return (-bill.amount / base).quantize(RATE_QUANTUM, ROUND_HALF_EVEN).normalize()

    # ================================================================ resync

    async def _sync(self, reason: str) -> None:
        """Backfill fills and bills since the last known point, then align with the exchange."""
        connects = self._private_connects
        started = _now()
        self._resync_due = None  # this sync covers every resync asked for so far (re-armed on failure)
        self._publish(StreamStatus("sync", LinkState.RESYNCING, message=reason, ts=started))
        logger.info(f"RESYNC {reason}: backfilling from REST")
        positions = await self.venue.fetch_positions()
        since = self._backfill_since(positions)
        fills = await self.venue.fetch_fills(since) if since is not None else []
        bills = await self.venue.fetch_funding_bills(self._funding_since(since))
        n_fills, n_bills = self._apply_merged(fills, bills)
        adopted = await self._align(started)
        self._funding_synced_at = started
        self._synced_connects = max(self._synced_connects, connects)
        self._disconnected_at = None
        try:
            self._account = await self.venue.fetch_balance()
            self._publish(self._account)
        except Exception as exc:  # noqa: BLE001
            logger.warning(f"balance after resync unavailable: {exc}")
        logger.info(f"RESYNC {reason} done: {n_fills} fills and {n_bills} funding bills backfilled, "
                    f"{adopted} positions aligned, {len(self.ledger.positions())} open")
        self._publish(StreamStatus("sync", LinkState.CONNECTED, message=reason, ts=_now()))

    def _backfill_since(self, positions: Iterable[PositionPush]) -> datetime | None:
        cands: list[datetime] = []
        last = self.journal.last_fill_time()
        if last is not None:
            cands.append(last - BACKFILL_SLACK)
        if self._disconnected_at is not None:
            # measured on this computer's clock; fills carry the exchange's: convert, so a clock
            # running ahead cannot push the backfill start past fills made in the gap
            offset = timedelta(seconds=self._clock_offset())
            cands.append(self._disconnected_at - offset - BACKFILL_SLACK)
        for push in positions:
            if push.contracts == 0:
                continue
            if self.ledger.signed_contracts(push.symbol, push.pos_side) != push.contracts:
                if push.created_at is not None:
                    cands.append(push.created_at - BACKFILL_SLACK)
        return min(cands) if cands else None

    def _apply_merged(self, fills: list[Fill], bills: list[FundingBill]) -> tuple[int, int]:
        """Apply backfilled fills and bills in time order (a bill before a fill of the same ms)."""
        items: list[tuple[datetime, int, Any]] = []
        items += [(f.ts, 1, f) for f in fills if f.fill_id not in self._applied
                  and not self.journal.has_fill(f.fill_id)]
        items += [(b.ts, 0, b) for b in bills if b.bill_id not in self._bills_seen
                  and not self.journal.has_bill(b.bill_id)]
        items.sort(key=lambda t: (t[0], t[1]))
        n_fills = n_bills = 0
        for _, kind, item in items:
            if kind:
                self._on_fill(item)
                n_fills += 1
            else:
                self._on_bill(item)
                n_bills += 1
        return n_fills, n_bills

    async def _align(self, started: datetime) -> int:
        """Make the ledger hold exactly what the exchange holds; returns how many lives changed."""
        positions = await self.venue.fetch_positions()
        if self._mismatches(positions):
            # fills may have landed between the backfill and this read: fetch once more
            self._apply_merged(await self.venue.fetch_fills(started - BACKFILL_SLACK), [])
            positions = await self.venue.fetch_positions()
        for push in positions:
            self._pushes[(push.symbol, push.pos_side)] = push
        changed = 0
        for key, push in self._mismatches(positions):
            await self._fix(key, push)
            changed += 1
        for key in {(p.symbol, p.pos_side) for p in positions} | {
                (p.symbol, p.pos_side) for p in self.ledger.positions()}:
            self._mismatch_due.pop(key, None)
            self._position_changed(key)
        return changed

    def _mismatches(self, positions: list[PositionPush]) -> list[tuple[Key, PositionPush | None]]:
        exch = {(p.symbol, p.pos_side): p for p in positions if p.contracts != 0}
        out: list[tuple[Key, PositionPush | None]] = []
        for key in sorted(set(exch) | {(p.symbol, p.pos_side) for p in self.ledger.positions()}):
            push = exch.get(key)
            pos = self.ledger.position(*key)
            mine = self.ledger.signed_contracts(*key)
            theirs = push.contracts if push is not None else ZERO
            stale = (pos is not None and push is not None and push.created_at is not None
                     and abs(push.created_at - pos.opened_at) > LIFE_MATCH)
            if mine != theirs or stale:
                out.append((key, push))
        return out

    async def _fix(self, key: Key, push: PositionPush | None) -> None:
        """Last resort: the fills could not explain the exchange's position."""
        pos = self.ledger.position(*key)
        if pos is not None:
            side = _push_side(push) if push is not None else None
            same_life = (push is not None and side is pos.side and (
                push.created_at is None or abs(push.created_at - pos.opened_at) <= LIFE_MATCH))
            if not same_life:
                await self._close_from_history(pos)
                pos = None
        if push is None:
            return
        inst = self.venue.instruments[key[0]]
        side = _push_side(push)
        opened = pos.opened_at if pos is not None else (push.created_at or _now())
        entry = push.entry_price if push.entry_price is not None else self._mark_for(key[0])
        adopted = self.ledger.adopt(key[0], key[1], side, abs(push.contracts), inst.contract_size,
                                    entry, opened)
        if adopted.position_id not in self._windows:
            self._add_window(adopted)
        self._notice(NoticeLevel.WARNING,
                     f"adopted {key[0]} {side.value} {plain(abs(push.contracts))} contracts "
                     f"({plain(adopted.coins)} coins) @ {plain(entry)} from the exchange "
                     "(its opening fills are not available)")

    async def _close_from_history(self, pos: LedgerPosition) -> None:
        """The exchange no longer holds a life the ledger holds: close it from positions-history."""
        records = await self.venue.fetch_positions_history(pos.opened_at - LIFE_MATCH)
        record = match_history(records, pos.symbol, pos.pos_side, pos.side, pos.opened_at)
        reason = reason_from_close_type(record.close_type) if record else CloseReason.EXTERNAL
        price = (record.close_avg_price if record is not None and record.close_avg_price
                 else self._mark_for(pos.symbol, pos))
        ts = record.updated_at if record is not None else _now()
        synthetic = Fill(
            fill_id=f"resync-{pos.position_id}", order_id="", client_order_id="",
            symbol=pos.symbol, side=pos.side.closing_order_side, contracts=pos.contracts,
            contract_size=pos.contract_size, price=price, fee=ZERO, fee_ccy="USDT", ts=ts,
            reduce_only=True, origin=_origin_for(reason), pos_side=pos.pos_side)
        before = self.ledger.position(pos.symbol, pos.pos_side)
        closes = [dataclasses.replace(c, fill_ids=()) for c in self.ledger.apply_fill(synthetic)]
        self._notice(NoticeLevel.WARNING,
                     f"{pos.symbol} {pos.side.value} {plain(pos.coins)} coins closed on the exchange "
                     f"while its fills were unavailable ({reason.value}); row built from "
                     "positions-history")
        self._after_fill(synthetic, before, closes)

    # ================================================================ journal replay (start)

    def _replay_journal(self) -> None:
        """Rebuild open lives from the journal's own fills and funding (no rows are rewritten)."""
        rows = self.journal.replay_rows()  # the lives open at the last stop, not the history
        fills = [_fill_from_row(r) for r in rows.fills]
        funding = rows.funding
        trades = rows.trades
        by_life: dict[str, list[CloseResult]] = {}
        for row in trades:
            close = _close_from_row(row)
            by_life.setdefault(close.position_id, []).append(close)
        for pid, rows in by_life.items():
            self.confirmer.seed(pid, LifeTotals.of_rows(rows))
        items: list[tuple[datetime, int, Any]] = [(f.ts, 1, f) for f in fills]
        items += [(parse_ts(str(r["ts"])), 0, r) for r in funding]
        items.sort(key=lambda t: (t[0], t[1]))
        repaired = 0
        for _, kind, item in items:
            if kind == 0:
                self._bills_seen.add(str(item["bill_id"]))
                pid = str(item["position_id"])
                window = self._windows.get(pid)
                if window is not None:
                    live = self.ledger.position(window.symbol, window.pos_side)
                    if live is not None and live.position_id == pid:
                        self.ledger.apply_funding(window.symbol, window.pos_side,
                                                  dec(item["amount"]))
                continue
            fill: Fill = item
            if fill.fill_id in self._applied:
                continue
            self._applied.add(fill.fill_id)
            key = (fill.symbol, fill.pos_side)
            before = self.ledger.position(*key)
            try:
                closes = self.ledger.apply_fill(fill)
            except ValueError as exc:
                logger.warning(f"journal replay: fill {fill.fill_id} skipped ({exc})")
                continue
            after = self.ledger.position(*key)
            if before is not None:
                self._count_fill(before.position_id)
            for close in closes:
                window = self._windows.get(close.position_id)
                if close.is_full and window is not None:
                    self._windows[close.position_id] = dataclasses.replace(window,
                                                                           closed_at=fill.ts)
                if not self.journal.has_close(close.close_key):
                    repaired += 1  # fill journaled, close row lost (crash): write it now
                    self._submit_close(close, fill.pos_side)
            if after is not None and after.position_id not in self._windows:
                self._add_window(after)
                if before is None or before.position_id != after.position_id:
                    self._count_fill(after.position_id)
        logger.info(f"journal replay: {len(fills)} fills, {len(funding)} funding rows, "
                    f"{len(self.ledger.positions())} open lives, {repaired} close rows to repair")

    # ================================================================ timer

    async def _timer(self) -> None:
        loop = asyncio.get_running_loop()
        next_snapshot = loop.time() + self.position_snapshot_interval
        funding_done: dict[str, datetime] = {}
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self._check_journal()
                now = loop.time()
                if now >= next_snapshot:
                    next_snapshot = now + self.position_snapshot_interval
                    for snap in self.positions():
                        self._record_position(snap)
                for key, due in list(self._mismatch_due.items()):
                    if now >= due:
                        del self._mismatch_due[key]
                        if self._disagrees(key):
                            logger.warning(f"position {key[0]} {key[1]}: exchange and ledger "
                                           "disagree; resyncing")
                            self._queue.put_nowait(_Resync("position mismatch"))
                if self._resync_due is not None and now >= self._resync_due:
                    self._resync_due = None
                    self._queue.put_nowait(_Resync("retry"))
                wall = _now()
                for symbol, when in list(self._next_funding.items()):
                    if (wall >= when + timedelta(seconds=FUNDING_GRACE_S)
                            and funding_done.get(symbol) != when):
                        funding_done[symbol] = when
                        if (self._funding_synced_at is None or self._funding_synced_at < when) and \
                                any(p.symbol == symbol for p in self.ledger.positions()):
                            self._queue.put_nowait(_FundingDue(symbol))
            except Exception:  # noqa: BLE001
                logger.exception("engine timer tick failed")

    # ================================================================ commands

    async def _place(self, cmd: PlaceOrder, origin: Origin) -> CommandResult:
        inst = self.venue.instruments.get(cmd.symbol)
        if inst is None:
            return self._refuse(f'symbol "{cmd.symbol}" is not traded here '
                                f"({', '.join(self.venue.instruments) or 'none'})")
        order_id = await self.venue.place_order(cmd, origin)
        what = (f"{cmd.side.value} {plain(cmd.contracts)} contracts "
                f"({plain(inst.to_coins(cmd.contracts))} {inst.base_ccy or 'coins'}) {cmd.symbol} "
                f"{cmd.order_type}")
        extras = "".join([f" tp {plain(cmd.take_profit)}" if cmd.take_profit is not None else "",
                          f" sl {plain(cmd.stop_loss)}" if cmd.stop_loss is not None else ""])
        logger.info(f"ORDER PLACED {order_id} {what}{extras} origin {origin.value}")
        return CommandResult(True, f"order {order_id} placed: {what}{extras}", (order_id,))

    def _open_contracts(self, symbol: str, pos_side: str) -> Decimal:
        pos = self.ledger.position(symbol, pos_side)
        if pos is not None:
            return pos.contracts
        push = self._pushes.get((symbol, pos_side))
        return abs(push.contracts) if push is not None else ZERO

    async def _close(self, cmd: ClosePosition, origin: Origin) -> CommandResult:
        inst = self.venue.instruments.get(cmd.symbol)
        if inst is None:
            return self._refuse(f'symbol "{cmd.symbol}" is not traded here')
        open_contracts = self._open_contracts(cmd.symbol, cmd.pos_side)
        if open_contracts == 0:
            return self._refuse(f"no open {cmd.symbol} {cmd.pos_side} position to close")
        contracts = cmd.contracts
        if contracts is not None:
            if contracts <= 0:
                return self._refuse(f"close size must be > 0 contracts, got {plain(contracts)}")
            if contracts >= open_contracts:
                contracts = None
        size = open_contracts if contracts is None else contracts
        order_id = await self.venue.close_position(cmd.symbol, cmd.pos_side, contracts, origin)
        what = (f"{'closing all of' if contracts is None else 'closing'} {plain(size)} contracts "
                f"({plain(inst.to_coins(size))} {inst.base_ccy or 'coins'}) of {cmd.symbol} "
                f"{cmd.pos_side}")
        logger.info(f"CLOSE SENT {order_id} {what} origin {origin.value}")
        return CommandResult(True, what, (order_id,))

    async def _close_all(self, origin: Origin) -> CommandResult:
        keys = {(p.symbol, p.pos_side) for p in self.ledger.positions()}
        keys |= {k for k, p in self._pushes.items() if p.contracts != 0}
        if not keys:
            return CommandResult(True, "no open positions")
        results = await asyncio.gather(
            *(self.submit(ClosePosition(symbol, pos_side), origin=origin)
              for symbol, pos_side in sorted(keys)))
        ok = all(r.ok for r in results)
        ids = tuple(i for r in results for i in r.order_ids)
        message = "; ".join(r.message for r in results)
        return CommandResult(ok, message, ids)

