"""KillScreen: the kill switch's gate, where the trader must TYPE the word KILL.

Why typed and not y/n: `K` cancels every order and algo, closes every position at market and
halts trading until an explicit resume. A stray `y` or Enter (the keys every other dialog takes)
must never do that, so the only yes is the word itself followed by Enter.

Like ConfirmScreen it is bound to what it showed: when the trader confirms, ``recheck``
rebuilds the question; if the positions it listed changed meanwhile, nothing is sent, the new
list is shown and one more Enter (the word still typed) confirms it.
"""
from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from console.actions import Scope, bindings, key_hint
from console.screens.confirm import CHANGED, Changed, Question, Recheck, settle

WORD = "KILL"


class KillScreen(ModalScreen["Question | str | None"]):
    """Returns the Question confirmed (KILL + Enter), None (Esc), or why nothing can be asked."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(Scope.KILL)

    def __init__(self, question: Question, recheck: Recheck | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.recheck = recheck

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question.title, classes="dialog-title bad", id="kill-title",
                        markup=False)
            yield Static("\n".join(self.question.lines), id="kill-body", markup=False)
            yield Label(f"Type {WORD} and press Enter to confirm, "
                        f"{key_hint(self.app, 'kill_cancel', 'Esc')} to cancel.",
                        classes="dialog-hint", markup=False)
            yield Input(placeholder=WORD, id="kill-word")
            yield Static("", id="kill-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#kill-word", Input).focus()

    def _error(self, text: str) -> None:
        self.query_one("#kill-error", Static).update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() != WORD:
            self._error(f"✗ type the word {WORD} (capital letters) to confirm; Esc cancels")
            return
        answer = settle(self.question, self.recheck)
        if isinstance(answer, Changed):
            self.question = answer.now
            self.query_one("#kill-body", Static).update("\n".join((CHANGED, *answer.now.lines)))
            self._error("")
        else:
            self.dismiss(answer)

    def action_cancel(self) -> None:
        self.dismiss(None)
