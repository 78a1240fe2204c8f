"""Reading the console under Textual's pilot: the notes it showed, and waiting until it has drawn."""
from __future__ import annotations


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


async def settle(app, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()
