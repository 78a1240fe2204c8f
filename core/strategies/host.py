"""The strategy host: runs one Strategy in its own thread and event loop, feeds it events, contains it.

Why a thread of its own: the engine, the journal, the risk monitor, the console and the stop
signals all live in one event loop. Run there, a strategy that calls ``time.sleep`` (or any
blocking call), never returns from ``on_start``, or raises ``SystemExit`` froze or ended all of
them: an outside fill shown 14 s late, ``q`` and SIGTERM ignored, the process gone with exit 0.
So the strategy's callbacks run in a daemon thread with its own loop, and the engine's loop only
hands them events and carries out their commands:

- The engine subscriber files each event into a small coalescing queue (a mark or the open
  candle replaces its older copy still waiting, so a slow strategy sees the latest price; fills,
  closes, its orders and closed candles are all delivered) and one task hands the callbacks to the
  strategy's thread one at a time, in order.
- ``ctx.submit`` and ``ctx.fetch_candles`` run on the engine's loop (``Engine.submit(...,
  origin=Origin.STRATEGY)``, behind the engine's pre-trade checks), shielded: a strategy that is
  cancelled never cancels an order half-sent. ``ctx``'s reads come from an immutable picture
  (positions, account, marks, trading state) published from the engine's loop before each callback,
  after each command and on events while a callback runs; no engine dict is read from the thread.
- A watchdog on the engine's loop stops a callback that has run for more than ``max_callback_s``
  (time waiting for the engine's commands excluded): the strategy's thread is then abandoned.
- Whatever a callback raises, ``SystemExit``, ``KeyboardInterrupt`` and ``CancelledError``
  included, stops the strategy alone.

Every way a strategy ends is a notice and the log line ``STRATEGY STOPPED <name>: <why>`` (plus
the traceback in the log when it raised); its subscription is dropped and any later command from
it is refused; the engine, the journal and the console go on.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger

from core.events import (
    AccountSnapshot,
    CancelOrder,
    Candle,
    CloseAll,
    ClosePosition,
    Command,
    CommandResult,
    MarkPrice,
    NoticeLevel,
    PlaceOrder,
    RiskStatus,
    SetTpSl,
    TradingState,
)
from core.model import CloseResult, Fill, Instrument, OrderUpdate, Origin, PositionSnapshot, PosSide
from core.money import ZERO
from core.strategies.base import Strategy, StrategyError

if TYPE_CHECKING:
    from core.engine import Engine

T = TypeVar("T")

CANDLES_KEPT = 1440  # closed one-minute candles kept per symbol (one day)
STRATEGY_COMMANDS = (PlaceOrder, ClosePosition, CloseAll, CancelOrder, SetTpSl)
MAX_CALLBACK_S = 5.0  # a callback running longer (engine commands excluded) stops the strategy
START_GRACE_S = 1.0  # start() waits this long for on_start, then lets the engine go on without it
STOP_WAIT_S = 2.0  # on_stop's bound (shutdown and after a failure)
SETTLE_S = 0.3  # at shutdown, how long a running callback may take to end before on_stop is skipped
WATCH_S = 0.1  # the watchdog's period
_TICK = ("tick",)


class _Abandoned(BaseException):
    """Raised inside an abandoned strategy thread, to end a busy loop it is stuck in."""


class _DaemonExecutor(concurrent.futures.ThreadPoolExecutor):
    """The strategy loop's default executor (``asyncio.to_thread``, ``run_in_executor(None, ...)``):
    one daemon thread per job. The pool's own threads are joined at interpreter exit, so a
    strategy's ``to_thread(time.sleep, 3600)`` held the process's exit after SIGTERM. (A
    ThreadPoolExecutor subclass only because asyncio accepts nothing else as the default.)"""

    def __init__(self, name: str) -> None:
        super().__init__(max_workers=1, thread_name_prefix=name)
        self._name = name

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting strategy
                future.set_exception(exc)

        threading.Thread(target=run, name=f"{self._name}-worker", daemon=True).start()
        return future


@dataclass(frozen=True, slots=True)
class EngineView:
    """What ``ctx`` reads from the strategy's thread: a picture taken on the engine's loop."""

    positions: tuple[PositionSnapshot, ...]
    account: AccountSnapshot | None
    marks: Mapping[str, Decimal]
    state: TradingState


class StrategyContext:
    """The ``ctx`` of every callback (see core.strategies.base.Context for the documented API)."""

    def __init__(self, host: StrategyHost, engine: Engine) -> None:
        self._host = host
        self._engine = engine
        self._instruments: Mapping[str, Instrument] = MappingProxyType(dict(engine.instruments))
        self._symbols = tuple(self._instruments)
        self._closed: dict[str, deque[Candle]] = {}
        self._live: dict[str, Candle] = {}
        self._realized_day: datetime | None = None
        self._realized = ZERO
        self._close_keys: set[str] = set()

    # ---------------------------------------------------------------- reads

    @property
    def name(self) -> str:
        return self._host.name

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        return self._instruments

    def positions(self) -> list[PositionSnapshot]:
        return list(self._host.view.positions)

    def position(self, symbol: str, pos_side: PosSide | str = PosSide.NET) -> PositionSnapshot | None:
        return next((p for p in self._host.view.positions
                     if p.symbol == symbol and p.pos_side == pos_side), None)

    def account(self) -> AccountSnapshot | None:
        return self._host.view.account

    def mark(self, symbol: str) -> Decimal | None:
        return self._host.view.marks.get(symbol)

    def candles(self, symbol: str, count: int | None = None) -> list[Candle]:
        rows = list(self._closed.get(symbol, ()))
        return rows if count is None else rows[-count:] if count > 0 else []

    def live_candle(self, symbol: str) -> Candle | None:
        return self._live.get(symbol)

    def today_pnl(self) -> Decimal:
        self._roll_day()
        return self._realized + sum((p.unrealized_pnl for p in self._host.view.positions), ZERO)

    @property
    def trading_state(self) -> TradingState:
        return self._host.trading_state()

    @property
    def can_enter(self) -> bool:
        return self.trading_state is TradingState.RUNNING

    def now(self) -> datetime:
        return datetime.now(UTC)

    def log(self, message: str) -> None:
        logger.info(f"STRATEGY {self.name} {message}")

    # ---------------------------------------------------------------- actions

    async def submit(self, command: Command) -> CommandResult:
        """Orders, closes, cancels and TP/SL moves, through the engine's check chain; a strategy
        may not pause, resume or kill (those are the trader's)."""
        if not isinstance(command, STRATEGY_COMMANDS):
            return CommandResult(False, f"a strategy cannot send {type(command).__name__}: "
                                        "pause, resume and the kill switch are the trader's")
        try:
            return await self._host.call_engine(lambda: self._engine.submit(command, origin=Origin.STRATEGY))
        except StrategyError as exc:
            return CommandResult(False, exc.message)

    async def fetch_candles(self, symbol: str, bar: str = "1m", limit: int = 100) -> list[Candle]:
        return await self._host.call_engine(lambda: self._engine.fetch_candles(symbol, bar, limit))

    # ---------------------------------------------------------------- host side

    def add_candle(self, candle: Candle) -> None:
        """File a one-minute candle: closed ones in order (a repeat replaces), the open one apart."""
        if candle.bar != "1m":
            return
        if not candle.confirmed:
            live = self._live.get(candle.symbol)
            if live is None or candle.ts >= live.ts:
                self._live[candle.symbol] = candle
            return
        rows = self._closed.setdefault(candle.symbol, deque(maxlen=CANDLES_KEPT))
        if rows and candle.ts < rows[-1].ts:
            return  # older than what is kept: a late duplicate
        if rows and candle.ts == rows[-1].ts:
            rows[-1] = candle
        else:
            rows.append(candle)
        live = self._live.get(candle.symbol)
        if live is not None and live.ts <= candle.ts:
            del self._live[candle.symbol]

    def add_close(self, close: CloseResult) -> None:
        self._roll_day()
        if close.closed_at.astimezone(UTC).date() == self._realized_day and close.close_key not in self._close_keys:
            self._close_keys.add(close.close_key)
            self._realized += close.net_pnl

    def seed_realized(self, closes: list[CloseResult]) -> None:
        for close in closes:
            self.add_close(close)

    def _roll_day(self) -> None:
        today = datetime.now(UTC).date()
        if self._realized_day != today:
            self._realized_day, self._realized = today, ZERO  # type: ignore[assignment]
            self._close_keys.clear()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class StrategyHost:
    """Runs ``strategy`` against ``engine`` from ``start()`` to ``stop()`` (or its first failure).

    ``running`` is True while it receives events; ``error`` says why it stopped, when it did by
    itself (a raise, a blocking callback, its loop ending)."""

    def __init__(self, strategy: Strategy, engine: Engine, *, max_callback_s: float = MAX_CALLBACK_S) -> None:
        self.strategy = strategy
        self.engine = engine
        self.name = str(getattr(strategy, "name", type(strategy).__name__))
        self.max_callback_s = max_callback_s
        self.ctx = StrategyContext(self, engine)
        self.running = False
        self.error: str | None = None
        self.view = EngineView((), None, MappingProxyType({}), engine.trading_state)
        self._pending: OrderedDict[Hashable, object] = OrderedDict()
        self._wake = asyncio.Event()
        self._seq = 0
        self._risk_state: TradingState | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the engine's
        self._sloop: asyncio.AbstractEventLoop | None = None  # the strategy's
        self._thread: threading.Thread | None = None
        self._closing = False  # the host stops the strategy's loop on purpose
        self._busy: str | None = None  # the callback handed to the thread and not yet returned
        self._in_callback: str | None = None  # written by the strategy's thread
        self._progress = 0.0  # when the busy callback was handed over or last got a command's answer
        self._calls = 0  # engine commands in flight for the strategy
        self._refresh_due = False
        self._started = asyncio.Event()  # on_start returned (or the strategy stopped)
        self._wind: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Subscribe, warm up from history candles, start the strategy's thread and ``on_start``.

        Returns once ``on_start`` has returned or after START_GRACE_S, whichever comes first: a
        slow or stuck ``on_start`` holds neither the engine nor the console (the watchdog stops it)."""
        self._loop = asyncio.get_running_loop()
        self.running = True
        self.engine.control.set_strategy(self.name, True)  # the strategy/risk line shows it
        self.engine.control.on_kill(self.stop)  # the kill switch stops the strategy first
        self._unsubscribe = self.engine.subscribe(self._on_event)
        self._publish_view()
        logger.info(f"STRATEGY STARTED {self.name} on {', '.join(self.ctx.symbols)}")
        for what, step in (("warm-up", self._warm_up), ("start", self._start_thread)):
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a strategy that cannot start stops, the engine goes on
                self._fail(what, exc)
                return
        self._tasks.append(asyncio.create_task(self._run(), name=f"strategy-{self.name}"))
        self._tasks.append(asyncio.create_task(self._watch(), name=f"strategy-{self.name}-watchdog"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._started.wait(), START_GRACE_S)

    async def stop(self) -> None:
        """At shutdown: stop feeding, then ``on_stop`` (bounded). Orders already sent stay."""
        if self._stopped:
            if self._wind is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._wind  # a failure's wind-down (bounded) ends before the engine does
            return
        was_running = self.running
        self._halt_feed()
        await self._cancel_tasks()
        busy = await self._settle()
        if was_running and busy is None:
            await self._on_stop()
        if was_running:
            why = "shutdown" if busy is None else f"shutdown ({busy} still running: on_stop not called)"
            self.engine.notice(NoticeLevel.INFO, f"STRATEGY STOPPED {self.name}: {why}")
        self._close_thread(stuck=busy is not None)

    def trading_state(self) -> TradingState:
        """The engine's trading state: the last RiskStatus it published since the strategy
        started, else the engine's own when the picture was taken (e.g. halted from before a
        restart)."""
        if self._risk_state is not None:
            return self._risk_state
        return self.view.state

    async def call_engine(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` (an engine coroutine) on the engine's loop for the strategy and return its
        result in the caller's loop; StrategyError once the strategy is stopped."""
        engine_loop = self._loop
        if engine_loop is None or not self.running:
            raise StrategyError(f"strategy {self.name} is stopped")
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is engine_loop:
            return await self._engine_call(make)
        try:
            future = asyncio.run_coroutine_threadsafe(self._engine_call(make), engine_loop)
        except RuntimeError:  # the engine's loop is closed: the run is over
            raise StrategyError(f"strategy {self.name} is stopped") from None
        return await asyncio.wrap_future(future)

    # ---------------------------------------------------------------- the engine's loop

    async def _engine_call(self, make: Callable[[], Awaitable[T]]) -> T:
        if not self.running:  # checked here, on the engine's loop: the last word
            raise StrategyError(f"strategy {self.name} is stopped")
        inner = asyncio.ensure_future(self._counted(make))
        return await asyncio.shield(inner)  # never cancelled half-way by the strategy's side

    async def _counted(self, make: Callable[[], Awaitable[T]]) -> T:
        self._calls += 1
        try:
            return await make()
        finally:
            self._calls -= 1
            self._progress = time.monotonic()  # the callback's own clock starts again
            self._publish_view()  # the strategy reads the picture its command left

    def _publish_view(self) -> None:
        self._refresh_due = False
        e = self.engine
        marks = {s: m for s in self.ctx.symbols if (m := e.mark(s)) is not None}
        self.view = EngineView(tuple(e.positions()), e.account(), MappingProxyType(marks), e.trading_state)

    def _halt_feed(self) -> None:
        if self.running:
            self.engine.control.set_strategy(self.name, False)
        self.running = False
        self._stopped = True
        self._started.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._pending.clear()

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()

    async def _warm_up(self) -> None:
        """History candles first (indicators ready at once), then today's realized PnL."""
        count = int(getattr(self.strategy, "warmup", 0) or 0)
        if count > 0:
            for symbol in self.ctx.symbols:
                for candle in await self.engine.fetch_candles(symbol, "1m", count + 1):
                    self.ctx.add_candle(candle)
        history = await self.engine.today_history()
        self.ctx.seed_realized([c.close for c in history.closes])

    def _on_event(self, event: object) -> None:
        """The engine subscriber: file the event for the dispatcher, nothing else."""
        if isinstance(event, RiskStatus):
            self._risk_state = event.state
            return
        key: Hashable
        if isinstance(event, MarkPrice):
            key = ("mark", event.symbol)
        elif isinstance(event, Candle):
            key = ("candle", event.symbol, event.bar, event.ts)  # the closed bar replaces the open one
        elif isinstance(event, (Fill, CloseResult)):
            key = self._next()
        elif isinstance(event, OrderUpdate):
            if event.origin is not Origin.STRATEGY:
                return
            key = self._next()
        else:
            return
        self._pending[key] = event
        self._wake.set()
        if self._busy is not None and not self._refresh_due and self._loop is not None:
            self._refresh_due = True  # a callback is running: its reads follow the engine
            self._loop.call_soon(self._publish_view)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    async def _run(self) -> None:
        """``on_start``, then each event in order, each callback in the strategy's thread."""
        s, ctx = self.strategy, self.ctx
        ok = await self._hand("on_start", lambda: s.on_start(ctx))
        self._started.set()
        if not ok:
            return
        try:
            tick = s.tick_s
            seconds = float(tick) if tick is not None and tick > 0 else 0.0  # float ok: a timer period
        except Exception as exc:  # noqa: BLE001 - the trader's attribute
            self._fail("tick_s", exc)
            return
        if seconds > 0:
            self._tasks.append(asyncio.create_task(self._ticks(seconds), name=f"strategy-{self.name}-tick"))
        while self.running:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            _, event = self._pending.popitem(last=False)
            what, work = self._work(event)
            if not await self._hand(what, work):
                return

    def _work(self, event: object) -> tuple[str, Callable[[], Awaitable[None]]]:
        """The callback for ``event``, as a coroutine function the strategy's thread runs (the
        candle and close stores are filled there: they are the strategy's own)."""
        s, ctx = self.strategy, self.ctx

        async def candle() -> None:
            assert isinstance(event, Candle)
            ctx.add_candle(event)
            await s.on_candle(ctx, event)

        async def close() -> None:
            assert isinstance(event, CloseResult)
            ctx.add_close(event)
            await s.on_close(ctx, event)

        if isinstance(event, Candle):
            return "on_candle", candle
        if isinstance(event, MarkPrice):
            return "on_mark", lambda: s.on_mark(ctx, event)
        if isinstance(event, Fill):
            return "on_fill", lambda: s.on_fill(ctx, event)
        if isinstance(event, CloseResult):
            return "on_close", close
        if isinstance(event, OrderUpdate):
            return "on_order", lambda: s.on_order(ctx, event)
        return "on_tick", lambda: s.on_tick(ctx)

    async def _hand(self, what: str, work: Callable[[], Awaitable[None]]) -> bool:
        """Run one callback in the strategy's thread and wait for it; on a raise stop the
        strategy and say so. False = stopped."""
        sloop = self._sloop
        if sloop is None:
            return False
        self._publish_view()
        self._busy, self._progress = what, time.monotonic()
        try:
            future = asyncio.run_coroutine_threadsafe(self._callback(what, work), sloop)
            raised = await asyncio.wrap_future(future)
        except RuntimeError:  # its loop is closed: the thread ended (told by _thread_ended)
            return False
        finally:
            self._busy = None
        if raised is None:
            return True
        self._fail(what, raised)
        return False

    async def _ticks(self, period: float) -> None:
        """A tick is one more event in the queue (at most one waiting), so callbacks stay one at
        a time and in order."""
        while self.running:
            await asyncio.sleep(period)
            self._pending[_TICK] = _TICK
            self._wake.set()

    async def _watch(self) -> None:
        """Stop a callback that runs too long (time waiting for engine commands excluded)."""
        while self.running:
            await asyncio.sleep(WATCH_S)
            what = self._busy
            if what is None or self._calls:
                continue
            if time.monotonic() - self._progress > self.max_callback_s:
                self._end(f"{what} did not return within {self.max_callback_s:g} s (a blocking call "
                          "such as time.sleep, or a wait on something other than ctx); its thread "
                          "is abandoned", stuck=True)
                return

    def _fail(self, what: str, exc: BaseException) -> None:
        if self._stopped:
            return  # already stopped (e.g. its loop ended and cancelled this callback)
        logger.opt(exception=exc).error(f"strategy {self.name} {what} raised")
        self._end(f"{what} raised {_describe(exc)}", stuck=False)

    def _end(self, why: str, *, stuck: bool) -> None:
        """Stop the strategy alone: no more events, no more commands, a notice and a log line."""
        if self._stopped:
            return
        self.error = why
        self._halt_feed()
        self.engine.notice(NoticeLevel.ERROR, f"STRATEGY STOPPED {self.name}: {why}")
        self._wind = asyncio.get_running_loop().create_task(self._wind_down(stuck),
                                                            name=f"strategy-{self.name}-stop")

    async def _wind_down(self, stuck: bool) -> None:
        await self._cancel_tasks()
        if not stuck:
            await self._on_stop()
        self._close_thread(stuck)

    async def _settle(self) -> str | None:
        """After the dispatcher was cancelled: the callback still running in the thread after
        SETTLE_S (None once it has ended: its cancellation reached it)."""
        deadline = time.monotonic() + SETTLE_S
        while self._in_callback is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self._in_callback

    async def _on_stop(self) -> None:
        """``on_stop`` in the strategy's thread, bounded; its failure is logged, never raised."""
        sloop, thread = self._sloop, self._thread
        if sloop is None or thread is None or not thread.is_alive():
            return
        try:
            future = asyncio.run_coroutine_threadsafe(
                self._callback("on_stop", lambda: self.strategy.on_stop(self.ctx)), sloop)
            raised = await asyncio.wait_for(asyncio.wrap_future(future), STOP_WAIT_S)
        except TimeoutError:
            logger.error(f"STRATEGY {self.name} on_stop did not return within {STOP_WAIT_S:g} s; abandoned")
            self._interrupt()
            return
        except RuntimeError:
            return
        if raised is not None:
            logger.opt(exception=raised).error(f"STRATEGY {self.name} on_stop failed: {_describe(raised)}")

    # ---------------------------------------------------------------- the strategy's thread

    async def _start_thread(self) -> None:
        ready: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._thread_main, args=(ready,),
                                        name=f"strategy-{self.name}", daemon=True)
        self._thread.start()
        self._sloop = await asyncio.wait_for(asyncio.wrap_future(ready), STOP_WAIT_S)

    def _thread_main(self, ready: concurrent.futures.Future[asyncio.AbstractEventLoop]) -> None:
        """The strategy's loop, until the host stops it or something the strategy started ends it."""
        try:
            loop = asyncio.new_event_loop()
            loop.set_exception_handler(self._loop_error)
            loop.set_default_executor(_DaemonExecutor(f"strategy-{self.name}"))
            asyncio.set_event_loop(loop)
        except BaseException as exc:  # noqa: BLE001 - told to start(), which stops the strategy
            ready.set_exception(exc)
            return
        ready.set_result(loop)
        ended: BaseException | None = None
        try:
            loop.run_forever()
        except BaseException as exc:  # noqa: BLE001 - SystemExit & co from a task the strategy started
            ended = exc
        finally:
            with contextlib.suppress(BaseException):
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.wait(tasks, timeout=STOP_WAIT_S))
            with contextlib.suppress(BaseException):
                loop.close()
        if ended is not None and not self._closing and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._thread_ended, ended)

    def _thread_ended(self, exc: BaseException) -> None:
        """On the engine's loop: the strategy's loop ended by itself."""
        logger.opt(exception=exc).error(f"strategy {self.name} event loop ended")
        self._end(f"its event loop ended: {_describe(exc)} raised in a task it started", stuck=True)

    async def _callback(self, what: str, work: Callable[[], Awaitable[None]]) -> BaseException | None:
        """In the strategy's loop: one callback; what it raised, whatever it is, is returned."""
        self._in_callback = what
        try:
            await work()
            return None
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt, CancelledError too
            return exc
        finally:
            self._in_callback = None

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = context.get("message", "error")
        logger.opt(exception=exc).error(f"STRATEGY {self.name}: {message}"
                                        + (f" ({_describe(exc)})" if exc is not None else ""))

    def _close_thread(self, stuck: bool) -> None:
        """Stop the strategy's loop; a thread stuck in a callback is abandoned (daemon), told to
        end at its next Python instruction."""
        self._closing = True
        sloop = self._sloop
        if sloop is not None and not sloop.is_closed():
            with contextlib.suppress(RuntimeError):
                sloop.call_soon_threadsafe(sloop.stop)
        if stuck:
            self._interrupt()

    def _interrupt(self) -> None:
        """Raise _Abandoned in the strategy's thread (a busy loop ends; a sleep ends when it wakes)."""
        thread = self._thread
        if thread is None or thread.ident is None or not thread.is_alive():
            return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(_Abandoned))
