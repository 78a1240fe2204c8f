"""AccountsScreen: every engine's account from the store, live (core.store.watch)."""
from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from console.actions import Scope
from console.bindings import bindings
from core.store.queries import AccountRow, format_accounts
from core.store.watch import AccountsWatch


class AccountsScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings(Scope.ACCOUNTS)

    def __init__(self, url: str | None) -> None:
        super().__init__(classes="dialog-screen")
        self.url = url
        self.accounts_watch: AccountsWatch | None = None
        self.rows: list[AccountRow] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Accounts", classes="dialog-title")
            with VerticalScroll(id="accounts-body"):
                yield Static("connecting to the store…", markup=False, id="accounts-text")
            yield Label("live from the store · a stale heartbeat is marked STALE · Esc closes",
                        classes="dialog-hint")

    def on_mount(self) -> None:
        if not self.url:
            self.query_one("#accounts-text", Static).update(
                "No store configured: set [store] read_url (the read-only role) in config.toml")
            return
        self.accounts_watch = AccountsWatch(self.url, self.show_rows, self.show_error)
        self.accounts_watch.start()

    def show_rows(self, rows: list[AccountRow]) -> None:
        self.rows = rows
        if not rows:
            self.query_one("#accounts-text", Static).update("no engine has written a status row yet")
            return
        lines = format_accounts(rows)
        text = Text(lines[0] + "\n", style="bold")
        for row, line in zip(rows, lines[1:], strict=True):
            text.append(line + "\n", style="bold red" if row.stale and row.engine != "TOTAL" else "")
        self.query_one("#accounts-text", Static).update(text)

    def show_error(self, message: str) -> None:
        self.query_one("#accounts-text", Static).update(Text(message, style="bold red"))

    async def on_unmount(self) -> None:
        if self.accounts_watch is not None:
            await self.accounts_watch.stop()

    def action_close(self) -> None:
        self.dismiss(None)
