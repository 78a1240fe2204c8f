"""ReconcileScreen: the journal-vs-exchange diff, differences first.

The report comes from core.reconcile.compare and is used duck-typed (``ok``, ``rows`` with symbol, field,
journal, exchange, and ``lines()``), so the console does not depend on its internals.
"""
from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from console.actions import Scope
from console.bindings import bindings
from core.service.view import ReconcileReportView


def report_text(report: ReconcileReportView, bad: str | Style, good: str | Style) -> Text:
    """The report's own printable lines, with DIFF lines in ``bad`` and ok lines in ``good``."""
    text = Text()
    for line in report.lines():
        style = bad if line.rstrip().endswith("DIFF") else (good if line.rstrip().endswith(" ok") else "")
        text.append(line + "\n", style)
    return text


class ReconcileScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings(Scope.RECONCILE)

    def __init__(self, report: ReconcileReportView) -> None:
        super().__init__(classes="dialog-screen")
        self.report = report

    def compose(self) -> ComposeResult:
        diffs = [r for r in self.report.rows if not getattr(r, "ok", False)]
        title = ("Reconcile: journal matches the exchange" if self.report.ok else
                 f"Reconcile: {len(diffs)} difference(s) between journal and exchange")
        with Vertical(classes="dialog wide-dialog"):
            yield Label(title, classes="dialog-title " + ("ok" if self.report.ok else "bad"))
            with VerticalScroll(id="reconcile-body"):
                yield Static(id="reconcile-text")
            yield Label("Esc closes", classes="dialog-hint")

    def on_mount(self) -> None:
        bad = self.get_component_rich_style("reconcile--bad", partial=True)
        good = self.get_component_rich_style("reconcile--good", partial=True)
        self.query_one("#reconcile-text", Static).update(report_text(self.report, bad, good))

    COMPONENT_CLASSES: ClassVar[set[str]] = {"reconcile--bad", "reconcile--good"}

    def action_scroll(self, delta: int) -> None:
        self.query_one("#reconcile-body", VerticalScroll).scroll_relative(y=delta, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
