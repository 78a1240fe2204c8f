"""ConfirmScreen: the yes/no gate in front of every trading action and of quitting.

Why the buttons cannot take focus: Enter must always mean "confirm" here (SPEC), never "press
whichever button happens to be focused".
"""
from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Returns True for y/Enter, False for n/Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Confirm", priority=True),
        Binding("n,escape", "answer(False)", "Cancel", priority=True),
    ]

    def __init__(self, title: str, lines: list[str], *, confirm_label: str = "Yes") -> None:
        super().__init__(classes="dialog-screen")
        self._title = title
        self._lines = lines
        self._confirm_label = confirm_label

    def ask(self, title: str, lines: list[str], *, confirm_label: str = "Yes") -> None:
        """New texts for the next time this (kept) screen is pushed."""
        self._title, self._lines, self._confirm_label = title, lines, confirm_label
        if self.is_mounted:
            self.query_one("#confirm-title", Label).update(title)
            self.query_one("#confirm-body", Static).update("\n".join(lines))
            self.query_one("#yes", Button).label = f"{confirm_label} (y)"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title", id="confirm-title", markup=False)
            yield Static("\n".join(self._lines), id="confirm-body", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yes = Button(f"{self._confirm_label} (y)", variant="error", id="yes")
                no = Button("No (n)", id="no")
                yes.can_focus = no.can_focus = False
                yield yes
                yield no

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")
