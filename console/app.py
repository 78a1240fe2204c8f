"""PerpdeskApp: the Textual console. It watches the engine and sends it commands, nothing more.

Why it is shaped this way (issue 5):
- The engine and the UI share ONE asyncio loop, so the UI must never hog it. Engine events land in
  a FeedBuffer (console/feed.py) through a cheap sync callback; a timer at ``[ui] refresh_hz``
  drains it and touches only the rows that changed. No flush work runs while a modal covers the
  panes.
- Every key is a Binding with an id, so ``[keymap]`` in config.toml can rebind it; read-only mode
  hides and disables the trading keys (check_action), and the engine refuses them as well.
- Each trading action ends in a ConfirmScreen showing the size and the engine's PnL estimate
  (order entry: size, side and estimated notional).
- A restart must not zero the header: today's journal (read by the engine, in a worker, after the
  first paint) seeds the day totals and the closes/fills/funding panes, de-duplicated against what
  arrived live meanwhile (FeedBuffer.seed). Older rows are paged in by the history screen (`h`).
"""
from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.theme import Theme
from textual.widgets import Footer

from console.feed import OPEN_STATES, FeedBuffer
from console.screens.confirm import ConfirmScreen
from console.screens.help import HelpScreen
from console.screens.history import HistoryScreen
from console.screens.order import OrderEntryScreen
from console.screens.partial import PartialCloseScreen
from console.screens.reconcile import ReconcileScreen
from console.widgets.closes import ClosesPane
from console.widgets.fills import FillsPane
from console.widgets.filterbar import FilterBar
from console.widgets.fmt import MONEY_PLACES, Precision, fmt_num, short_symbol
from console.widgets.funding import FundingPane
from console.widgets.header import HeaderBar, HeaderState, link_summary
from console.widgets.pnlchart import PnlChart
from console.widgets.positions import PositionsPane
from console.widgets.table import LinePane
from core.events import (
    AccountSnapshot,
    CloseAll,
    ClosePosition,
    Command,
    NoticeLevel,
    PlaceOrder,
    PositionGone,
    StreamStatus,
)
from core.heap import freeze_startup_heap
from core.model import OrderUpdate, PositionSnapshot
from themes import CSS_PATH, DEFAULT_THEME, PNL_DEFAULTS, next_theme, register_themes

TRADING_ACTIONS = frozenset({"close_position", "partial_close", "close_all", "order_entry"})
_SEVERITY = {NoticeLevel.INFO: "information", NoticeLevel.WARNING: "warning",
             NoticeLevel.ERROR: "error"}
EXIT_FAIL = 2
DEDUPE_S = 5.0


APPEND_INTERVAL_S = 0.5  # fills / closes / funding panes repaint at most this often under a stream

def _utc_now() -> datetime:
    return datetime.now(UTC)


class PerpdeskApp(App[int]):
    TITLE = "perpdesk"
    CSS_PATH = CSS_PATH
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "close_position", "Close", id="close"),
        Binding("p", "partial_close", "Partial", id="partial_close"),
        Binding("X", "close_all", "Close all", id="close_all"),
        Binding("o", "order_entry", "Order", id="order_entry"),
        Binding("r", "reconcile", "Reconcile", id="reconcile"),
        Binding("h", "history", "History", id="history", show=False),
        Binding("slash", "filter", "Filter", id="filter", show=False),
        Binding("t", "cycle_theme", "Theme", id="theme", show=False),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "request_quit", "Quit", id="quit"),
    ]

    def __init__(self, engine: Any, settings: Any = None, *, read_only: bool = False,
                 clock: Callable[[], datetime] = _utc_now, freeze_heap: bool = False) -> None:
        super().__init__()
        self.engine = engine
        self.freeze_heap = freeze_heap  # the process's own console (core/heap.py), not tests
        self.settings = settings
        ui = getattr(settings, "ui", None)
        self.read_only = bool(read_only or getattr(ui, "read_only", False)
                              or getattr(engine, "read_only", False))
        self.refresh_hz = float(getattr(ui, "refresh_hz", 15.0) or 15.0)
        self.clock = clock
        self.feed = FeedBuffer()
        self.inflight = 0  # commands sent and not answered yet
        self.open_orders: set[str] = set()
        self._statuses: dict[str, StreamStatus] = {}
        self._account: AccountSnapshot | None = None
        self._recent: dict[str, float] = {}  # message -> when shown (monotonic), for dedupe
        self._unsubscribe: Callable[[], None] | None = None
        self._chart_day: date | None = None  # the chart shows one UTC day's PnL
        self._confirm_screen: ConfirmScreen | None = None  # installed on first use, then reused
        self._appends: dict[LinePane, list[Any]] = {}  # rows waiting for their pane (see below)
        self._appended_at: dict[LinePane, float] = {}
        register_themes(self)
        wanted = getattr(ui, "theme", DEFAULT_THEME)
        self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME
        keymap = getattr(settings, "keymap", None)
        if keymap:
            self.set_keymap(dict(keymap))

    # ================================================================ layout

    def compose(self) -> ComposeResult:
        # kept as attributes: the flush timer must not depend on a DOM query (it may fire while
        # the app is shutting down and the widgets are already gone)
        instruments = self._instruments
        self.header = HeaderBar(id="header")
        self.pnl_chart = PnlChart(id="pnl-chart")
        self.positions = PositionsPane(instruments, id="positions")
        self.closes = ClosesPane(instruments, id="closes")
        self.fills = FillsPane(instruments, id="fills")
        self.funding = FundingPane(instruments, id="funding")
        with Horizontal(id="top"):
            yield self.header
            yield self.pnl_chart
        with Vertical(id="panes"):
            yield self.positions
            yield self.closes
            with Horizontal(id="lower"):
                yield self.fills
                yield self.funding
        yield FilterBar()
        yield Footer(compact=True)

    def _instruments(self) -> dict[str, Any]:
        return getattr(self.engine, "instruments", {}) or {}

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """$pnl-up / $pnl-down for Textual's own themes picked from the palette."""
        return {**super().get_theme_variable_defaults(), **PNL_DEFAULTS}

    def on_mount(self) -> None:
        titles = {"positions": "Positions", "closes": "Closes", "fills": "Fills",
                  "funding": "Funding"}
        for pane_id, title in titles.items():
            self.query_one(f"#{pane_id}", LinePane).border_title = title
        self.query_one(FilterBar).display = False
        self._seed()
        self._unsubscribe = self.engine.subscribe(self.feed.push)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._timer = self.set_interval(1 / self.refresh_hz, self.flush_now, name="feed-flush")
        self.positions.focus()
        self.flush_now()
        self.run_worker(self._load_today(), group="history", exit_on_error=False)
        if self.freeze_heap:
            self.call_after_refresh(freeze_startup_heap)

    def on_unmount(self) -> None:
        self._timer.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _seed(self) -> None:
        """What the engine already knows when the UI opens (events before subscribe are gone)."""
        for snap in self.engine.positions():
            self.positions.update(snap)
        self.positions.reorder()
        self._account = self.engine.account()
        links = getattr(self.engine, "links", None)
        if callable(links):
            for stream, state in links().items():
                self._statuses[stream] = StreamStatus(stream, state)

    async def _load_today(self) -> None:
        """Seed today's totals and panes from the journal (after the first paint: a worker, and
        the engine reads the files in a thread). Engines without a journal are skipped."""
        today_history = getattr(self.engine, "today_history", None)
        if not callable(today_history):
            return
        try:
            history = await today_history(self.clock().astimezone(UTC).date())
        except Exception as exc:  # noqa: BLE001 - the live view works without it
            self.say(f"today's journal could not be read: {exc}", "warning")
            return
        older = self.feed.seed(history)
        for target, rows in ((self.fills, older.fills), (self.closes, older.closes),
                             (self.funding, older.funding)):
            if rows:
                target.add(rows, older=True)  # type: ignore[arg-type]
                target.reorder()
        self._update_header()

    # ================================================================ the feed

    def flush_now(self) -> None:
        """Drain the feed into the panes; skipped while a modal covers them (the feed keeps
        the latest state per key, so nothing is lost, only coalesced)."""
        stack = self.screen_stack
        if not stack or isinstance(stack[-1], ModalScreen):
            return
        batch = self.feed.drain()
        if batch:
            self._apply(batch)
        else:
            self._show_appends()
        self._update_header()

    def _apply(self, batch: Any) -> None:
        pane = self.positions
        reorder = False
        for (kind, key), event in batch.states.items():
            if kind == "pos":
                if isinstance(event, PositionSnapshot):
                    reorder |= pane.update(event)
                elif isinstance(event, PositionGone):
                    shown = pane.snapshots.get(key)
                    if shown is not None and shown.position_id == event.position_id:
                        reorder |= pane.remove(key)
            elif kind == "account" and isinstance(event, AccountSnapshot):
                self._account = event
            elif kind == "status" and isinstance(event, StreamStatus):
                self._statuses[event.stream] = event
            elif kind == "order" and isinstance(event, OrderUpdate):
                if event.state in OPEN_STATES:
                    self.open_orders.add(event.order_id)
                else:
                    self.open_orders.discard(event.order_id)
        if reorder:
            pane.reorder()
        for target, rows in ((self.fills, batch.fills), (self.closes, batch.closes),
                             (self.funding, batch.funding)):
            if rows:
                self._appends.setdefault(target, []).extend(rows)
        self._show_appends()
        for notice in batch.notices:
            self.say(notice.text, _SEVERITY.get(notice.level, "information"))

    def _show_appends(self) -> None:
        """Put new fills / closes / funding rows on their panes: at once when the pane has been
        quiet for APPEND_INTERVAL_S, else with the next flush after it.

        Why: a new row on top shifts every line of a newest-first pane, so each one repaints the
        whole pane (~6-8 KB at 160x50); under a stream of fills that was half of all bytes sent
        over SSH (bench/ui.py, 2026-11-24). Rows are only grouped, never dropped, and the
        header's totals count every event as it arrives."""
        if not self._appends:
            return
        now = time.monotonic()
        for target in list(self._appends):
            if now - self._appended_at.get(target, float("-inf")) < APPEND_INTERVAL_S:
                continue
            target.add(self._appends.pop(target))  # type: ignore[attr-defined]
            target.reorder()
            self._appended_at[target] = now

    def _update_header(self) -> None:
        snaps = self.positions.snapshots.values()
        upnl: Decimal | None = (sum((s.unrealized_pnl for s in snaps), Decimal(0)) if snaps
                                else (self._account.unrealized_pnl if self._account else None))
        now = self.clock().astimezone(UTC)
        day = self.feed.day(now.date())
        link, latency = link_summary(self._statuses)
        self.header.show(HeaderState(
            self._account, upnl, day.realized, day.fees, day.funding, link, latency,
            self.read_only))
        if now.date() != self._chart_day:
            self._chart_day = now.date()
            self.pnl_chart.reset()
        self.pnl_chart.sample(day.realized + (upnl or Decimal(0)), now.timestamp())

    def say(self, text: str, severity: str = "information") -> None:
        """One notification per message: the engine both returns a refusal and publishes it as a
        Notice, so the same text within a few seconds is shown once."""
        now = time.monotonic()
        if now - self._recent.get(text, -DEDUPE_S) < DEDUPE_S:
            return
        if len(self._recent) > 64:
            self._recent = {t: at for t, at in self._recent.items() if now - at < DEDUPE_S}
        self._recent[text] = now
        self.notify(text, severity=severity,  # type: ignore[arg-type]
                    timeout=8 if severity == "error" else 4)

    # ================================================================ bindings

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only mode: trading actions are hidden from the footer and do nothing."""
        if self.read_only and action in TRADING_ACTIONS:
            return False
        return True

    def active_keys(self) -> list[tuple[str, str]]:
        """(key, description) of every key bound on the main screen right now."""
        seen: list[tuple[str, str]] = []
        screen = self.screen_stack[0] if self.screen_stack else self.screen
        for key, active in screen.active_bindings.items():
            b = active.binding
            if not active.enabled or not b.description or b.system:
                continue
            if self.read_only and b.action in TRADING_ACTIONS:
                continue
            seen.append((self.get_key_display(b), b.description))
        extra = [("↑↓ j k", "move"), ("Tab", "next pane"), ("ctrl+p", "command palette")]
        return seen + extra

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = [
            ("Close position", "Close the selected position (confirm)", "close_position"),
            ("Partial close", "Close part of the selected position", "partial_close"),
            ("Close all positions", "Close every open position (confirm)", "close_all"),
            ("New order", "Market or limit order entry", "order_entry"),
            ("Reconcile", "Compare the journal with the exchange", "reconcile"),
            ("History", "Older fills, closes and funding from the journal", "history"),
            ("Filter by symbol", "Show only matching rows", "filter"),
            ("Cycle perpdesk theme", "dark / light / high contrast", "cycle_theme"),
            ("Keys", "List the active keys", "help"),
        ]
        for title, help_text, action in commands:
            if self.read_only and action in TRADING_ACTIONS:
                continue
            yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))

    # ================================================================ trading actions

    def confirm(self, title: str, lines: list[str], done: Callable[[bool | None], None], *,
                confirm_label: str = "Yes") -> None:
        """Ask y/n with the one ConfirmScreen this app keeps installed.

        Why one kept screen: composing and styling a new dialog on every `c` was most of the
        key-to-confirmation time (measured with bench/ui.py, 2026-11-24); the kept screen only
        gets its texts replaced. A request while the dialog is already up is ignored (the open
        question is answered first)."""
        screen = self._confirm_screen
        if screen is None:
            screen = self._confirm_screen = ConfirmScreen(title, lines, confirm_label=confirm_label)
            self.install_screen(screen, name="confirm")
        elif screen in self.screen_stack:
            return
        else:
            screen.ask(title, lines, confirm_label=confirm_label)
        self.push_screen(screen, done)

    def _selected(self) -> PositionSnapshot | None:
        pos = self.positions.selected
        if pos is None:
            self.say("no position selected", "warning")
        return pos

    def _size_text(self, snap: PositionSnapshot, contracts: Decimal) -> str:
        p = Precision.of(self._instruments().get(snap.symbol))
        base = snap.symbol.split("/")[0]
        return f"{p.ct(contracts)} ct ({p.coin(contracts * snap.contract_size)} {base})"

    def _estimate(self, snap: PositionSnapshot, contracts: Decimal) -> Decimal:
        return self.engine.estimate_close_pnl(snap.symbol, snap.pos_side, contracts)

    def action_close_position(self) -> None:
        snap = self._selected()
        if snap is None:
            return
        lines = [f"{short_symbol(snap.symbol)} {snap.side.value}  "
                 f"{self._size_text(snap, snap.contracts)}",
                 f"estimated PnL {fmt_num(self._estimate(snap, snap.contracts), MONEY_PLACES, sign=True)}"
                 " (at mark, before fees)"]

        def done(ok: bool | None) -> None:
            if ok:
                self.submit(ClosePosition(snap.symbol, snap.pos_side),
                            f"close {short_symbol(snap.symbol)}")

        self.confirm("Close position?", lines, done, confirm_label="Close")

    def action_partial_close(self) -> None:
        snap = self._selected()
        if snap is None:
            return
        inst = self._instruments().get(snap.symbol)

        def confirm(contracts: Decimal | None) -> None:
            if contracts is None:
                return
            remaining = snap.contracts - contracts
            lines = [f"{short_symbol(snap.symbol)} {snap.side.value}  close "
                     f"{self._size_text(snap, contracts)}",
                     f"remaining {self._size_text(snap, remaining)}",
                     f"estimated PnL {fmt_num(self._estimate(snap, contracts), MONEY_PLACES, sign=True)}"
                     " (at mark, before fees)"]

            def done(ok: bool | None) -> None:
                if ok:
                    self.submit(ClosePosition(snap.symbol, snap.pos_side, contracts),
                                f"partial close {short_symbol(snap.symbol)}")

            self.confirm("Partial close?", lines, done, confirm_label="Close")

        self.push_screen(PartialCloseScreen(snap, inst), confirm)

    def action_close_all(self) -> None:
        snaps = sorted(self.positions.snapshots.values(), key=lambda s: (s.symbol, s.pos_side))
        if not snaps:
            self.say("no open positions", "warning")
            return
        total = Decimal(0)
        lines = []
        for snap in snaps:
            est = self._estimate(snap, snap.contracts)
            total += est
            lines.append(f"{short_symbol(snap.symbol)} {snap.side.value}  "
                         f"{self._size_text(snap, snap.contracts)}  est "
                         f"{fmt_num(est, MONEY_PLACES, sign=True)}")
        lines.append(f"estimated PnL {fmt_num(total, MONEY_PLACES, sign=True)} "
                     "(at mark, before fees)")

        def done(ok: bool | None) -> None:
            if ok:
                self.submit(CloseAll(), "close all")

        self.confirm(f"Close all {len(snaps)} position(s)?", lines, done, confirm_label="Close all")

    def action_order_entry(self) -> None:
        instruments = self._instruments()
        if not instruments:
            self.say("no instruments loaded yet", "warning")
            return
        selected = self.positions.selected

        def confirm(order: PlaceOrder | None) -> None:
            if order is None:
                return

            def done(ok: bool | None) -> None:
                if ok:
                    self.submit(order, f"{order.side.value} {short_symbol(order.symbol)}")

            self.confirm("Place order?", self._order_lines(order), done, confirm_label="Place")

        self.push_screen(OrderEntryScreen(instruments, selected.symbol if selected else None),
                         confirm)

    def _mark(self, symbol: str) -> Decimal | None:
        """Latest mark of ``symbol``: the engine's, else a shown position's."""
        mark = getattr(self.engine, "mark", None)
        if callable(mark):
            got = mark(symbol)
            if got is not None:
                return got
        for snap in self.positions.snapshots.values():
            if snap.symbol == symbol:
                return snap.mark_price
        return None

    def _order_lines(self, order: PlaceOrder) -> list[str]:
        """Size, side and estimated notional of an order, for its confirmation."""
        inst = self._instruments().get(order.symbol)
        p = Precision.of(inst)
        contract_size = inst.contract_size if inst is not None else Decimal(1)
        coins = order.contracts * contract_size
        base = order.symbol.split("/")[0]
        kind = order.order_type if order.price is None else f"{order.order_type} @ {p.px(order.price)}"
        price = order.price if order.price is not None else self._mark(order.symbol)
        at = "limit price" if order.price is not None else "mark"
        notional = ("unknown (no mark price yet)" if price is None else
                    f"{fmt_num(coins * price, MONEY_PLACES)} {getattr(inst, 'settle_ccy', 'USDT')} "
                    f"(at {at})")
        return [f"{order.side.value.upper()} {short_symbol(order.symbol)}  "
                f"{p.ct(order.contracts)} ct ({p.coin(coins)} {base})",
                f"{kind}{'  reduce-only' if order.reduce_only else ''}",
                f"estimated notional {notional}"]

    def submit(self, command: Command, what: str) -> None:
        """Send one command in a worker; its result (or refusal) becomes a notification."""
        if self.read_only:
            self.say("read-only mode: trading commands are disabled", "error")
            return
        self.inflight += 1
        self.run_worker(self._run_command(command, what), group="commands", exit_on_error=False)

    async def _run_command(self, command: Command, what: str) -> None:
        try:
            result = await self.engine.submit(command)
        except Exception as exc:  # noqa: BLE001 - the engine should not raise; never crash the UI
            self.say(f"{what} failed: {exc or type(exc).__name__}", "error")
            return
        finally:
            self.inflight -= 1
        self.say(result.message or what, "information" if result.ok else "error")

    # ================================================================ other actions

    def action_reconcile(self) -> None:
        self.say("reconciling journal with the exchange…")
        self.run_worker(self._reconcile(), group="reconcile", exclusive=True, exit_on_error=False)

    async def _reconcile(self) -> None:
        try:
            report = await self.engine.reconcile()
        except Exception as exc:  # noqa: BLE001
            self.say(f"reconcile could not run: {exc or type(exc).__name__}", "error")
            return
        self.push_screen(ReconcileScreen(report))

    def action_history(self) -> None:
        if not callable(getattr(self.engine, "history_pager", None)):
            self.say("no journal to read history from", "warning")
            return
        self.push_screen(HistoryScreen(self.engine, self._instruments))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.active_keys()))

    def action_cycle_theme(self) -> None:
        self.theme = next_theme(self.theme)

    def _theme_changed(self, theme: Theme) -> None:
        """Saved to ui-state.toml beside config.toml (never config.toml itself)."""
        if self.settings is None or getattr(self.settings, "config_path", None) is None:
            return
        try:
            from core.uistate import save_ui_state

            self.settings = save_ui_state(self.settings, theme=theme.name)
        except Exception as exc:  # noqa: BLE001 - a preference that cannot be saved is not fatal
            self.say(f"theme not saved: {getattr(exc, 'message', exc)}", "warning")

    def action_filter(self) -> None:
        bar = self.query_one(FilterBar)
        self._filter_return = self.focused if isinstance(self.focused, LinePane) else self.positions
        bar.display = True
        bar.focus()

    def on_input_changed(self, event: FilterBar.Changed) -> None:
        if isinstance(event.input, FilterBar):
            for pane in self.query(LinePane):
                pane.set_filter(event.value)

    def on_filter_bar_done(self, event: FilterBar.Done) -> None:
        bar = self.query_one(FilterBar)
        bar.display = bool(event.text)
        back = getattr(self, "_filter_return", None) or self.positions
        back.focus()

    def action_request_quit(self) -> None:
        busy = self.inflight + len(self.open_orders)
        if not busy:
            self.exit(0)
            return
        lines = [f"{self.inflight} command(s) awaiting the exchange, "
                 f"{len(self.open_orders)} open order(s).",
                 "Open orders stay on the exchange after perpdesk exits."]

        def done(ok: bool | None) -> None:
            if ok:
                self.exit(0)

        self.confirm("Quit with orders in flight?", lines, done, confirm_label="Quit")


def build_app(engine: Any, settings: Any = None, *, read_only: bool = False,
              clock: Callable[[], datetime] = _utc_now, freeze_heap: bool = False) -> PerpdeskApp:
    """The single app factory (CLI and tests). ``engine`` follows docs/architecture.md's Engine
    API; ``clock`` only decides which UTC day the header totals show; ``freeze_heap`` is for the
    one console a process runs for the day (core/heap.py)."""
    return PerpdeskApp(engine, settings, read_only=read_only, clock=clock, freeze_heap=freeze_heap)


async def _run(settings: Any) -> int:
    from core.runner import build_stack

    async with build_stack(settings) as stack:
        app = build_app(stack.engine, settings, freeze_heap=True)
        await app.run_async()
        return app.return_code or 0


def run_app(settings: Any) -> int:
    """`perpdesk`: start the stack (embedded simulator when venue = "sim") and the UI in ONE loop.

    The stack starts before the UI opens, so a failure to start is one plain stderr line and exit
    code 2 (never a traceback, never a half-drawn screen); the UI's exit stops the engine and
    flushes the journal as the context manager closes.
    """
    from core.config import ConfigError
    from core.journal import JournalError
    from core.strategies import StrategyError
    from core.venue import VenueError

    try:
        return asyncio.run(_run(settings))
    except (VenueError, JournalError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAIL
    except (ConfigError, StrategyError) as exc:
        print(getattr(exc, "message", str(exc)), file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 0
