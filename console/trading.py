"""The confirm-and-submit flows: close, partial close, close all, order entry, pause/resume, the
kill switch, TP/SL (and quit).

Why here and not in the app: these flows are the part of the console that can lose money, so they
read as one unit. Each flow builds a ``Question`` from what the console knows NOW (the panes,
overlaid with position states still waiting in the feed, since the panes do not flush under a
modal) and gives the dialog a ``recheck`` that rebuilds it when the trader answers. The facts a
question is bound to are the ones the trader decides on: the position life, side and size (for
close all: the whole set). Estimates move with every mark and are not facts. The kill switch
is the exception: it is bound to nothing but the typed word (it acts on whatever exists when it
runs), and its dialog only refreshes what it shows.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from textual.screen import Screen

from console.screens.confirm import Question, Recheck
from console.screens.kill import KillScreen
from console.screens.order import OrderEntryScreen
from console.screens.partial import PartialCloseScreen
from console.screens.tpsl import TpSlScreen
from console.screens.warm import is_prepared
from console.widgets.fmt import MONEY_PLACES, Precision, fmt_num, short_symbol
from core.events import (
    CloseAll,
    ClosePosition,
    Command,
    KillSwitch,
    PauseStrategy,
    PlaceOrder,
    PositionGone,
    ResumeTrading,
    SetTpSl,
    TradingState,
)
from core.model import PositionSnapshot
from core.service.view import ProtectionView, RestingView, capabilities_of

if TYPE_CHECKING:
    from console.feed import FeedBuffer
    from console.widgets.positions import PositionsPane
    from core.model import Instrument
    from core.service.view import EngineView


class TradingApp(Protocol):
    """What the trading flows use of the app (console/app.py ``PerpdeskApp`` is the one)."""

    engine: EngineView
    feed: FeedBuffer
    positions: PositionsPane
    open_orders: set[str]
    inflight: int  # commands sent and not answered yet

    @property
    def screen(self) -> Screen[Any]: ...
    @property
    def screen_stack(self) -> list[Screen[Any]]: ...
    @property
    def push_screen(self) -> Callable[..., Any]: ...
    @property
    def install_screen(self) -> Callable[..., Any]: ...
    @property
    def run_worker(self) -> Callable[..., Any]: ...
    def instruments(self) -> Mapping[str, Instrument]: ...
    def say(self, text: str, severity: str = "information") -> None: ...
    def confirm(self, question: Question, recheck: Recheck | None = None, *,
                on_yes: Callable[[], None] | None = None,
                screen: KillScreen | None = None) -> None: ...
    def submit(self, command: Command, what: str) -> None: ...

PosKey = tuple[str, str]
Dialog = TypeVar("Dialog", OrderEntryScreen, PartialCloseScreen, TpSlScreen, KillScreen)
# the dialogs each app keeps, one of each kind, installed under these names
KEPT: dict[type[Screen[Any]], str] = {OrderEntryScreen: "order", PartialCloseScreen: "partial",
                                      TpSlScreen: "tpsl", KillScreen: "kill"}
AT_MARK = " (at mark, before fees)"
RESTING_READ_S = 2.0  # the kill dialog re-reads the exchange's orders and algos this often
RESTING_READ_STEPS = 20


def _facts(snap: PositionSnapshot) -> tuple[str, str, Decimal]:
    return (snap.position_id, snap.side.value, snap.contracts)


class Trading:
    """The trading flows of one app (it owns the dialogs; this builds what they ask)."""

    def __init__(self, app: TradingApp) -> None:
        self.app = app
        # the kill dialog's last read of the exchange: (orders, algos), why it failed, or None
        self.resting: tuple[int, int] | str | None = None
        self._kept: dict[type[Screen[Any]], Screen[Any]] = {}

    # ------------------------------------------------------------ the kept dialogs

    def dialog(self, kind: type[Dialog]) -> Dialog:
        """The one dialog of ``kind`` this app keeps (installed by ``kept_dialogs`` and prepared
        at idle after the first paint: console/screens/warm.py), shown again on every key, its
        texts and fields replaced each time (the dialog's ``show`` / ``ask``); a new one while
        the kept one is not prepared yet (a key pressed before the preparation finished).

        Why kept: a dialog built on its key paid its composition, its first layout and render
        and its update timer's first period (1/60 s) on every press, 17-70 ms at 160x50, where
        the kept confirmation answers `c` in ~11."""
        screen = self._kept.get(kind)
        if isinstance(screen, kind) and is_prepared(screen) and screen not in self.app.screen_stack:
            return screen
        return kind()  # built as it is shown, from what it is given, as before

    def kept_dialogs(self) -> list[Screen[Any]]:
        """Every kept dialog (created and installed now if not yet), for warm_dialogs."""
        return [self._keep(OrderEntryScreen), self._keep(PartialCloseScreen),
                self._keep(TpSlScreen), self._keep(KillScreen)]

    def _keep(self, kind: type[Dialog]) -> Dialog:
        screen = self._kept.get(kind)
        if not isinstance(screen, kind):
            screen = kind()
            self.app.install_screen(screen, name=KEPT[kind])
            self._kept[kind] = screen
        return screen

    def _up(self, kind: type[Screen[Any]]) -> bool:
        """A dialog of ``kind`` is on the stack already (its key pressed again under it)."""
        return any(isinstance(screen, kind) for screen in self.app.screen_stack)

    # ------------------------------------------------------------ what the console knows now

    def current(self) -> dict[PosKey, PositionSnapshot]:
        """Open positions by (symbol, pos_side): the panes', then the newer feed states."""
        shown = dict(self.app.positions.snapshots)
        for key, state in self.app.feed.pending_positions().items():
            if isinstance(state, PositionSnapshot):
                shown[key] = state
            elif isinstance(state, PositionGone):
                old = shown.get(key)
                if old is not None and old.position_id == state.position_id:
                    del shown[key]
        return shown

    def _size(self, snap: PositionSnapshot, contracts: Decimal) -> str:
        p = Precision.of(self.app.instruments().get(snap.symbol))
        base = snap.symbol.split("/")[0]
        coins = f"{p.coin(contracts * snap.contract_size)} {base}"
        if capabilities_of(self.app.engine).contracts_are_coins:  # Bybit: the contracts are the coins
            return coins
        return f"{p.ct(contracts)} ct ({coins})"

    def _estimate(self, snap: PositionSnapshot, contracts: Decimal) -> str:
        est = self.app.engine.estimate_close_pnl(snap.symbol, snap.pos_side, contracts)
        return fmt_num(est, MONEY_PLACES, sign=True)

    def _selected(self) -> PosKey | None:
        pos = self.app.positions.selected
        if pos is None:
            self.app.say("no position selected", "warning")
            return None
        return (pos.symbol, pos.pos_side)

    def _ask(self, recheck: Recheck) -> None:
        question = recheck()
        if isinstance(question, str):
            self.app.say(question, "error")
        else:
            self.app.confirm(question, recheck)

    # ------------------------------------------------------------ c

    def close_question(self, key: PosKey) -> Question | str:
        snap = self.current().get(key)
        if snap is None:
            return f"no open {key[0]} {key[1]} position to close"
        return Question(
            "Close position?",
            (f"{short_symbol(snap.symbol)} {snap.side.value}  {self._size(snap, snap.contracts)}",
             f"estimated PnL {self._estimate(snap, snap.contracts)}{AT_MARK}"),
            "Close", ClosePosition(snap.symbol, snap.pos_side, position_id=snap.position_id),
            f"close {short_symbol(snap.symbol)}", _facts(snap))

    def close(self) -> None:
        key = self._selected()
        if key is not None:
            self._ask(lambda: self.close_question(key))

    # ------------------------------------------------------------ p

    def partial_question(self, key: PosKey, contracts: Decimal) -> Question | str:
        snap = self.current().get(key)
        if snap is None:
            return f"no open {key[0]} {key[1]} position to close"
        if contracts > snap.contracts:
            return (f"{short_symbol(snap.symbol)} changed: now {snap.side.value} "
                    f"{self._size(snap, snap.contracts)}, less than the {contracts.normalize():f} "
                    "ct to close — nothing sent")
        return Question(
            "Partial close?",
            (f"{short_symbol(snap.symbol)} {snap.side.value}  close {self._size(snap, contracts)}",
             f"remaining {self._size(snap, snap.contracts - contracts)}",
             f"estimated PnL {self._estimate(snap, contracts)}{AT_MARK}"),
            "Close", ClosePosition(snap.symbol, snap.pos_side, contracts, snap.position_id),
            f"partial close {short_symbol(snap.symbol)}", _facts(snap))

    def partial(self) -> None:
        key = self._selected()
        if key is None:
            return
        snap = self.current().get(key)
        if snap is None:
            self.app.say(f"no open {key[0]} {key[1]} position to close", "error")
            return

        def chosen(contracts: Decimal | None) -> None:
            if contracts is not None:
                self._ask(lambda: self.partial_question(key, contracts))

        if self._up(PartialCloseScreen):
            return
        dialog = self.dialog(PartialCloseScreen)
        dialog.show(snap, self.app.instruments().get(snap.symbol),
                    coins_only=capabilities_of(self.app.engine).contracts_are_coins)
        self.app.push_screen(dialog, chosen)

    # ------------------------------------------------------------ X

    def close_all_question(self) -> Question | str:
        snaps = sorted(self.current().values(), key=lambda s: (s.symbol, s.pos_side))
        if not snaps:
            return "no open positions"
        total = Decimal(0)
        lines = []
        for snap in snaps:
            total += self.app.engine.estimate_close_pnl(snap.symbol, snap.pos_side, snap.contracts)
            lines.append(f"{short_symbol(snap.symbol)} {snap.side.value}  "
                         f"{self._size(snap, snap.contracts)}  est "
                         f"{self._estimate(snap, snap.contracts)}")
        lines.append(f"estimated PnL {fmt_num(total, MONEY_PLACES, sign=True)}{AT_MARK}")
        return Question(f"Close all {len(snaps)} position(s)?", tuple(lines), "Close all",
                        CloseAll(), "close all", tuple(_facts(s) for s in snaps))

    def close_all(self) -> None:
        question = self.close_all_question()
        if isinstance(question, str):
            self.app.say(question, "warning")
        else:
            self.app.confirm(question, self.close_all_question)

    # ------------------------------------------------------------ o

    def order_entry(self) -> None:
        instruments = self.app.instruments()
        if not instruments:
            self.app.say("no instruments loaded yet", "warning")
            return
        selected = self.app.positions.selected

        def chosen(order: PlaceOrder | None) -> None:
            if order is not None:
                self.app.confirm(Question("Place order?", self.order_lines(order), "Place", order,
                                          f"{order.side.value} {short_symbol(order.symbol)}"))

        if self._up(OrderEntryScreen):
            return
        dialog = self.dialog(OrderEntryScreen)
        dialog.show(dict(instruments), selected.symbol if selected else None,
                    coins_only=capabilities_of(self.app.engine).contracts_are_coins)
        self.app.push_screen(dialog, chosen)

    def _mark(self, symbol: str) -> Decimal | None:
        """Latest mark of ``symbol``: the engine's, else a shown position's."""
        got = self.app.engine.mark(symbol)
        if got is not None:
            return got
        for snap in self.app.positions.snapshots.values():
            if snap.symbol == symbol:
                return snap.mark_price
        return None

    def order_lines(self, order: PlaceOrder) -> tuple[str, ...]:
        """Size, side and estimated notional of an order, for its confirmation."""
        inst = self.app.instruments().get(order.symbol)
        p = Precision.of(inst)
        coins = order.contracts * (inst.contract_size if inst is not None else Decimal(1))
        base = order.symbol.split("/")[0]
        kind = (order.order_type if order.price is None else
                f"{order.order_type} @ {p.px(order.price)}")
        price = order.price if order.price is not None else self._mark(order.symbol)
        at = "limit price" if order.price is not None else "mark"
        ccy = inst.settle_ccy if inst is not None else "USDT"
        notional = ("unknown (no mark price yet)" if price is None else
                    f"{fmt_num(coins * price, MONEY_PLACES)} {ccy} (at {at})")
        size = (f"{p.coin(coins)} {base}" if capabilities_of(self.app.engine).contracts_are_coins
                else f"{p.ct(order.contracts)} ct ({p.coin(coins)} {base})")
        return (f"{order.side.value.upper()} {short_symbol(order.symbol)}  {size}",
                f"{kind}{'  reduce-only' if order.reduce_only else ''}",
                f"estimated notional {notional}")

    # ------------------------------------------------------------ s

    def pause_resume(self) -> None:
        """running -> paused and paused -> running at once (a pause only blocks entries, and
        undoing it is one more `s`); halted -> running only through a confirmation, since a halt
        came from a breached limit or the kill switch."""
        state = self.app.engine.trading_state
        if state is TradingState.RUNNING:
            self.app.submit(PauseStrategy(), "pause")
        elif state is TradingState.PAUSED:
            self.app.submit(ResumeTrading(), "resume")
        else:
            self._ask(self.resume_question)

    def resume_question(self) -> Question | str:
        state = self.app.engine.trading_state
        if state is not TradingState.HALTED:
            return f"trading is {state.value} now, no longer halted — nothing sent"
        status = self.app.engine.risk_status()
        last = status.last_event if status is not None and status.last_event else ""
        return Question(
            "Resume trading after a halt?",
            ((f"halted: {last}",) if last else ("trading is halted",)) + (
                "Resuming lets the strategy and manual entries open positions again;",
                "every [risk] limit still applies."),
            "Resume", ResumeTrading(), "resume", facts=state)

    # ------------------------------------------------------------ K

    def kill_question(self) -> Question:
        snaps = sorted(self.current().values(), key=lambda s: (s.symbol, s.pos_side))
        lines = ["Stops the strategy, cancels all orders (TP/SL, triggers), closes all",
                 "positions at market (whatever exists then), then HALTS trading",
                 "until you resume it (s, confirmed)."]
        lines += [f"close {short_symbol(s.symbol)} {s.side.value}  {self._size(s, s.contracts)}  "
                  f"est {self._estimate(s, s.contracts)}" for s in snaps] or ["no open positions"]
        lines.append(self._resting_line(snaps))
        return Question("KILL SWITCH", tuple(lines), "Kill", KillSwitch(), "kill switch")

    def _resting_line(self, snaps: list[PositionSnapshot]) -> str:
        """What the kill will cancel: the exchange's own count of open orders and algos (TP/SL,
        triggers, another app's too) once read, else what the console knows."""
        if isinstance(self.resting, tuple):
            orders, algos = self.resting
            return f"on the exchange: {orders} open order(s), {algos} TP/SL or trigger order(s)"
        tp_sl = sum(1 for s in snaps if any(x is not None for x in self._protection(s)))
        known = (f"{len(self.app.open_orders)} open order(s), {tp_sl} position(s) with a TP/SL known "
                 "to the console")
        if not isinstance(self.app.engine, RestingView):
            return known
        return known + (" (reading the exchange…)" if self.resting is None
                        else f" (the exchange could not be read: {self.resting})")

    def kill(self) -> None:
        """The typed word sends it whatever changed under the dialog (the list only refreshes)."""
        if isinstance(self.app.screen, KillScreen):
            return
        self.resting = None
        self.app.confirm(self.kill_question(), self.kill_question, screen=self.dialog(KillScreen))
        if isinstance(self.app.engine, RestingView):
            self.app.run_worker(self._read_resting(self.app.engine), name="kill switch read",
                                group="kill-read", exit_on_error=False)

    async def _read_resting(self, engine: RestingView) -> None:
        """Count the exchange's open orders and algos while the kill dialog is up."""
        while isinstance(self.app.screen, KillScreen):
            try:
                self.resting = await engine.resting()
            except Exception as exc:  # noqa: BLE001 - shown in the dialog; the kill still works
                self.resting = str(exc) or type(exc).__name__
            screen = self.app.screen
            if not isinstance(screen, KillScreen):
                return
            screen.show_now()
            for _ in range(RESTING_READ_STEPS):  # ends soon after the dialog closes
                await asyncio.sleep(RESTING_READ_S / RESTING_READ_STEPS)
                if not isinstance(self.app.screen, KillScreen):
                    return

    # ------------------------------------------------------------ T

    def tp_sl_question(self, key: PosKey, cmd: SetTpSl) -> Question | str:
        snap = self.current().get(key)
        if snap is None:
            return f"no open {key[0]} {key[1]} position to protect"
        if snap.position_id != cmd.position_id:
            return (f"{short_symbol(snap.symbol)} is another position now (closed and reopened "
                    "since the TP/SL dialog opened) — nothing sent")
        p = Precision.of(self.app.instruments().get(snap.symbol))
        was_tp, was_sl = self._protection(snap)
        lines = [f"{short_symbol(snap.symbol)} {snap.side.value}  "
                 f"{self._size(snap, snap.contracts)}  entry {p.px(snap.entry_price)}"]
        for name, new, was in (("take profit", cmd.take_profit, was_tp),
                               ("stop loss", cmd.stop_loss, was_sl)):
            if new is None:
                lines.append(f"{name:<11}  unchanged ({p.px(was)})")
                continue
            pnl = (new - snap.entry_price) * snap.coins * snap.side.sign
            even = "  break-even" if new == snap.entry_price or pnl == 0 else ""
            lines.append(f"{name:<11}  {p.px(new)} (was {p.px(was)})  "
                         f"est PnL {fmt_num(pnl, MONEY_PLACES, sign=True)}{even}")
        lines.append("estimated at the trigger, for the whole position, before fees")
        command = SetTpSl(snap.symbol, snap.pos_side, cmd.take_profit, cmd.stop_loss,
                          snap.position_id)
        return Question("Set TP/SL?", tuple(lines), "Set", command,
                        f"TP/SL {short_symbol(snap.symbol)}", _facts(snap))

    def _protection(self, snap: PositionSnapshot) -> tuple[Decimal | None, Decimal | None]:
        engine = self.app.engine
        if isinstance(engine, ProtectionView):
            return engine.tp_sl(snap.symbol, snap.pos_side)
        return None, None

    def tp_sl(self) -> None:
        key = self._selected()
        if key is None:
            return
        snap = self.current().get(key)
        if snap is None:
            self.app.say(f"no open {key[0]} {key[1]} position to protect", "error")
            return

        def chosen(cmd: SetTpSl | None) -> None:
            if cmd is not None:
                self._ask(lambda: self.tp_sl_question(key, cmd))

        if self._up(TpSlScreen):
            return
        dialog = self.dialog(TpSlScreen)
        dialog.show(snap, self.app.instruments().get(snap.symbol), self._protection(snap))
        self.app.push_screen(dialog, chosen)

    # ------------------------------------------------------------ q

    def quit(self, leave: Callable[[], None]) -> None:
        app = self.app
        busy = app.inflight + len(app.open_orders)
        if not busy:
            leave()
            return
        app.confirm(Question(
            "Quit with orders in flight?",
            (f"{app.inflight} command(s) awaiting the exchange, "
             f"{len(app.open_orders)} open order(s).",
             "Open orders stay on the exchange after perpdesk exits."), "Quit"),
            on_yes=leave)
