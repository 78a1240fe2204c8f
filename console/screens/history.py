"""HistoryScreen: older fills, closes and funding read from the journal, one page at a time.

Why: the live panes keep a bounded window (console/feed.py) and the CSV keeps everything, so the
rest is read here on demand. The engine hands out a pager (core.journal.history.HistoryPager):
the console never opens a CSV. Each page is read in a worker thread, so a large day file never
freezes the loop the engine shares; the page is shown in the same Line-API panes as the live view.
It is a ModalScreen, so the live panes underneath do no flush work while it is open.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from console.actions import Scope
from console.bindings import bindings, key_hint
from console.widgets.closes import ClosesPane
from console.widgets.fills import FillsPane
from console.widgets.funding import FundingPane
from console.widgets.window import WindowPane
from core.service.view import HistoryPagerView, JournalView, capabilities_of

KINDS = ("fills", "closes", "funding")
PAGE_SIZE = 200


class HistoryScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings(Scope.HISTORY)

    def __init__(self, engine: JournalView, instruments: Callable[[], Mapping[str, Any]], *,
                 kind: str = "fills", page_size: int = PAGE_SIZE) -> None:
        super().__init__(classes="dialog-screen")
        self.engine = engine
        self.instruments = instruments
        self.kind = kind
        self.page_size = page_size
        self.number = 0
        self.more = False
        self.loaded = 0  # rows on the page shown (tests, title)
        self._pagers: dict[str, HistoryPagerView] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog history-dialog"):
            yield Label("", id="history-title", classes="dialog-title")
            yield FillsPane(self.instruments, window=self.page_size, id="history-fills")
            yield ClosesPane(self.instruments, window=self.page_size, id="history-closes")
            yield FundingPane(self.instruments, window=self.page_size, id="history-funding")
            hint = partial(key_hint, self.app)
            yield Label(f"{hint('history_older', 'n/→')} older · {hint('history_newer', 'b/←')} newer"
                        f" · {hint('history_switch', 'Tab')} fills/closes/funding"
                        f" · {hint('history_close', 'Esc')} closes",
                        classes="dialog-hint")

    def on_mount(self) -> None:
        if capabilities_of(self.engine).contracts_are_coins:  # one column, as on the main screen
            for kind in KINDS:
                self.pane(kind).hide_columns(("Contracts",))
        self._show(self.kind, 0)

    def pane(self, kind: str | None = None) -> WindowPane:
        return self.query_one(f"#history-{kind or self.kind}", WindowPane)

    def _show(self, kind: str, number: int) -> None:
        self.kind = kind
        for k in KINDS:
            self.pane(k).display = k == kind
        self.pane().focus()
        self.query_one("#history-title", Label).update(f"History: {kind} (reading…)")
        self.run_worker(self._load(kind, number), group="history-page", exclusive=True,
                        exit_on_error=False)

    async def _load(self, kind: str, number: int) -> None:
        pager = self._pagers.get(kind)
        if pager is None:
            pager = self._pagers[kind] = self.engine.history_pager(kind, self.page_size)
        try:
            page = await pager.page(number)
        except Exception as exc:  # noqa: BLE001 - a journal that cannot be read is reported, not fatal
            self.query_one("#history-title", Label).update(f"History: {kind} — cannot read: {exc}")
            return
        if kind != self.kind:
            return  # the trader switched while this page was read
        pane = self.pane()
        pane.clear_rows()
        items = [getattr(i, "close", i) for i in page.items]  # JournalClose -> CloseResult
        pane.add(list(reversed(items)))  # type: ignore[attr-defined]
        pane.reorder()
        pane.move_cursor(0)
        self.number, self.more, self.loaded = page.number, page.more, len(items)
        first = page.number * self.page_size + 1
        span = f"rows {first}–{first + len(items) - 1}" if items else "no rows"
        self.query_one("#history-title", Label).update(
            f"History: {kind}, page {page.number + 1} ({span}, newest first"
            f"{'' if page.more else ', oldest reached'})")

    def action_page(self, delta: int) -> None:
        target = self.number + delta
        if target < 0 or (delta > 0 and not self.more):
            self.app.bell()
            return
        self._show(self.kind, target)

    def action_switch(self) -> None:
        self._show(KINDS[(KINDS.index(self.kind) + 1) % len(KINDS)], 0)

    def action_close(self) -> None:
        self.dismiss(None)
