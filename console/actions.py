"""The one registry of console actions: every key binding, palette command and help line.

Why one table: bindings, the command palette, the help screen and read-only filtering all list
the same actions, and every binding (dialogs and tables too, y/n and j/k) needs an id for
``[keymap]`` to rebind it. Each ``Action`` here is one binding with a stable id
(the ``[keymap]`` key); the app, the screens and the panes take their BINDINGS from ``bindings``,
the palette from ``palette``, the help from ``help_lines``, and ``TRADING_ACTIONS`` decides what
read-only mode hides. The ids are written here only: the CLI hands them to core/settings/config.py, which
checks ``[keymap]`` against them, so this module imports no Textual (console/bindings.py turns the
table into Textual bindings).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI reads the keymap ids from here: no domain module at its start
    from core.venue.base import VenueCapabilities


class Scope(StrEnum):
    """Where a binding lives. Bindings of scopes active together may not share a key."""

    APP = "app"  # the main screen (PerpdeskApp)
    PANE = "pane"  # every LinePane: main panes and the history screen's
    CONFIRM = "confirm"
    HISTORY = "history"
    RECONCILE = "reconcile"
    HELP = "help"
    ORDER = "order"
    PARTIAL = "partial"
    KILL = "kill"
    TPSL = "tpsl"
    ACCOUNTS = "accounts"


# Scopes whose bindings are live at the same time: a key given to two of their actions is a
# clash (modal screens cut the chain, so the app's keys do not reach them).
TOGETHER: tuple[frozenset[Scope], ...] = (
    frozenset({Scope.APP, Scope.PANE}),
    frozenset({Scope.HISTORY, Scope.PANE}),
    frozenset({Scope.CONFIRM}),
    frozenset({Scope.RECONCILE}),
    frozenset({Scope.HELP}),
    frozenset({Scope.ORDER}),
    frozenset({Scope.PARTIAL}),
    frozenset({Scope.KILL}),
    frozenset({Scope.TPSL}),
    frozenset({Scope.ACCOUNTS}),
)


@dataclass(frozen=True, slots=True)
class Action:
    id: str  # the [keymap] key
    keys: str  # default keys, comma separated (Textual key names)
    action: str  # the Textual action string run by the key
    description: str
    scope: Scope
    show: bool = False  # in the footer
    trading: bool = False  # hidden and refused in read-only mode
    priority: bool = False
    palette: tuple[str, str] | None = None  # (title, help) in the command palette
    # a VenueCapabilities flag the action needs: hidden and refused on a venue without it
    needs: str = ""
    refusal: str = ""  # what the console says when the key is pressed there ("{venue}" filled in)


A, S = Action, Scope
ACTIONS: tuple[Action, ...] = (
    # main screen, in footer order
    A("close", "c", "close_position", "Close", S.APP, show=True, trading=True,
      palette=("Close position", "Close the selected position (confirm)")),
    A("partial_close", "p", "partial_close", "Partial", S.APP, show=True, trading=True,
      palette=("Partial close", "Close part of the selected position")),
    A("close_all", "X", "close_all", "Close all", S.APP, show=True, trading=True,
      palette=("Close all positions", "Close every open position (confirm)")),
    A("order_entry", "o", "order_entry", "Order", S.APP, show=True, trading=True,
      palette=("New order", "Market or limit order entry")),
    A("pause", "s", "pause_resume", "Pause/resume", S.APP, trading=True,
      palette=("Pause / resume trading", "Pause the strategy (exits still go) or resume it")),
    A("kill_switch", "K", "kill_switch", "Kill switch", S.APP, trading=True,
      palette=("Kill switch", "Cancel every order, close every position, halt (type KILL)")),
    A("tp_sl", "T", "tp_sl", "TP/SL", S.APP, trading=True,
      palette=("Set TP/SL", "Set or move the take-profit and stop-loss of the selected position"),
      needs="position_tp_sl", refusal="{venue} takes no TP/SL on a position here: set it on the exchange"),
    A("reconcile", "r", "reconcile", "Reconcile", S.APP, show=True,
      palette=("Reconcile", "Compare the journal with the exchange")),
    A("history", "h", "history", "History", S.APP,
      palette=("History", "Older fills, closes and funding from the journal")),
    A("accounts", "a", "accounts", "Accounts", S.APP,
      palette=("Accounts", "Every engine's account from the store, live")),
    A("filter", "slash", "filter", "Filter", S.APP,
      palette=("Filter by symbol", "Show only matching rows")),
    A("theme", "t", "cycle_theme", "Theme", S.APP,
      palette=("Cycle perpdesk theme", "dark / light / high contrast")),
    A("help", "question_mark", "help", "Help", S.APP, show=True,
      palette=("Keys", "List the active keys")),
    A("quit", "q", "request_quit", "Quit", S.APP, show=True),
    # every table
    A("cursor_up", "up,k", "cursor(-1)", "Up", S.PANE),
    A("cursor_down", "down,j", "cursor(1)", "Down", S.PANE),
    A("page_up", "pageup", "page(-1)", "Page up", S.PANE),
    A("page_down", "pagedown", "page(1)", "Page down", S.PANE),
    A("first_row", "home", "jump(0)", "First", S.PANE),
    A("last_row", "end", "jump(-1)", "Last", S.PANE),
    # dialogs
    A("confirm_yes", "y,enter", "answer(True)", "Confirm", S.CONFIRM, show=True, priority=True),
    A("confirm_no", "n,escape", "answer(False)", "Cancel", S.CONFIRM, show=True, priority=True),
    A("history_close", "escape,q,h", "close", "Close", S.HISTORY, show=True),
    A("history_older", "n,right,right_square_bracket", "page(1)", "Older page", S.HISTORY,
      show=True),
    A("history_newer", "b,left,left_square_bracket", "page(-1)", "Newer page", S.HISTORY,
      show=True),
    A("history_switch", "tab,f", "switch", "Fills/closes/funding", S.HISTORY, show=True,
      priority=True),
    A("reconcile_close", "escape,q,r", "close", "Close", S.RECONCILE, show=True),
    A("reconcile_down", "j,down", "scroll(1)", "Down", S.RECONCILE),
    A("reconcile_up", "k,up", "scroll(-1)", "Up", S.RECONCILE),
    A("help_close", "escape,question_mark,q", "close", "Close", S.HELP, show=True),
    A("accounts_close", "escape,q,a", "close", "Close", S.ACCOUNTS, show=True),
    A("order_cancel", "escape", "cancel", "Cancel", S.ORDER, show=True),
    A("order_place", "ctrl+s", "place", "Place order", S.ORDER, show=True),
    A("partial_cancel", "escape", "cancel", "Cancel", S.PARTIAL, show=True),
    A("kill_cancel", "escape", "cancel", "Cancel", S.KILL, show=True),
    A("tpsl_cancel", "escape", "cancel", "Cancel", S.TPSL, show=True),
    A("tpsl_break_even", "ctrl+t", "break_even", "Stop to break-even", S.TPSL, show=True),
    A("tpsl_place", "ctrl+s", "place", "Set TP/SL", S.TPSL, show=True),
)
del A, S

ACTION_IDS: tuple[str, ...] = tuple(a.id for a in ACTIONS)
BY_ID: dict[str, Action] = {a.id: a for a in ACTIONS}
TRADING_ACTIONS: frozenset[str] = frozenset(a.action for a in ACTIONS if a.trading)
# keys the help lists beside ours (Textual's own focus and palette keys)
EXTRA_HELP: tuple[tuple[str, str], ...] = (("Tab", "next pane"), ("ctrl+p", "command palette"))


def supported(action: Action, caps: VenueCapabilities | None) -> bool:
    """Whether the venue of ``caps`` can do what ``action`` asks (None: not known, so yes)."""
    return caps is None or not action.needs or bool(getattr(caps, action.needs))


def visible(read_only: bool, scopes: Iterable[Scope] = (Scope.APP,),
            caps: VenueCapabilities | None = None) -> list[Action]:
    """Actions of ``scopes`` that the trader can use (trading ones gone in read-only mode, and
    the ones the venue of ``caps`` cannot do)."""
    wanted = set(scopes)
    return [a for a in ACTIONS if a.scope in wanted and not (read_only and a.trading)
            and supported(a, caps)]


def unsupported(caps: VenueCapabilities) -> dict[str, Action]:
    """Textual action name -> Action, of the actions the venue of ``caps`` cannot do."""
    return {a.action: a for a in ACTIONS if not supported(a, caps)}


def palette(read_only: bool, caps: VenueCapabilities | None = None) -> list[Action]:
    """The command palette's entries, in registry order."""
    return [a for a in visible(read_only, caps=caps) if a.palette is not None]


def help_actions(read_only: bool, caps: VenueCapabilities | None = None) -> list[Action]:
    """What the help screen lists: the main screen's and the panes' keys."""
    return visible(read_only, (Scope.APP, Scope.PANE), caps)

