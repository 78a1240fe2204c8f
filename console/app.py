"""PerpdeskApp: the Textual console. It watches the engine and sends it commands, nothing more.

Why it is shaped this way:
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
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.worker import Worker, WorkerState

from console import actions, bindings
from console.actions import Scope
from console.app_keys import KeyActions
from console.errors import describe, expected_errors, log_line
from console.feed import OPEN_STATES, Batch, FeedBuffer
from console.lifecycle import Lifecycle, hangup_safe
from console.panes import FEED_ROWS, PANES
from console.pending import NOT_CONNECTED, PendingEngine
from console.screens.confirm import ConfirmScreen, Question
from console.screens.warm import warm_dialogs
from console.terminal import WriterWatch
from console.trading import Trading
from console.widgets.filterbar import FilterBar
from console.widgets.footer import KeysFooter
from console.widgets.header import HeaderBar, HeaderState, link_summary
from console.widgets.panebox import PaneBox
from console.widgets.pnlchart import PnlChart
from console.widgets.riskline import RiskLine
from console.widgets.table import LinePane
from console.widgets.window import WindowPane
from core.events import (
    AccountSnapshot,
    LinkState,
    NoticeLevel,
    PositionGone,
    RiskEvent,
    RiskEventKind,
    RiskStatus,
    StreamStatus,
)
from core.model import Instrument, OrderUpdate, PositionSnapshot
from core.service.view import EngineView, JournalView, capabilities_of
from core.settings.config import UISettings
from core.support.errors import EXIT_FAIL
from core.support.gc_tuning import freeze_startup_heap
from themes import CSS_PATH, DEFAULT_THEME, PNL_DEFAULTS, register_themes

if TYPE_CHECKING:
    from console.widgets.positions import PositionsPane
    from core.settings.config import Settings
    from core.store.shipper import StoreState

_SEVERITY = {NoticeLevel.INFO: "information", NoticeLevel.WARNING: "warning",
             NoticeLevel.ERROR: "error"}
DEDUPE_S = 5.0
HALTS = (RiskEventKind.HALT, RiskEventKind.KILL)


APPEND_INTERVAL_S = 1.0  # fills / closes / funding panes repaint at most this often under a stream
CLOCK_S = 1.0  # the header's clock-driven items (store lag, the day, the chart) are checked this often

def _utc_now() -> datetime:
    return datetime.now(UTC)


class PerpdeskApp(KeyActions):
    TITLE = "perpdesk"
    CSS_PATH = CSS_PATH
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # an App instance variable
    BINDINGS = bindings.bindings(Scope.APP)  # App declares it as an instance variable

    def __init__(self, engine: EngineView, settings: Settings | None = None, *,
                 read_only: bool = False, clock: Callable[[], datetime] = _utc_now,
                 monotonic: Callable[[], float] = time.monotonic,
                 freeze_heap: bool = False) -> None:
        super().__init__()
        self.engine = engine
        self.freeze_heap = freeze_heap  # the process's own console (core/support/gc_tuning.py), not tests
        self.settings = settings
        ui = settings.ui if settings is not None else None
        self.read_only = bool(read_only or (ui is not None and ui.read_only) or engine.read_only)
        self.refresh_hz = float((ui if ui is not None else UISettings()).refresh_hz)
        self.clock = clock
        self.monotonic = monotonic  # grouping and dedupe intervals (tests pass a fake one)
        self.feed = FeedBuffer(kinds=FEED_ROWS)
        self.trading = Trading(self)
        self.inflight = 0  # commands sent and not answered yet
        self.flushes = 0  # drawing timer runs (tests: an idle console does not run it)
        self.open_orders: set[str] = set()
        self._statuses: dict[str, StreamStatus] = {}
        self.store_state: Callable[[], StoreState] | None = None  # [store] set: the shipper's
        self._unsupported: dict[str, actions.Action] = {}  # action -> Action the venue cannot do
        self._account: AccountSnapshot | None = None
        self._recent: dict[str, float] = {}  # message -> when shown (monotonic), for dedupe
        self._unsubscribe: Callable[[], None] | None = None
        self._chart_day: date | None = None  # the chart shows one UTC day's PnL
        self._confirm_screen: ConfirmScreen | None = None  # installed on first use, then reused
        self._appends: dict[WindowPane, list[Any]] = {}  # rows waiting for their pane (see below)
        self._appended_at: dict[WindowPane, float] = {}
        self._filter_return: LinePane | None = None
        self.startup_warnings: list[str] = []  # shown once mounted, and logged
        if settings is not None:
            from core.settings.config import take_notices

            self.startup_warnings += take_notices()  # a bad ui-state.toml set aside at load
        self.after_first_frame: Callable[[], object] | None = None  # run_app starts the stack here
        self._writer: WriterWatch | None = None  # console/terminal.py, set at the first flush
        register_themes(self)
        wanted = ui.theme if ui is not None else DEFAULT_THEME
        if wanted not in self.available_themes:
            known = ", ".join(sorted(self.available_themes))
            self.startup_warnings.append(
                f'[ui] theme "{wanted}" is unknown: using "{DEFAULT_THEME}" (known: {known})')
            wanted = DEFAULT_THEME
        self.theme = wanted
        keymap = dict(settings.keymap) if settings is not None else {}
        if keymap:
            self.startup_warnings += bindings.clashes(keymap)
            self.set_keymap(keymap)

    # ================================================================ layout

    def compose(self) -> ComposeResult:
        # kept as attributes: the flush timer must not depend on a DOM query (it may fire while
        # the app is shutting down and the widgets are already gone)
        self.header = HeaderBar(id="header")
        self.pnl_chart = PnlChart(id="pnl-chart")
        self.panes = {spec.id: spec.widget(self.instruments, id=spec.id) for spec in PANES}
        for spec in PANES:
            setattr(self, spec.id, self.panes[spec.id])
        self.risk_line = RiskLine(id="risk-line")
        with Horizontal(id="top"):
            yield self.header
            yield self.pnl_chart
        yield self.risk_line
        boxes = {s.id: PaneBox(self.panes[s.id], title=s.title, id=f"{s.id}-box") for s in PANES}
        with Vertical(id="panes"):
            yield from (boxes[s.id] for s in PANES if not s.lower)
            with Horizontal(id="lower"):
                yield from (boxes[s.id] for s in PANES if s.lower)
        yield FilterBar()
        yield KeysFooter(compact=True)

    positions: PositionsPane  # set by compose from the pane registry
    closes: WindowPane
    fills: WindowPane
    funding: WindowPane

    def instruments(self) -> Mapping[str, Instrument]:
        return self.engine.instruments or {}

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """$pnl-up / $pnl-down for Textual's own themes picked from the palette."""
        return {**super().get_theme_variable_defaults(), **PNL_DEFAULTS}

    def on_mount(self) -> None:
        self.query_one(FilterBar).display = False
        self._seed()
        self._unsubscribe = self.engine.subscribe(self.feed.push)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._timer = self.set_interval(1 / self.refresh_hz, self._flush_tick, name="feed-flush")
        # the clock-driven parts of the header (the store's lag, the day, the chart's buckets)
        self._clock = self.set_interval(CLOCK_S, self._clock_tick, name="header-clock")
        self._loop_thread = threading.get_ident()
        self._ui_loop = asyncio.get_running_loop()
        self.feed.wake = self._wake
        self.positions.focus()
        self.flush_now()
        if self.connected:
            self.run_worker(self._load_today(), name="today's journal could not be read",
                            group="history", exit_on_error=False)
        for warning in self.startup_warnings:
            log_line("WARNING", warning)
            self.say(warning, "warning")
        if self.freeze_heap and self.connected:  # else once attached (ccxt's tables included)
            self.call_after_refresh(freeze_startup_heap)

    def on_ready(self) -> None:
        """The first frame is on screen: now the slow part may start (see console/pending.py)."""
        if self.after_first_frame is not None:
            self.after_first_frame()
        self.call_after_refresh(warm_dialogs, self, self.confirm_screen(),
                                *self.trading.kept_dialogs())

    def confirm_screen(self) -> ConfirmScreen:
        """The one kept ConfirmScreen, installed on first use (prepared at idle: warm_dialogs)."""
        if self._confirm_screen is None:
            self._confirm_screen = ConfirmScreen(Question("", ()))
            self.install_screen(self._confirm_screen, name="confirm")
        return self._confirm_screen

    @property
    def connected(self) -> bool:
        return not isinstance(self.engine, PendingEngine)

    def attach(self, engine: EngineView) -> None:
        """Swap the real engine in for the PendingEngine the first frame was painted with."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.engine = engine
        self.read_only = self.read_only or engine.read_only
        self._statuses.clear()
        self._seed()
        self._unsubscribe = engine.subscribe(self.feed.push)
        self.refresh_bindings()
        self.flush_now()
        self.run_worker(self._load_today(), name="today's journal could not be read",
                        group="history", exit_on_error=False)
        if self.freeze_heap:
            self.call_after_refresh(freeze_startup_heap)

    @property
    def frames_dropped(self) -> int:
        """Feed draws skipped because the terminal had not taken the previous frame yet."""
        return self._writer.dropped if self._writer is not None else 0

    def not_connected(self) -> bool:
        """True (and says so) when a key needs the engine and it has not started yet."""
        if self.connected:
            return False
        self.say(f"{NOT_CONNECTED}: the exchange connection is still starting", "warning")
        return True

    def on_unmount(self) -> None:
        self.feed.wake = None
        self._timer.stop()
        self._clock.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _apply_capabilities(self) -> None:
        """Offer what the engine's venue can do: keys it cannot do are hidden (check_action) and
        refused with one line (on_key); where contracts are coins, the panes show one column."""
        caps = capabilities_of(self.engine)
        self._unsupported = actions.unsupported(caps)
        for pane in self.query(LinePane):
            pane.hide_columns(("Contracts",) if caps.contracts_are_coins else ())

    def _seed(self) -> None:
        """What the engine already knows when the UI opens (events before subscribe are gone)."""
        self._apply_capabilities()
        for snap in self.engine.positions():
            self.positions.update(snap)
        self.positions.reorder()
        self._account = self.engine.account()
        for stream, state in self.engine.links().items():
            self._statuses[stream] = StreamStatus(stream, state)
        self.risk_line.show(self.engine.risk_status())

    async def _load_today(self) -> None:
        """Seed today's totals and panes from the journal (after the first paint: a worker, and
        the engine reads the files in a thread). Engines without a journal are skipped; a read
        that fails is reported by on_worker_state_changed (the live view works without it)."""
        if not isinstance(self.engine, JournalView):
            return
        history = await self.engine.today_history(self.clock().astimezone(UTC).date())
        older = self.feed.seed(history)
        for pane, rows in self._rows_by_pane(older):
            pane.add(rows, older=True)
            pane.reorder()
        self._update_header()

    # ================================================================ the feed

    def _flush_tick(self) -> None:
        """The drawing timer: flush, then sleep until the feed's next push when nothing waits.

        Why it sleeps: an idle console woke 30 times a second to find nothing to draw (and
        re-formatted the header each time); now a quiet account costs no CPU. The first push
        wakes the timer at once (FeedBuffer.wake), so pacing under a stream is unchanged: at
        most ``refresh_hz`` draws a second."""
        self.flushes += 1
        self._drain_feed(header=False)
        if not (self._appends or self.header.deferred):
            self.feed.sleep()  # first, so a push from here on wakes the timer again
            self._timer.pause()
            if self.feed.pending():  # a push landed before sleep() (a publisher off this thread)
                self._timer.resume()

    def _wake(self) -> None:
        if threading.get_ident() == self._loop_thread:
            self._timer.resume()
        else:  # a publisher off the loop's thread: asyncio's events are not thread-safe
            self._ui_loop.call_soon_threadsafe(self._timer.resume)

    def _clock_tick(self) -> None:
        """What changes with time alone: the store's lag in seconds, a new UTC day, the chart's
        next bucket (drawn only when the text or the blocks differ)."""
        if not isinstance(self.screen, ModalScreen):
            self._update_header()

    def flush_now(self) -> None:
        """Drain the feed into the panes; skipped while a modal covers them (the feed keeps
        the latest state per key, so nothing is lost, only coalesced)."""
        self._drain_feed(header=True)

    def _drain_feed(self, header: bool) -> None:
        """flush_now; ``header`` False (the timer): the header is recomputed only when something
        arrived or a deferred figure waits, not on a tick that found the feed empty."""
        stack = self.screen_stack
        if not stack:
            return
        self._risk_events(self.feed.take_risk_events())
        if isinstance(stack[-1], ModalScreen):
            return
        if self._writer is None:
            self._writer = WriterWatch(self._driver)
        if self._writer.behind():  # a slow terminal: draw the coalesced state next time
            return
        batch = self.feed.drain()
        if batch:
            self._apply(batch)
        else:
            self._show_appends()
        if header or batch or self.header.deferred:
            self._update_header()

    def _apply(self, batch: Batch) -> None:
        reorder = False
        for (kind, key), event in batch.states.items():
            if kind == "pos":
                reorder |= self._apply_position(key, event)
            elif isinstance(event, AccountSnapshot):
                self._account = event
            elif isinstance(event, StreamStatus):
                self._statuses[event.stream] = event
            elif isinstance(event, RiskStatus):
                self.risk_line.show(event)
            elif isinstance(event, OrderUpdate):
                if event.state in OPEN_STATES:
                    self.open_orders.add(event.order_id)
                else:
                    self.open_orders.discard(event.order_id)
        if reorder:
            self.positions.reorder()
        for pane, rows in self._rows_by_pane(batch):
            self._appends.setdefault(pane, []).extend(rows)
        self._show_appends()
        for notice in batch.notices:
            self.say(notice.text, _SEVERITY.get(notice.level, "information"))

    def _risk_events(self, events: list[RiskEvent]) -> None:
        """A halt or the kill switch rings the terminal bell and raises a notice (even under a
        dialog); the other risk events are on the risk line and in the log and journal."""
        for event in events:
            if event.event in HALTS:
                self.bell()
                self.say(f"TRADING HALTED ({event.rule}): {event.message}", "error")

    def _rows_by_pane(self, batch: Batch) -> Iterator[tuple[WindowPane, list[Any]]]:
        """(pane, new rows) for every registry pane fed by a list of ``batch`` (console/panes.py)."""
        for spec in PANES:
            rows = batch.rows.get(spec.rows.name) if spec.rows is not None else None
            pane = self.panes[spec.id]
            if rows and isinstance(pane, WindowPane):
                yield pane, rows

    def _apply_position(self, key: Any, event: object) -> bool:
        """One position state onto the pane; True when rows appeared or left (reorder)."""
        pane = self.positions
        if isinstance(event, PositionSnapshot):
            return pane.update(event)
        if isinstance(event, PositionGone):
            shown = pane.snapshots.get(key)
            if shown is not None and shown.position_id == event.position_id:
                return pane.remove_position(key)
        return False

    def _show_appends(self) -> None:
        """Put new fills / closes / funding rows on their panes: at once when the pane has been
        quiet for APPEND_INTERVAL_S, else with the next flush after it.

        Why: a new row on top shifts every line of a newest-first pane, so each one repaints the
        whole pane (~6-8 KB at 160x50); under a stream of fills that is most of what goes over
        SSH (docs/decisions/event-loop-pauses.md). Rows are only grouped, never dropped, and the
        header's totals count every event as it arrives. One pane per flush: a fill brings a
        fills row and a closes row together, and two whole panes in one frame made it the
        longest frame of the second (the loop-lag and event-latency tail); the other pane
        follows with the next flush, 50 ms later."""
        if not self._appends:
            return
        now = self.monotonic()
        for target in list(self._appends):
            if now - self._appended_at.get(target, float("-inf")) < APPEND_INTERVAL_S:
                continue
            target.add(self._appends.pop(target))
            target.reorder()
            self._appended_at[target] = now
            return

    def _update_header(self) -> None:
        snaps = self.positions.snapshots.values()
        upnl: Decimal | None = (sum((s.unrealized_pnl for s in snaps), Decimal(0)) if snaps
                                else (self._account.unrealized_pnl if self._account else None))
        now = self.clock().astimezone(UTC)
        day = self.feed.day(now.date())
        link, latency = link_summary(self._statuses)
        engine = self._statuses.get("engine")  # an attached console's link to its engine
        self.header.show(HeaderState(
            self._account, upnl, day.realized, day.fees, day.funding, link, latency,
            self.read_only, store_label(self.store_state),
            engine_lost=engine is not None and engine.state is LinkState.DISCONNECTED))
        timer = getattr(self, "_timer", None)
        if self.header.deferred and timer is not None:
            timer.resume()  # a figure held back (from the clock or the journal's seed) is drawn by a flush
        if now.date() != self._chart_day:
            self._chart_day = now.date()
            self.pnl_chart.reset()
        self.pnl_chart.sample(day.realized + (upnl or Decimal(0)), now.timestamp())

    def say(self, text: str, severity: str = "information") -> None:
        """One notification per message: the engine both returns a refusal and publishes it as a
        Notice, so the same text within a few seconds is shown once."""
        now = self.monotonic()
        if now - self._recent.get(text, -DEDUPE_S) < DEDUPE_S:
            return
        if len(self._recent) > 64:
            self._recent = {t: at for t, at in self._recent.items() if now - at < DEDUPE_S}
        self._recent[text] = now
        self.notify(text, severity=severity,  # type: ignore[arg-type]
                    timeout=8 if severity == "error" else 4)

    # ================================================================ errors, in one place

    def failed(self, what: str, exc: BaseException, severity: str = "error") -> None:
        """Every exception the console catches ends here: one notification, one log line."""
        text = f"{what}: {describe(exc)}"
        log_line("ERROR" if severity == "error" else "WARNING", text, exc)
        self.say(text, severity)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Workers do not catch: a worker that raised is reported here, under its name."""
        worker = event.worker
        if event.state is WorkerState.ERROR and worker.error is not None:
            severity = "warning" if worker.group == "history" else "error"
            self.failed(worker.name or "background task failed", worker.error, severity)


def store_label(state: Callable[[], StoreState] | None) -> str | None:
    """The header's store item: None without [store], "ok", or behind (rows and seconds)."""
    if state is None:
        return None
    st = state()
    if st.rows_behind == 0 and st.connected:
        return "ok"
    if st.rows_behind == 0:
        return "unreachable"
    return f"behind {st.rows_behind} rows {st.seconds_behind:.0f}s"


def build_app(engine: EngineView, settings: Settings | None = None, *, read_only: bool = False,
              clock: Callable[[], datetime] = _utc_now,
              monotonic: Callable[[], float] = time.monotonic,
              freeze_heap: bool = False) -> PerpdeskApp:
    """The single app factory (CLI and tests). ``engine`` follows core/service/view.py;
    ``clock`` only decides which UTC day the header totals show; ``monotonic`` times the
    grouping of new rows and the dedupe of notifications; ``freeze_heap`` is for the one console
    a process runs for the day (core/support/gc_tuning.py)."""
    return PerpdeskApp(engine, settings, read_only=read_only, clock=clock, monotonic=monotonic,
                       freeze_heap=freeze_heap)


async def _run(settings: Settings) -> int:
    """Paint first, then import the exchange library and start the stack (console/pending.py);
    the signals around both come from console/lifecycle.py.

    The stack runs as a task started by the first frame; the app attaches its engine when it is
    up. The UI's exit (q, SIGTERM, SIGINT, SIGHUP) stops the stack, except a SIGHUP with
    ``[ui] on_hangup = "headless"``, after which the engine runs on without a UI until SIGTERM or
    SIGINT. A stack that cannot start ends the app and its error is re-raised here, after the
    terminal is restored, so it is still one plain stderr line and exit code 2. Quitting before
    the stack is up cancels its start (build_stack closes what it opened).
    """
    from core.support.logs import flush_logs

    app = build_app(PendingEngine(read_only=settings.ui.read_only), settings, freeze_heap=True)
    lifecycle = Lifecycle(lambda: app.exit(0), settings.ui.on_hangup)
    ui_closed = asyncio.Event()
    failure: list[BaseException] = []

    async def stack() -> None:
        import importlib

        from core.service.host import serving
        from core.service.runner import build_stack, log_stop

        try:
            # the venue imports ccxt (~0.7 s); in a thread, so the painted UI answers keys meanwhile
            await asyncio.to_thread(importlib.import_module, "ccxt.async_support")
            # the control socket: other terminals can attach to this engine (docs/service.md)
            async with build_stack(settings) as running, serving(running, settings) as server:
                app.attach(running.engine)
                if running.store is not None:
                    link = running.store
                    app.store_state = lambda: link.state
                await ui_closed.wait()
                await lifecycle.wait_detached()  # headless after a hangup: until SIGTERM/SIGINT
                log_stop(running.engine, lifecycle.reason)
                if server is not None:
                    server.reason = f"engine stopped (its console: {lifecycle.reason})"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised by _run once the terminal is restored
            failure.append(exc)
            app.exit(EXIT_FAIL)

    task: asyncio.Task[None] | None = None

    def start() -> None:
        nonlocal task
        if task is None:
            task = asyncio.create_task(stack(), name="stack")

    app.after_first_frame = start
    lifecycle.install()
    app.driver_class = hangup_safe(app.driver_class, lifecycle.terminal_lost)
    try:
        await app.run_async()
        lifecycle.ui_closed()
    finally:
        ui_closed.set()
        if task is not None:
            if not app.connected and not lifecycle.detached:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # engine stopped, journal flushed (or the start cancelled)
        lifecycle.uninstall()
        flush_logs()
    if failure:
        raise failure[0]
    return app.return_code or 0


def run_app(settings: Settings) -> int:
    """`perpdesk`: the UI and the stack (embedded simulator when venue = "sim") in ONE loop.

    The UI paints first and the stack starts after the first frame (see ``_run``); a failure to
    start is one plain stderr line and exit code 2 once the terminal is restored (never a
    traceback); the UI's exit stops the engine and flushes the journal.
    """
    try:
        return asyncio.run(_run(settings))
    except expected_errors() as exc:
        print(describe(exc), file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 0
