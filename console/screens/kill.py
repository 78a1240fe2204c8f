"""KillScreen: the kill switch's gate, where the trader must TYPE the word KILL.

Why typed and not y/n: `K` cancels every order and algo, closes every position at market and
halts trading until an explicit resume. A stray `y` or Enter (the keys every other dialog takes)
must never do that, so the only yes is the word itself followed by Enter.

Unlike ConfirmScreen it is NOT bound to what it showed: the kill switch cancels and closes
whatever exists when it runs (and stops the strategy first), so a strategy that keeps trading
must not be able to turn the trader's KILL into "changed since it was shown, nothing sent".
The word and Enter send it at once. While the dialog is up, ``rebuild`` (when given) rebuilds
the list once a second, so what it shows stays close to what the kill will act on.
"""
from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from console.actions import Scope
from console.bindings import bindings, key_hint
from console.screens.confirm import Question, Recheck
from console.screens.warm import is_prepared

WORD = "KILL"
REFRESH_S = 1.0  # the list is rebuilt this often while the dialog is up


class KillScreen(ModalScreen["Question | str | None"]):
    """Returns the Question confirmed (KILL + Enter), None (Esc), or why nothing can be asked."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(Scope.KILL)
    AUTO_FOCUS = "#kill-word"  # on every showing where nothing is focused yet

    def __init__(self, question: Question | None = None, rebuild: Recheck | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.question = question if question is not None else Question("KILL SWITCH", ())
        self._rebuild = rebuild
        self._refresh: Timer | None = None

    def ask(self, question: Question, rebuild: Recheck | None = None) -> None:
        """The list for the next showing of this (kept) screen."""
        self.question, self._rebuild = question, rebuild

    def on_screen_resume(self) -> None:
        """Each showing says ``ask``'s list and clears the word and any error of the time before
        (a word typed then never confirms this one); the list refreshes only while it is up."""
        if self._refresh is not None:
            self._refresh.reset()
            self._refresh.resume()
        if not is_prepared(self):  # still being composed, from what it was given
            return
        self.query_one("#kill-title", Label).update(self.question.title)
        self.query_one("#kill-body", Static).update("\n".join(self.question.lines))
        word = self.query_one("#kill-word", Input)
        word.value = ""
        self._error("")
        self.set_focus(word)

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
        self._refresh = self.set_interval(REFRESH_S, self.show_now, pause=not self.is_current)

    def on_screen_suspend(self) -> None:
        if self._refresh is not None:
            self._refresh.pause()

    def show_now(self) -> None:
        """Rebuild the list from what the console knows now (display only: nothing is bound)."""
        if self._rebuild is None:
            return
        question = self._rebuild()
        if isinstance(question, Question):
            self.question = question
            self.query_one("#kill-body", Static).update("\n".join(question.lines))

    def _error(self, text: str) -> None:
        self.query_one("#kill-error", Static).update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() != WORD:
            self._error(f"✗ type the word {WORD} (capital letters) to confirm; Esc cancels")
            return
        self.dismiss(self.question)  # the word is the whole confirmation: sent as it stands

    def action_cancel(self) -> None:
        self.dismiss(None)
