"""ConfirmScreen: the yes/no gate in front of every trading action and of quitting.

Why the buttons cannot take focus: Enter must always mean "confirm" here (SPEC), never "press
whichever button happens to be focused".

Why it asks again: a confirmation is bound to the facts it displayed (for a close: the position
life, side and size). The flow that opened it hands over ``recheck``, which rebuilds the question
from what the console knows now; if the facts differ when the trader says yes, nothing is sent:
the dialog says what changed and asks again with the new facts (`c` on a long of 1, the
position flips to a short of 2 from outside: `y` must not close the short).
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from console.actions import Scope
from console.bindings import bindings, key_hint
from core.events import Command

CHANGED = "⚠ changed since it was shown — nothing sent; confirm again:"


@dataclass(frozen=True, slots=True)
class Question:
    """One confirmation: its texts, the command a yes sends, and the facts it is bound to."""

    title: str
    lines: tuple[str, ...]
    confirm_label: str = "Yes"
    command: Command | None = None  # None: the asker acts itself (quit)
    what: str = ""  # how the command is named in its notification
    facts: Hashable = None  # compared at the answer; the estimates are not facts


Recheck = Callable[[], "Question | str"]  # the question now, or why nothing can be asked


@dataclass(frozen=True, slots=True)
class Changed:
    """The facts a confirmation showed changed before the answer: ask again with ``now``."""

    now: Question


def settle(question: Question, recheck: Recheck | None) -> Question | str | Changed:
    """What a "yes" to ``question`` means now: the question to act on (same facts, the latest
    estimate), one line saying why nothing can be sent, or the changed facts to show instead."""
    if recheck is None:
        return question
    now = recheck()
    if isinstance(now, str) or now.facts == question.facts:
        return now
    return Changed(now)


class ConfirmScreen(ModalScreen["Question | str | None"]):
    """Returns the Question confirmed (y/Enter), None (n/Esc), or a reason when what it asked
    about is gone (e.g. the position was closed from outside)."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(Scope.CONFIRM)

    def __init__(self, question: Question, recheck: Recheck | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.recheck = recheck

    def ask(self, question: Question, recheck: Recheck | None = None, *,
            changed: bool = False) -> None:
        """New texts: for the next time this (kept) screen is pushed, or at once if it is up."""
        self.question, self.recheck = question, recheck
        if self.is_mounted:
            self.query_one("#confirm-title", Label).update(question.title)
            self.query_one("#confirm-body", Static).update(self._body(changed))
            self.query_one("#yes", Button).label = self._yes_label()

    def _body(self, changed: bool = False) -> str:
        return "\n".join(((CHANGED,) if changed else ()) + self.question.lines)

    def _yes_label(self) -> str:
        return f"{self.question.confirm_label} ({key_hint(self.app, 'confirm_yes', 'y')})"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question.title, classes="dialog-title", id="confirm-title",
                        markup=False)
            yield Static(self._body(), id="confirm-body", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yes = Button(self._yes_label(), variant="error", id="yes")
                no = Button(f"No ({key_hint(self.app, 'confirm_no', 'n')})", id="no")
                yes.can_focus = no.can_focus = False
                yield yes
                yield no

    def action_answer(self, value: bool) -> None:
        if not value:
            self.dismiss(None)
            return
        answer = settle(self.question, self.recheck)
        if isinstance(answer, Changed):
            self.ask(answer.now, self.recheck, changed=True)
        else:
            self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id == "yes")
