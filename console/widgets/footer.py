"""KeysFooter: Textual's Footer, rebuilt only when the keys it shows change."""
from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


class KeysFooter(Footer):
    """Why: Textual's Footer recomposes (about fifteen key widgets mounted, then a layout of the
    screen) on every bindings update of its screen, and a dialog opening and closing sends
    several. Under the bench load that was six recomposes per `c`, ~8 ms each, all in the path of
    the key's answer, for a footer showing the same keys before and after."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: Hashable = None  # the keys of the last recompose asked for

    def keys_shown(self, screen: Screen[Any]) -> Hashable:
        """What the footer would draw for ``screen``: each shown binding's key, text and state."""
        return tuple((b.key, b.description, b.tooltip, enabled, tooltip)
                     for _, b, enabled, tooltip in screen.active_bindings.values() if b.show)

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = self.keys_shown(screen)
            if shown == self._shown:
                self._bindings_ready = True
                return
            self._shown = shown
        super().bindings_changed(screen)
