"""KeyActions: what the main screen's keys do (the actions of console/actions.py), the base of
PerpdeskApp.

Why apart from the app: the app's own body is its layout and the feed it draws; the keys are a
second idea (read-only checks, the venue's capabilities, confirm-then-submit, the screens a key
opens), and together the two made one class past what a newcomer reads at once. The app sets the
attributes declared below in its ``__init__``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import Theme

from console import actions, bindings
from console.actions import TRADING_ACTIONS, Scope
from console.screens.confirm import ConfirmScreen, Question, Recheck
from console.screens.help import HelpScreen
from console.screens.history import HistoryScreen
from console.screens.kill import KillScreen
from console.screens.reconcile import ReconcileScreen
from console.textual_private import app_keymap
from console.trading import Trading
from console.widgets.filterbar import FilterBar
from console.widgets.table import LinePane
from core.events import (
    Command,
)
from core.model import Instrument
from core.service.view import EngineView, JournalView, capabilities_of
from themes import next_theme

if TYPE_CHECKING:
    from console.widgets.positions import PositionsPane
    from core.settings.config import Settings


def _needs_engine(action: Callable[[KeyActions], None]) -> Callable[[KeyActions], None]:
    """A key that needs the engine says "not connected yet" until the stack is up (console/pending.py)."""

    def guarded(app: KeyActions) -> None:
        if not app.not_connected():
            action(app)

    guarded.__name__, guarded.__doc__ = action.__name__, action.__doc__
    return guarded


class KeyActions(App[int]):
    """The actions bound to the main screen's keys, the palette and help (console/actions.py)."""

    engine: EngineView
    settings: Settings | None
    read_only: bool
    trading: Trading
    inflight: int
    positions: PositionsPane
    _unsupported: dict[str, actions.Action]
    _filter_return: LinePane | None

    if TYPE_CHECKING:
        def say(self, text: str, severity: str = "information") -> None: ...
        def failed(self, what: str, exc: BaseException, severity: str = "error") -> None: ...
        def not_connected(self) -> bool: ...
        def confirm_screen(self) -> ConfirmScreen: ...
        def instruments(self) -> Mapping[str, Instrument]: ...

    # ================================================================ bindings (console/actions.py)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only mode: trading actions are hidden from the footer and do nothing."""
        if self.read_only and action in TRADING_ACTIONS:
            return False
        return action not in self._unsupported

    def on_key(self, event: events.Key) -> None:
        """A key of an action the venue cannot do (hidden, so no binding ran): say why, once."""
        if not self._unsupported or len(self.screen_stack) > 1:
            return
        for action in self._unsupported.values():
            if action.scope is Scope.APP and event.key in bindings.keys_of(action, app_keymap(self)):
                if not (self.read_only and action.trading):
                    self.say(action.refusal.format(venue=capabilities_of(self.engine).name), "warning")
                event.stop()
                return

    def active_keys(self) -> list[tuple[str, str]]:
        """(keys, description) of every main-screen action, rebinds and read-only included."""
        out = []
        for action in actions.help_actions(self.read_only, capabilities_of(self.engine)):
            keys = bindings.keys_of(action, app_keymap(self))
            shown = " ".join(self.get_key_display(Binding(k, action.action)) for k in keys)
            out.append((shown, action.description))
        return out + list(actions.EXTRA_HELP)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action in actions.palette(self.read_only, capabilities_of(self.engine)):
            assert action.palette is not None
            title, help_text = action.palette
            yield SystemCommand(title, help_text, getattr(self, f"action_{action.action}"))

    # ================================================================ trading (console/trading.py)

    def confirm(self, question: Question, recheck: Recheck | None = None, *,
                on_yes: Callable[[], None] | None = None,
                screen: KillScreen | None = None) -> None:
        """Ask y/n with the one ConfirmScreen this app keeps installed (or, with ``screen``,
        another kept dialog, e.g. the kill switch's typed one); a yes sends the question's
        command (or runs ``on_yes``), a question gone stale is reported.

        Why one kept screen: composing and styling a new dialog on every `c` was most of the
        key-to-confirmation time (bench/ui.py); the kept screen only
        gets its texts replaced. A request while a dialog is already up is ignored (the open
        question is answered first)."""
        if isinstance(self.screen, (ConfirmScreen, KillScreen)):
            return
        dialog: ConfirmScreen | KillScreen = screen if screen is not None else self.confirm_screen()
        if dialog in self.screen_stack:
            return
        dialog.ask(question, recheck)

        def done(answer: Question | str | None) -> None:
            if isinstance(answer, str):
                self.say(answer, "error")
            elif answer is not None and on_yes is not None:
                on_yes()
            elif answer is not None and answer.command is not None:
                self.submit(answer.command, answer.what)

        self.push_screen(dialog, done)

    @_needs_engine
    def action_close_position(self) -> None:
        self.trading.close()

    @_needs_engine
    def action_partial_close(self) -> None:
        self.trading.partial()

    @_needs_engine
    def action_close_all(self) -> None:
        self.trading.close_all()

    @_needs_engine
    def action_order_entry(self) -> None:
        self.trading.order_entry()

    @_needs_engine
    def action_pause_resume(self) -> None:
        self.trading.pause_resume()

    @_needs_engine
    def action_kill_switch(self) -> None:
        self.trading.kill()

    @_needs_engine
    def action_tp_sl(self) -> None:
        self.trading.tp_sl()

    def submit(self, command: Command, what: str) -> None:
        """Send one command in a worker; its result (or refusal) becomes a notification."""
        if self.read_only:
            self.say("read-only mode: trading commands are disabled", "error")
            return
        self.inflight += 1
        self.run_worker(self._run_command(command, what), name=f"{what} failed",
                        group="commands", exit_on_error=False)

    async def _run_command(self, command: Command, what: str) -> None:
        try:
            result = await self.engine.submit(command)
        finally:
            self.inflight -= 1
        self.say(result.message or what, "information" if result.ok else "error")

    # ================================================================ other actions

    @_needs_engine
    def action_reconcile(self) -> None:
        self.say("reconciling journal with the exchange…")
        self.run_worker(self._reconcile(), name="reconcile could not run", group="reconcile",
                        exclusive=True, exit_on_error=False)

    async def _reconcile(self) -> None:
        self.push_screen(ReconcileScreen(await self.engine.reconcile()))

    @_needs_engine
    def action_history(self) -> None:
        if not isinstance(self.engine, JournalView):
            self.say("no journal to read history from", "warning")
            return
        self.push_screen(HistoryScreen(self.engine, self.instruments))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.active_keys()))

    def action_accounts(self) -> None:
        from console.screens.accounts import AccountsScreen

        store = self.settings.store if self.settings is not None else None
        self.push_screen(AccountsScreen(store.read_url or store.url if store is not None else None))

    def action_cycle_theme(self) -> None:
        self.theme = next_theme(self.theme)

    def _theme_changed(self, theme: Theme) -> None:
        """Saved to ui-state.toml beside config.toml (never config.toml itself)."""
        if self.settings is None:
            return
        try:
            from core.settings.uistate import save_ui_state

            self.settings = save_ui_state(self.settings, theme=theme.name)
        except Exception as exc:  # noqa: BLE001 - a preference that cannot be saved is not fatal
            self.failed("theme not saved", exc, "warning")

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
        (self._filter_return or self.positions).focus()

    def action_request_quit(self) -> None:
        self.trading.quit(lambda: self.exit(0))
