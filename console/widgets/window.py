"""WindowPane: a LinePane over a bounded, newest-first window of append-only rows."""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from itertools import count
from typing import Any

from console.widgets.fmt import Precision
from console.widgets.table import LinePane, Row
from core.model import Instrument


class WindowPane(LinePane):
    """A LinePane over the newest ``window`` rows (oldest fall off; the journal keeps them all).

    Rows are keyed by an ever-increasing sequence number, so the strip cache survives new rows
    being pushed on top.
    """

    FOLLOW_TOP = True

    def __init__(self, instruments: Callable[[], Mapping[str, Instrument]], window: int = 500,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._instruments = instruments
        self._keys: deque[int] = deque()
        self._window = window
        self._seq = count()

    def all_keys(self) -> Iterable[Hashable]:
        return self._keys

    def add_rows(self, rows: Iterable[Row]) -> int:
        """Push rows (oldest first) on top; returns how many were added. Caller reorders."""
        added = 0
        for row in rows:
            if len(self._keys) >= self._window:
                self.remove_row(self._keys.pop())
            key = next(self._seq)
            self._keys.appendleft(key)
            self.set_row(key, row)
            added += 1
        return added

    def add_older(self, rows: Iterable[Row]) -> int:
        """Put rows (newest first) BELOW the current ones, while the window has room: history
        read from the journal after live rows already arrived. Caller reorders."""
        added = 0
        for row in rows:
            if len(self._keys) >= self._window:
                break
            key = next(self._seq)
            self._keys.append(key)
            self.set_row(key, row)
            added += 1
        return added

    def add(self, items: list[Any], *, older: bool = False) -> int:
        """Oldest first; ``older`` puts them below the rows shown. Each pane formats its rows."""
        raise NotImplementedError

    def clear_rows(self) -> None:
        """Forget every row (the history screen shows one page at a time). Caller reorders."""
        for key in self._keys:
            self.remove_row(key)
        self._keys.clear()

    def precision(self, symbol: str) -> Precision:
        return Precision.of(self._instruments().get(symbol))
