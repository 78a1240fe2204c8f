"""The dialogs prepared at idle after the first paint, so the session's first costs what the
second does.

Why: the first `c` of a session used to build its dialog on the key press: compose the
ConfirmScreen, bring the modal screen's and its widgets' default CSS into the stylesheet (which
restyles the screen), mount it. Later presses reuse the kept, installed screen and only replace
its texts. Here, once the first frame is up, both happen ahead of the first key:

* one hidden set of the dialogs' kinds of widget (label, static, input, buttons) is mounted and
  removed, so their CSS is in the stylesheet for every dialog (order entry, partial close...);
* the kept ConfirmScreen and the other kept dialogs (order entry, partial close, TP/SL, the kill
  switch: console/trading.py) are created, installed, pushed and popped in the same callback:
  Textual composes and mounts each (its CSS with it) in its own task, and no frame is drawn in
  between, because the screens are off the stack again before the app next renders;
* then each is laid out, rendered and its update timer started (console/textual_private/offscreen.py).

Public Textual API here (mount, push_screen, pop_screen); the private part is in offscreen.py.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any
from weakref import WeakSet

from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import MountError
from textual.widgets import Button, Input, Label, Static

from console.textual_private.offscreen import prepare_offscreen

if TYPE_CHECKING:
    from textual.app import App

    from console.screens.confirm import ConfirmScreen


RETRY_S = 1.0
_prepared: WeakSet[Screen[Any]] = WeakSet()


def is_prepared(screen: Screen[Any]) -> bool:
    """``screen`` was composed, mounted and prepared here: whole, ready to be shown again and
    again (a kept dialog refills its texts on each showing only then; before, it is still being
    composed, from what it was given)."""
    return screen in _prepared


async def warm_dialogs(app: App[int], confirm: ConfirmScreen, *kept: Screen[Any]) -> None:
    """Prepare ``confirm`` (the app's kept, installed ConfirmScreen), the other kept dialogs
    ``kept`` (order entry, partial close, TP/SL, kill switch: console/trading.py) and the dialogs'
    widget CSS; nothing when the app is closing. While a dialog is up (a key pressed before the
    first paint's idle: that one was built on its key) it tries again RETRY_S later, so the
    session's later dialogs are kept ones all the same."""
    if not app.is_running:
        return
    if len(app.screen_stack) != 1:
        app.set_timer(RETRY_S, lambda: warm_dialogs(app, confirm, *kept))
        return
    screens = (confirm, *kept)
    mounting = []
    for screen in screens:
        if not screen.is_mounted and screen not in app.screen_stack:
            mounting.append(app.push_screen(screen))
            app.pop_screen()
    box = Vertical(Label("", classes="dialog-title"), Static(""), Input(),
                   Horizontal(Button(""), classes="dialog-buttons"), classes="dialog")
    box.display = False
    with contextlib.suppress(MountError):  # the app closed meanwhile: nothing to speed up
        await app.screen_stack[0].mount(box)
        await box.remove()
        for mounted in mounting:
            await mounted
    for screen in screens:
        if len(app.screen_stack) == 1 and app.is_running and screen.is_mounted:
            prepare_offscreen(screen, below=app.screen_stack[:1])
            _prepared.add(screen)
