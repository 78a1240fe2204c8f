"""Reading the console under Textual's pilot: the notes it showed, and waiting until it has drawn."""
from __future__ import annotations

from typing import Any


def notifications(app: Any) -> list[Any]:
    """The notifications the app has shown (Notification: message, severity). Textual keeps them in
    a private list with no public read; this is the one place the tests reach it."""
    return list(app._notifications)


def notes(app: Any) -> list[str]:
    return [n.message for n in notifications(app)]


async def settle(app, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()
