"""The embedded exchange as it was saved, for `perpdesk reconcile` with the console closed.

Why: the embedded simulator lives inside the engine's process, so once the console is closed
there was no exchange to compare the journal with, and reconcile on the committed config exited 2.
Its whole exchange is on disk (``<journal>/sim-state.json``, core.sim.persist), exactly as it
stood when the engine stopped; loading it into a simulator of our own gives reconcile the same
account, positions, fills and bills. That simulator is read-only and frozen: it never writes the
state file (which belongs to the next engine start) and its market does not move (speed 0, so no
price step, TP/SL or funding changes what is compared). It listens on a loopback ephemeral port
only while reconcile runs, and reconcile reaches it through the same venue adapter as always.
"""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from core.sim.persist import SIM_STATE_FILE, SimStateError
from core.support.errors import PerpdeskError


class SavedExchangeUnavailable(PerpdeskError):
    """No saved exchange to reconcile against (none yet, or unreadable); one plain line."""


def saved_state_path(settings: Any) -> Path:
    return Path(settings.journal.dir) / SIM_STATE_FILE


def saved_at(path: Path) -> str:
    """When the state file was last written, for the line reconcile prints."""
    stamp = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


@contextlib.asynccontextmanager
async def saved_exchange(settings: Any) -> AsyncIterator[str]:
    """The base URL of a frozen, read-only simulator holding the saved exchange (while open)."""
    from core.sim.server import SimServer  # aiohttp only when a saved exchange is loaded

    path = saved_state_path(settings)
    if not path.is_file():
        raise SavedExchangeUnavailable(
            f"no embedded exchange saved in {path}: start perpdesk on this config once (its "
            "simulator keeps the exchange there), or set [exchange] url to a running `perpdesk sim`")
    s = settings.sim
    try:
        sim = SimServer(host="127.0.0.1", port=0, speed=0, seed=s.seed,
                        funding_interval_s=s.funding_interval_s, state_path=path,
                        protocol=s.protocol)  # the face the journal's venue speaks
    except SimStateError as exc:
        raise SavedExchangeUnavailable(str(exc)) from None
    if not sim.resumed:  # the file vanished between the check and the read
        raise SavedExchangeUnavailable(f"no embedded exchange saved in {path}")
    # read-only: no save at start, no saver, no save at stop, no change-log line
    sim.state_path = None
    sim.changes = None
    await sim.start()
    logger.info(f"RECONCILE against the embedded exchange saved in {path} ({saved_at(path)}), "
                f"frozen at {sim.url}")
    try:
        yield sim.url
    finally:
        await sim.stop()
