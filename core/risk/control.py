"""Trading control: the running / paused / halted state, halts on loss, the kill switch, TP/SL moves.

Data flow: the engine publishes closes and fills; this control subscribes like any viewer, adds
each close once to today's realized net (``DayPnl``), and a monitor evaluates today's net
(realized + open lives at mark) right after each fill or close, before each entry, when the open
lives' PnL has moved ``MOVE_SHARE`` of the room left to the nearest loss limit since the last pass,
and on a timer every ``MONITOR_S`` (the status line's figures, funding). Not on every mark push:
a push only adds its life's PnL move to a running total (no limit set: not even that). A breach of
``daily_loss_limit`` or ``max_drawdown`` halts at once: the state turns halted (persisted beside the
journal, so a restart stays halted), resting entry orders are canceled and, with
``flatten_on_halt``, every position is closed by reduce-only market orders.

Every risk event is journaled (risk family), published (RiskEvent), logged with a greppable
marker (RISK REFUSED via the notice, RISK HALT, KILL SWITCH) and remembered as the status line's
last event; RiskStatus is published on change, at most ``STATUS_HZ`` times a second.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loguru import logger

from core.engine.ports import Subscriber
from core.events import (
    CommandResult,
    LinkState,
    MarkPrice,
    NoticeLevel,
    RiskEvent,
    RiskEventKind,
    RiskStatus,
    SetTpSl,
    StreamStatus,
    TradingState,
)
from core.journal.history import read_day_async
from core.model import CloseResult, Fill, Origin, PositionSnapshot, iso
from core.money import ZERO, plain
from core.risk.day import DayPnl
from core.risk.limits import Refusal, RiskGuard, usdt
from core.risk.statefile import SavedState, load_state, save_state
from core.risk.sweep import cancel_entries, close_all, leftovers, sweep
from core.settings.config import RiskSettings
from core.support.safefile import UnsafeFileError
from core.venue.base import VenueError
from core.venue.pass_end import at_pass_end

if TYPE_CHECKING:
    from core.engine.book import Book
    from core.engine.context import EngineContext

MONITOR_S = 1.0  # the timer pass: today's net on the status line, funding, a life no event told of
# A pass runs as soon as the open lives' PnL has moved (summed |move| per life, a bound of today's
# net's move) this share of the room left to the nearest of the loss and drawdown limits: the net
# cannot cross a limit between two passes, and the day's peak is missed by this share of the
# room at most. Under 1 so a breach is evaluated before it happens, not after.
MOVE_SHARE = Decimal("0.1")
STATUS_HZ = 4.0  # RiskStatus publications per second at most
VERIFY_DELAY_S = 0.3  # kill switch: let market closes fill before re-reading the exchange
KILL_ROUNDS = 5  # kill switch: sweeps (each followed by a re-read) before saying what is left
STRATEGY_STOP_WAIT_S = 1.0  # kill switch: the strategy's stop is waited for this long at most
SENDING_WAIT_S = 5.0  # kill switch: entries already on their way get this long to be answered
HALT_RULES = ("daily_loss_limit", "max_drawdown")


class TradingControl:
    """The engine's trading state and risk guard (``engine.control``)."""

    def __init__(self, ctx: EngineContext, book: Book, settings: RiskSettings,
                 subscribe: Callable[[Subscriber], object]) -> None:
        self._ctx = ctx
        self._book = book
        self.settings = settings
        self.state = TradingState.RUNNING
        self.strategy = "none"
        self.strategy_running = False
        self.guard = RiskGuard(settings, ctx, book, lambda: self.state, self._refused)
        self.guard.before = self._before_entry
        self.day = DayPnl(settings.day_start)
        self.day.roll(self._ctx.clock())
        self.today_net = ZERO
        self.exposure = ZERO
        self.last_event = ""
        self._status: RiskStatus | None = None
        self._status_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._work: set[asyncio.Task[None]] = set()
        self._soon = False
        self._last_ts: datetime | None = None
        self._kill_lock = asyncio.Lock()
        self._strategy_stop: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._resync_mark: float | None = None  # when the resync under way began (in-flight clock)
        self._valued: dict[tuple[str, str], Decimal] = {}  # each life's unrealized PnL, as last seen
        self._moved = ZERO  # summed |PnL move| of the lives since the last pass
        self._trigger: Decimal | None = None  # the move that calls a pass now (None: no loss limit)
        subscribe(self._on_event)

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Load the persisted state, seed today's closes from the journal, start the monitor."""
        saved = load_state(self._ctx.journal.directory)
        if saved.state is not TradingState.RUNNING:
            self.state = saved.state
            self.guard.halt_reason = saved.rule if saved.state is TradingState.HALTED else ""
            why = f"{saved.rule}: {saved.message}" if saved.message else saved.rule
            self.last_event = f"{saved.state.value} since {saved.since or 'before this start'} ({why})"
            marker = "RISK HALT" if saved.state is TradingState.HALTED else "RISK PAUSE"
            logger.warning(f"{marker} still in force from a previous run: {why}")
            self._ctx.notice(NoticeLevel.WARNING, f"trading is {saved.state.value} ({why}); entries are "
                                                 "refused until you resume")
        await self._seed()
        self.evaluate()
        self._task = asyncio.create_task(self._monitor(), name="risk-monitor")

    async def stop(self) -> None:
        for task in [self._task, *self._work]:
            if task is not None:
                task.cancel()
        for task in [self._task, *self._work]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = None

    async def _seed(self) -> None:
        since = self.day.since
        if since is None:
            return
        days = {since.date(), self._ctx.clock().date()}
        for day in sorted(days):
            try:
                history = await read_day_async(self._ctx.journal.directory, day)
            except Exception as exc:  # noqa: BLE001 - the live closes still count; say so
                logger.warning(f"risk: today's closes could not be read from the journal: {exc}")
                continue
            for jc in history.closes:
                self.day.add_close(jc.close_id or jc.close.close_key, jc.close)

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(MONITOR_S)
            try:
                self.evaluate()
            except Exception:  # noqa: BLE001 - the monitor must outlive one bad evaluation
                logger.exception("risk monitor evaluation failed")

    def _on_event(self, event: object) -> None:
        kind = type(event)
        if kind is PositionSnapshot:  # a life revalued (a mark moved): most of the events
            self._on_revalued(event)  # type: ignore[arg-type]
            return
        if kind is MarkPrice:  # the life's revaluation (above) is what counts, not the tick
            return
        self.guard.flight.on_event(event)  # a fill or a done order leaves the orders in flight
        if isinstance(event, StreamStatus) and event.stream == "sync":
            self._after_resync(event.state)
        elif isinstance(event, CloseResult):
            self.day.add_close(event.close_key, event)
            self._evaluate_soon()
        elif isinstance(event, Fill):
            self._evaluate_soon()

    def _on_revalued(self, snap: PositionSnapshot) -> None:
        """Add the life's PnL move to the running total; a pass is due once it reaches the
        trigger (or for a life the last pass did not value: opened or found since)."""
        trigger = self._trigger
        if trigger is None:
            return  # no loss limit, or halted: the timer's pass is enough
        key = (snap.symbol, snap.pos_side)
        last = self._valued.get(key)
        pnl = snap.unrealized_pnl
        self._valued[key] = pnl
        if last is None:
            self._evaluate_soon()
            return
        self._moved += abs(pnl - last)
        if self._moved >= trigger:
            self._evaluate_soon()

    def _after_resync(self, state: LinkState) -> None:
        """A resync began (RESYNCING) or ended (CONNECTED): orders in flight whose updates were
        lost with the stream (canceled meanwhile) stop counting once the exchange shows them gone."""
        if state is LinkState.RESYNCING:
            self._resync_mark = self.guard.flight.now()
            return
        if state is not LinkState.CONNECTED or self._resync_mark is None or self._task is None:
            return
        mark, self._resync_mark = self._resync_mark, None
        task = asyncio.get_running_loop().create_task(self._prune_in_flight(mark), name="risk-in-flight")
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _prune_in_flight(self, placed_before: float) -> None:
        try:
            open_ids = {o.order_id for o in await self._ctx.venue.fetch_open_orders()}
        except Exception as exc:  # noqa: BLE001 - counted as in flight until the next resync
            logger.warning(f"risk: open orders not read after the resync ({exc}); orders in flight kept")
            return
        gone = self.guard.flight.prune(open_ids, placed_before)
        if gone:
            logger.info(f"risk: {gone} order(s) in flight found done at the exchange after the resync")

    def _evaluate_soon(self) -> None:
        if self._soon or self._task is None:
            return
        self._soon = True
        at_pass_end(self._evaluate_now)  # after the pass's revaluations, in the same handle

    def _evaluate_now(self) -> None:
        self._soon = False
        try:
            self.evaluate()
        except Exception:  # noqa: BLE001
            logger.exception("risk evaluation failed")

    # ================================================================ evaluation

    def open_net(self) -> tuple[Decimal, Decimal]:
        """(the open lives' part of today's net, total notional at mark); notes each life's
        unrealized PnL, from which the pushes' moves are counted until the next pass."""
        book = self._book
        net = ZERO
        exposure = ZERO
        valued: dict[tuple[str, str], Decimal] = {}
        for pos in self._ctx.ledger.positions():
            mark = book.mark_for(pos.symbol, pos)
            pnl = pos.unrealized(mark)
            valued[(pos.symbol, pos.pos_side)] = pnl
            net += pnl + pos.funding_pending - pos.fee_pending
            exposure += pos.coins * mark
        self._valued = valued
        self._moved = ZERO
        return net, exposure

    def _room(self, net: Decimal) -> Decimal | None:
        """USDT today's net can still lose before the nearest loss / drawdown limit (None: no
        limit applies: none set, halted already, or a viewer that never acts)."""
        s = self.settings
        if self.state is TradingState.HALTED or self._ctx.read_only:
            return None
        room: Decimal | None = None
        if s.daily_loss_limit is not None:
            room = s.daily_loss_limit + net
        if s.max_drawdown is not None:
            dd_room = s.max_drawdown - (self.day.peak - net)
            room = dd_room if room is None else min(room, dd_room)
        return max(room, ZERO) if room is not None else None

    def evaluate(self) -> None:
        """Today's net against the loss and drawdown limits; publish the status when it moved."""
        if self.day.roll(self._ctx.clock()):
            logger.info(f"RISK DAY new risk day from {iso(self.day.since) if self.day.since else '?'}")
        open_part, self.exposure = self.open_net()
        net = self.day.total(open_part)
        self.today_net = net
        s = self.settings
        if self.state is not TradingState.HALTED and not self._ctx.read_only:  # a viewer never acts
            if s.daily_loss_limit is not None and -net >= s.daily_loss_limit:
                self.halt("daily_loss_limit", -net, s.daily_loss_limit,
                          f"today's net {usdt(net)} USDT reached the daily loss limit "
                          f"{usdt(s.daily_loss_limit)} USDT")
            elif s.max_drawdown is not None and self.day.peak - net >= s.max_drawdown:
                drawdown = self.day.peak - net
                self.halt("max_drawdown", drawdown, s.max_drawdown,
                          f"down {usdt(drawdown)} USDT from today's peak {usdt(self.day.peak)} USDT "
                          f">= max drawdown {usdt(s.max_drawdown)} USDT")
        room = self._room(net)
        self._trigger = room * MOVE_SHARE if room is not None else None
        self.publish_status()

    def _before_entry(self) -> None:
        """An entry is about to be checked: a loss or drawdown breach (a mark moved since the
        monitor's last pass) halts now, before the entry can leave."""
        s = self.settings
        if (self._task is not None and self.state is not TradingState.HALTED
                and (s.daily_loss_limit is not None or s.max_drawdown is not None)):
            self.evaluate()

    def breach(self) -> Refusal | None:
        """The loss or drawdown limit breached right now, if any (resume is refused while so)."""
        s = self.settings
        net = self.today_net
        if s.daily_loss_limit is not None and -net >= s.daily_loss_limit:
            return Refusal("daily_loss_limit", -net, s.daily_loss_limit,
                           f"today's net {usdt(net)} USDT is still past the daily loss limit "
                           f"{usdt(s.daily_loss_limit)} USDT")
        if s.max_drawdown is not None and self.day.peak - net >= s.max_drawdown:
            return Refusal("max_drawdown", self.day.peak - net, s.max_drawdown,
                           f"the drawdown {usdt(self.day.peak - net)} USDT is still past max drawdown "
                           f"{usdt(s.max_drawdown)} USDT")
        return None

    def status(self) -> RiskStatus:
        return RiskStatus(self.state, self.strategy, self.strategy_running, self.today_net,
                          self.settings.daily_loss_limit, self.exposure, self.settings.max_total_notional,
                          self.last_event)

    def publish_status(self, force: bool = False) -> None:
        status = self.status()
        if status == self._status:
            return
        loop_now = time.monotonic()
        if not force and loop_now - self._status_at < 1.0 / STATUS_HZ:
            return  # the next evaluation publishes it
        self._status, self._status_at = status, loop_now
        self._ctx.publish(status)

    def set_strategy(self, name: str, running: bool) -> None:
        """The strategy host tells the status line what runs."""
        self.strategy, self.strategy_running = name, running
        self.publish_status(force=True)

    # ================================================================ events

    def _event(self, kind: RiskEventKind, rule: str, value: Decimal | None, limit: Decimal | None,
               message: str) -> RiskEvent:
        stamp = self._ctx.clock()
        ts = stamp.replace(microsecond=stamp.microsecond // 1000 * 1000)
        if self._last_ts is not None and ts <= self._last_ts:
            ts = self._last_ts + timedelta(milliseconds=1)  # one journal key (ms time) per event
        self._last_ts = ts
        event = RiskEvent(ts, kind, rule, value, limit, self.state, message)
        try:
            self._ctx.journal.record_risk(event)
        except Exception as exc:  # noqa: BLE001 - the journal reports its own errors
            logger.error(f"journal refused a risk event: {exc}")
        self.last_event = f"{kind.value} {rule}: {message}"
        self._ctx.publish(event)
        return event

    def _refused(self, refusal: Refusal, origin: Origin) -> None:
        # the engine's notice logs the one RISK REFUSED line; this journals and publishes it
        self._event(RiskEventKind.REFUSED, refusal.rule, refusal.value, refusal.limit,
                    f"{refusal.message} (from the {origin.value})")
        self.publish_status(force=True)

    def _set_state(self, state: TradingState, rule: str, message: str) -> None:
        self.state = state
        self.guard.halt_reason = rule if state is TradingState.HALTED else ""
        try:
            save_state(self._ctx.journal.directory,
                       SavedState(state, iso(self._ctx.clock()), rule, message))
        except (OSError, UnsafeFileError) as exc:
            self._ctx.notice(NoticeLevel.ERROR, f"the trading state could not be saved ({exc}); "
                                               f"it holds until this run ends")

    # ================================================================ halt

    def halt(self, rule: str, value: Decimal | None, limit: Decimal | None, message: str) -> None:
        """Halt now (synchronously: nothing new leaves after this returns), then clean up."""
        if self.state is TradingState.HALTED:
            return
        self._set_state(TradingState.HALTED, rule, message)
        self._event(RiskEventKind.HALT, rule, value, limit, message)
        flatten = self.settings.flatten_on_halt
        logger.error(f"RISK HALT {rule}: {message}; resting entry orders canceled"
                     + ("; flattening every position" if flatten else ""))
        self._ctx.notice(NoticeLevel.ERROR, f"trading halted by {rule}: {message} — entries refused"
                                           + (", positions being closed" if flatten else "")
                                           + "; resume only after confirming")
        self.publish_status(force=True)
        task = asyncio.get_running_loop().create_task(self._after_halt(rule, flatten), name="risk-halt")
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _after_halt(self, rule: str, flatten: bool) -> None:
        try:
            canceled = await cancel_entries(self._ctx.venue)
            if flatten:
                closed = await close_all(self._ctx.venue)
                self._event(RiskEventKind.FLATTEN, rule, Decimal(len(closed)), None,
                            f"flatten on halt: {len(closed)} position(s) closed"
                            + (f" ({', '.join(closed)})" if closed else "")
                            + f"; {canceled} entry order(s) canceled")
                logger.error(f"RISK HALT flatten: closed {', '.join(closed) or 'nothing'}")
            self.publish_status(force=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - told to the trader; the halt itself stands
            logger.exception("RISK HALT clean-up failed")
            self._ctx.notice(NoticeLevel.ERROR, f"RISK HALT: canceling orders / closing positions failed "
                                               f"({exc}) — check the exchange, or press the kill switch")

    # ================================================================ commands

    def pause(self) -> CommandResult:
        if self.state is TradingState.HALTED:
            return self._ctx.refuse("trading is halted; resume it (with confirmation) before pausing")
        if self.state is TradingState.PAUSED:
            return CommandResult(True, "trading is already paused")
        message = "paused: entries refused, closes and reduce-only orders still go"
        self._set_state(TradingState.PAUSED, "manual", message)  # kept across a restart, like halted
        self._event(RiskEventKind.PAUSE, "manual", None, None, message)
        logger.info(f"RISK PAUSE {message}")
        self.publish_status(force=True)
        return CommandResult(True, f"trading {message}")

    def resume(self) -> CommandResult:
        if self.state is TradingState.RUNNING:
            return CommandResult(True, "trading is already running")
        self.evaluate()
        breach = self.breach()
        if breach is not None:
            return self._ctx.refuse(f"cannot resume: {breach.message} — entries stay refused until the next "
                                   f"risk day ({self.settings.day_start:%H:%M} UTC) or a higher limit")
        was = self.state
        self._set_state(TradingState.RUNNING, "manual", f"resumed from {was.value}")
        self.evaluate()  # the marks' trigger again (none is kept while halted)
        message = f"resumed from {was.value}: entries allowed again"
        self._event(RiskEventKind.RESUME, "manual", None, None, message)
        logger.warning(f"RISK RESUME {message}")
        self.publish_status(force=True)
        return CommandResult(True, f"trading {message}")

    def on_kill(self, stop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """The strategy host registers how to stop its strategy: the kill switch does it first."""
        self._strategy_stop = stop

    async def kill(self) -> CommandResult:
        """Stop the strategy, then cancel every order and algo and close every position that
        exists at that moment; re-read the exchange and sweep again until it is flat.

        Bound to nothing but the trader's word: it never compares with what a dialog showed.
        Halted first, before any await, so no entry (strategy or console) leaves after this
        call starts; entries already on their way are waited for (bounded) and swept too."""
        was = "kill switch pressed" + (" (while halted)" if self.state is TradingState.HALTED else "")
        self._set_state(TradingState.HALTED, "kill_switch", was)
        async with self._kill_lock:
            message = "kill switch: canceling every order and algo, closing every position"
            logger.error(f"KILL SWITCH pressed: {message}")
            self._event(RiskEventKind.KILL, "kill_switch", None, None, message)
            self.publish_status(force=True)
            await self._stop_strategy()
            await self._wait_sending()
            left: list[str] = []
            for attempt in range(KILL_ROUNDS):
                try:
                    await sweep(self._ctx.venue)
                except VenueError as exc:
                    logger.error(f"KILL SWITCH sweep {attempt + 1} failed: {exc}")
                await asyncio.sleep(VERIFY_DELAY_S)
                try:
                    left = await leftovers(self._ctx.venue)
                except VenueError as exc:
                    left = [f"unknown ({exc})"]
                if not left:
                    break
                logger.error(f"KILL SWITCH sweep {attempt + 1} left {', '.join(left)}; sweeping again"
                             if attempt + 1 < KILL_ROUNDS else f"KILL SWITCH still left: {', '.join(left)}")
            if left:
                text = (f"KILL SWITCH: halted, but the exchange still shows {', '.join(left)} — "
                        "check it on the exchange now")
                self._event(RiskEventKind.KILL, "kill_switch", Decimal(len(left)), None, text)
                return self._ctx.refuse(text)
            text = "KILL SWITCH: halted; the exchange is flat with no open orders or algos"
            self._event(RiskEventKind.KILL, "kill_switch_verified", ZERO, None, text)
            self.publish_status(force=True)
            self._ctx.notice(NoticeLevel.WARNING, text)
            return CommandResult(True, text)

    async def _stop_strategy(self) -> None:
        """Stop the running strategy (it stays stopped until perpdesk restarts). Its own
        ``on_stop`` is not waited for beyond ``STRATEGY_STOP_WAIT_S``: being halted, nothing it
        sends can open a position, and the sweep must not wait on a slow strategy."""
        stop = self._strategy_stop
        if stop is None or not self.strategy_running:
            return
        name = self.strategy
        task = asyncio.get_running_loop().create_task(stop(), name="kill-strategy-stop")
        self._work.add(task)
        task.add_done_callback(self._work.discard)
        await asyncio.wait({task}, timeout=STRATEGY_STOP_WAIT_S)
        logger.error(f"KILL SWITCH strategy {name} stopped; restart perpdesk to run it again")
        self.set_strategy(name, False)

    async def _wait_sending(self) -> None:
        """Let entries whose request left before the halt get their answer, so the sweep sees them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SENDING_WAIT_S
        while self.guard.flight.sending and loop.time() < deadline:
            await asyncio.sleep(0.02)

    async def _refresh_protection(self, symbol: str, pos_side: str) -> None:
        """Re-read the position so ``Engine.tp_sl`` shows the triggers just set (an algo change
        moves no position, so no position push tells the engine)."""
        try:
            positions = await self._ctx.venue.fetch_positions()
        except Exception as exc:  # noqa: BLE001 - the TP/SL is set; only the display lags
            logger.warning(f"TPSL position re-read failed: {exc}")
            return
        for push in positions:
            if push.symbol == symbol and push.pos_side == pos_side:
                self._book.pushes[(push.symbol, push.pos_side)] = push

    async def set_tp_sl(self, cmd: SetTpSl) -> CommandResult:
        if cmd.take_profit is None and cmd.stop_loss is None:
            return self._ctx.refuse("set TP/SL: give a take profit, a stop loss or both")
        pos = self._ctx.ledger.position(cmd.symbol, cmd.pos_side)
        if cmd.position_id is not None and (pos is None or pos.position_id != cmd.position_id):
            return self._ctx.refuse(f"set TP/SL refused: the {cmd.symbol} {cmd.pos_side} position you "
                                   "selected has closed or changed since — look again")
        algo_id = await self._ctx.venue.set_position_tp_sl(cmd.symbol, cmd.pos_side, cmd.take_profit,
                                                         cmd.stop_loss)
        legs = " ".join(x for x in (f"tp {plain(cmd.take_profit)}" if cmd.take_profit is not None else "",
                                    f"sl {plain(cmd.stop_loss)}" if cmd.stop_loss is not None else "") if x)
        logger.info(f"TPSL SET {cmd.symbol} {cmd.pos_side} {legs} algo {algo_id}")
        await self._refresh_protection(cmd.symbol, cmd.pos_side)
        return CommandResult(True, f"{cmd.symbol} {cmd.pos_side}: {legs} set (algo {algo_id})", (algo_id,))

