"""Reading the console under Textual's pilot: the notes it showed, and waiting until it has drawn."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import textual.timer

from tests.helpers.engine_helpers import wait_for


def notifications(app: Any) -> list[Any]:
    """The notifications the app has shown (Notification: message, severity). Textual keeps them in
    a private list with no public read; this is the one place the tests reach it."""
    return list(app._notifications)


def notes(app: Any) -> list[str]:
    return [n.message for n in notifications(app)]


async def settle(app, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


async def rows_shown(app: Any, n: int, what: str | None = None) -> None:
    """Wait until the positions pane shows ``n`` rows (the feed flushed to it first)."""
    def check() -> bool:
        app.flush_now()
        return bool(app.positions.row_count == n)
    await wait_for(check, what=what or f"{n} position rows")


class ScreenWork:
    """Counts what Textual does for one screen while it is watched, up to its first layout
    (the end of its first update, when it is shown: what a key waits for): layouts (reflows),
    full and partial renders, and the stylesheet's style applications (any node). Textual's
    compositor is private; this is the one place the tests count its work
    (console/textual_private/offscreen.py is why: a dialog's first showing must cost what a later
    one does)."""

    def __init__(self, screen: Any) -> None:
        self.counts: dict[str, int] = {}
        self.on = False
        screen.screen_layout_refresh_signal.subscribe(screen, self._laid_out)
        compositor, stylesheet = screen._compositor, screen.app.stylesheet
        for owner, name in ((compositor, "reflow"), (compositor, "render_full_update"),
                            (compositor, "render_partial_update"), (stylesheet, "apply")):
            setattr(owner, name, self._counted(name, getattr(owner, name)))

    def _counted(self, name: str, method: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if self.on:
                self.counts[name] = self.counts.get(name, 0) + 1
            return method(*args, **kwargs)
        return counted

    def _laid_out(self, _: Any) -> None:
        self.on = False

    def take(self) -> dict[str, int]:
        """The counts since the last take."""
        counts, self.counts = self.counts, {}
        return counts


def timer_sleeps(monkeypatch: Any) -> list[tuple[object, float]]:
    """Note every sleep of a Textual timer from now on: (its task, when). A timer sleeps one
    whole period before its first tick, so a sleep between a key and a dialog's first layout is
    a paint that waited."""
    sleeps: list[tuple[object, float]] = []
    real_sleep = textual.timer.sleep

    async def noted_sleep(delay: float) -> None:
        sleeps.append((asyncio.current_task(), time.perf_counter()))
        await real_sleep(delay)

    monkeypatch.setattr(textual.timer, "sleep", noted_sleep)
    return sleeps
