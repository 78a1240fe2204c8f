"""The dialogs prepared at idle after the first paint, so the session's first costs what the
second does.

Why: the first `c` of a session used to build its dialog on the key press: compose the
ConfirmScreen, bring the modal screen's and its widgets' default CSS into the stylesheet (which
restyles the screen), mount it. Later presses reuse the kept, installed screen and only replace
its texts. Here, once the first frame is up, both happen ahead of the first key:

* one hidden set of the dialogs' kinds of widget (label, static, input, buttons) is mounted and
  removed, so their CSS is in the stylesheet for every dialog (order entry, partial close...);
* the kept ConfirmScreen is created, installed, pushed and popped in the same callback: Textual
  composes and mounts it (its CSS with it) in its own task, and no frame is drawn in between,
  because the screen is off the stack again before the app next renders.

Public Textual API only (mount, push_screen, pop_screen).
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from textual.containers import Horizontal, Vertical
from textual.widget import MountError
from textual.widgets import Button, Input, Label, Static

from console.textual_private.offscreen import prepare_offscreen

if TYPE_CHECKING:
    from textual.app import App

    from console.screens.confirm import ConfirmScreen


async def warm_dialogs(app: App[int], confirm: ConfirmScreen) -> None:
    """Prepare ``confirm`` (the app's kept, installed ConfirmScreen) and the dialogs' widget CSS;
    nothing when a dialog is already up (it paid the price) or the app is closing."""
    if len(app.screen_stack) != 1 or not app.is_running:
        return
    mounted = None
    if not confirm.is_mounted and confirm not in app.screen_stack:
        mounted = app.push_screen(confirm)
        app.pop_screen()
    box = Vertical(Label("", classes="dialog-title"), Static(""), Input(),
                   Horizontal(Button(""), classes="dialog-buttons"), classes="dialog")
    box.display = False
    with contextlib.suppress(MountError):  # the app closed meanwhile: nothing to speed up
        await app.screen_stack[0].mount(box)
        await box.remove()
        if mounted is not None:
            await mounted
    if len(app.screen_stack) == 1 and app.is_running:
        prepare_offscreen(confirm, below=app.screen_stack[:1])
