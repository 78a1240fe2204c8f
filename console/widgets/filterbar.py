"""FilterBar: the `/` symbol filter. Typing filters every pane live; Enter keeps, Esc clears."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "clear_filter", "Clear filter")]

    @dataclass
    class Done(Message):
        """The trader left the filter (kept with Enter, or cleared with Esc)."""

        text: str

    def __init__(self) -> None:
        super().__init__(placeholder="filter by symbol (Enter keeps, Esc clears)", id="filter")

    def action_clear_filter(self) -> None:
        self.value = ""
        self.post_message(self.Done(""))

    async def action_submit(self) -> None:
        self.post_message(self.Done(self.value))
