"""The strategy host: runs one Strategy in the engine's loop, feeds it events, contains its failures.

Why a host between the engine and the strategy: the engine's subscribers must be cheap and never
block, while a strategy awaits orders. So the subscriber only files each event into a small
coalescing queue and one task calls the strategy's callbacks one at a time, in order. State-like
events (a mark, the open candle) replace their older copy still waiting, so a slow strategy sees
the latest price instead of falling behind; facts (fills, closes, orders, closed candles) are all
delivered. A callback that raises stops the strategy alone: a notice, the log line
``STRATEGY STOPPED <name>: <error>`` (plus the traceback in the log), the subscription dropped;
the engine, the journal and the console go on. Orders leave only through ``Engine.submit(...,
origin=Origin.STRATEGY)``, behind the engine's pre-trade checks.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

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
from core.strategies.base import Strategy

if TYPE_CHECKING:
    from core.engine import Engine

CANDLES_KEPT = 1440  # closed one-minute candles kept per symbol (one day)
STRATEGY_COMMANDS = (PlaceOrder, ClosePosition, CloseAll, CancelOrder, SetTpSl)
_TICK = ("tick",)


class StrategyContext:
    """The ``ctx`` of every callback (see core.strategies.base.Context for the documented API)."""

    def __init__(self, host: StrategyHost, engine: Engine) -> None:
        self._host = host
        self._engine = engine
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
        return tuple(self._engine.instruments)

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        return self._engine.instruments

    def positions(self) -> list[PositionSnapshot]:
        return self._engine.positions()

    def position(self, symbol: str, pos_side: PosSide | str = PosSide.NET) -> PositionSnapshot | None:
        return next((p for p in self._engine.positions()
                     if p.symbol == symbol and p.pos_side == pos_side), None)

    def account(self) -> AccountSnapshot | None:
        return self._engine.account()

    def mark(self, symbol: str) -> Decimal | None:
        return self._engine.mark(symbol)

    def candles(self, symbol: str, count: int | None = None) -> list[Candle]:
        rows = list(self._closed.get(symbol, ()))
        return rows if count is None else rows[-count:] if count > 0 else []

    def live_candle(self, symbol: str) -> Candle | None:
        return self._live.get(symbol)

    def today_pnl(self) -> Decimal:
        self._roll_day()
        return self._realized + sum((p.unrealized_pnl for p in self._engine.positions()), ZERO)

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
        if not self._host.running:
            return CommandResult(False, f"strategy {self.name} is stopped")
        return await self._engine.submit(command, origin=Origin.STRATEGY)

    async def fetch_candles(self, symbol: str, bar: str = "1m", limit: int = 100) -> list[Candle]:
        return await self._engine.fetch_candles(symbol, bar, limit)

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


class StrategyHost:
    """Runs ``strategy`` against ``engine`` from ``start()`` to ``stop()`` (or its first error)."""

    def __init__(self, strategy: Strategy, engine: Engine) -> None:
        self.strategy = strategy
        self.engine = engine
        self.name = str(getattr(strategy, "name", type(strategy).__name__))
        self.ctx = StrategyContext(self, engine)
        self.running = False
        self.error: str | None = None  # why it stopped, when a callback raised
        self._pending: OrderedDict[Hashable, object] = OrderedDict()
        self._wake = asyncio.Event()
        self._seq = 0
        self._risk_state: TradingState | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Subscribe, warm up from history candles, call ``on_start``, then feed events."""
        self.running = True
        self.engine.control.set_strategy(self.name, True)  # the strategy/risk line shows it
        self.engine.control.on_kill(self.stop)  # the kill switch stops the strategy first
        self._unsubscribe = self.engine.subscribe(self._on_event)
        logger.info(f"STRATEGY STARTED {self.name} on {', '.join(self.ctx.symbols)}")
        if not await self._guard("warm-up", self._warm_up()):
            return
        if not await self._guard("on_start", self.strategy.on_start(self.ctx)):
            return
        self._tasks.append(asyncio.create_task(self._dispatch(), name=f"strategy-{self.name}"))
        tick = self.strategy.tick_s
        if tick is not None and tick > 0:
            seconds = float(tick)  # float ok: a timer period in seconds, not money
            self._tasks.append(asyncio.create_task(self._ticks(seconds), name=f"strategy-{self.name}-tick"))

    async def stop(self) -> None:
        """At shutdown: stop feeding, then ``on_stop`` (bounded). Orders already sent stay."""
        if self._stopped:
            return
        was_running = self.running
        self._halt_feed()
        await self._cancel_tasks()
        if was_running:
            try:
                await asyncio.wait_for(self.strategy.on_stop(self.ctx), 5.0)
            except Exception as exc:  # noqa: BLE001 - shutdown goes on; the error is logged
                logger.opt(exception=exc).error(f"STRATEGY {self.name} on_stop failed: {exc}")
            logger.info(f"STRATEGY STOPPED {self.name}: shutdown")

    def trading_state(self) -> TradingState:
        """The engine's trading state: the last RiskStatus it published since the strategy
        started, else the engine's own (e.g. halted, persisted from before a restart)."""
        if self._risk_state is not None:
            return self._risk_state
        return self.engine.trading_state

    # ---------------------------------------------------------------- internals

    def _halt_feed(self) -> None:
        if self.running:
            self.engine.control.set_strategy(self.name, False)
        self.running = False
        self._stopped = True
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

    async def _guard(self, what: str, work: Any) -> bool:
        """Await one callback; on an exception stop the strategy and say so. False = stopped."""
        try:
            await work
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a strategy bug stops the strategy, never the engine
            await self._fail(what, exc)
            return False

    async def _fail(self, what: str, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self.error = f"{what} raised {error}"
        logger.opt(exception=exc).error(f"strategy {self.name} {what} raised")
        self._halt_feed()
        self.engine.notice(NoticeLevel.ERROR, f"STRATEGY STOPPED {self.name}: {self.error}")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.strategy.on_stop(self.ctx), 5.0)
        await self._cancel_tasks()

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

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    async def _dispatch(self) -> None:
        s, ctx = self.strategy, self.ctx
        while self.running:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            _, event = self._pending.popitem(last=False)
            if isinstance(event, Candle):
                ctx.add_candle(event)
                work, what = s.on_candle(ctx, event), "on_candle"
            elif isinstance(event, MarkPrice):
                work, what = s.on_mark(ctx, event), "on_mark"
            elif isinstance(event, Fill):
                work, what = s.on_fill(ctx, event), "on_fill"
            elif isinstance(event, CloseResult):
                ctx.add_close(event)
                work, what = s.on_close(ctx, event), "on_close"
            elif isinstance(event, OrderUpdate):
                work, what = s.on_order(ctx, event), "on_order"
            else:
                work, what = s.on_tick(ctx), "on_tick"
            if not await self._guard(what, work):
                return

    async def _ticks(self, period: float) -> None:
        """A tick is one more event in the queue (at most one waiting), so callbacks stay one at
        a time and in order."""
        while self.running:
            await asyncio.sleep(period)
            self._pending[_TICK] = _TICK
            self._wake.set()
