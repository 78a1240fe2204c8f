"""Reading the console under Textual's pilot: the notes it showed, and waiting until it has drawn."""
from __future__ import annotations

from typing import Any

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
