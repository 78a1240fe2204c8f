"""HelpScreen: the keys that work right now (rebinds and read-only mode included)."""
from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from console.actions import Scope
from console.bindings import bindings


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings(Scope.HELP)

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__(classes="dialog-screen")
        self.keys = keys

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _ in self.keys), default=1)
        body = "\n".join(f"{k.rjust(width)}  {d}" for k, d in self.keys)
        with Vertical(classes="dialog"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(body, markup=False, id="help-text")
            yield Label("Esc closes · ctrl+p opens the command palette", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
