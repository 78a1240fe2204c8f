"""`perpdesk reconcile`: the journal against the exchange it was written from, as one command.

The comparison itself is core/reconcile/compare.py (the engine runs it too, for the console's reconcile
screen); this module finds the exchange to compare with (the one a running engine uses, a saved
embedded one when the console is closed: core/reconcile/saved.py), binds the journal to its
account and prints the report.
"""
from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger

from core.journal.binding import bind_journal, journal_account
from core.reconcile.compare import ReconcileReport, reconcile_with_venue
from core.reconcile.saved import saved_at, saved_exchange, saved_state_path
from core.service.lock import read_holder
from core.support.errors import PerpdeskError
from core.venue.factory import make_venue
from core.venue.registry import venue_entry


class ReconcileUnavailable(PerpdeskError):
    """Reconcile cannot run (no reachable exchange, no journal); the message is one plain line."""


def _embedded(settings: Any) -> bool:
    """Venue "sim" without a URL: the simulator runs inside the engine's own process."""
    return bool(venue_entry(settings.exchange.venue).embedded_sim and not settings.exchange.url)


def reconcile_exchange(settings: Any, holders: Sequence[int] = ()) -> Any:
    """The ExchangeSettings reconcile connects to when the exchange runs in another process.

    ``[exchange] url`` if set (a `perpdesk sim`, OKX). For the simulator embedded in a running
    console or headless engine: ``[sim] host``/``port`` when the port is fixed; with ``port = 0``
    it listens on an ephemeral port nobody else knows, so there is nothing to reach (the
    ReconcileUnavailable says what to do). With no engine running, ``main`` reconciles against
    the exchange that engine saved (core.reconcile.saved) instead. ``holders``: the processes
    found running on the journal (named in the message).
    """
    exchange = settings.exchange
    if not _embedded(settings):
        return exchange
    sim = settings.sim
    if not sim.port:
        config = getattr(settings, "config_path", "config.toml")
        who = f" (process {holders[0]})" if holders else ""
        raise ReconcileUnavailable(
            f"an engine{who} is running on journal {settings.journal.dir} and its embedded exchange "
            f"listens on a port no other process knows ([sim] port = 0 in {config}): press r in "
            "its console, or stop it (q) and run perpdesk reconcile again"
        )
    host = "127.0.0.1" if sim.host in ("", "0.0.0.0") else ("::1" if sim.host == "::" else sim.host)
    host = f"[{host}]" if ":" in host else host
    return replace(exchange, url=f"http://{host}:{sim.port}")


async def _reconcile_settings(settings: Any, since: datetime | None,
                              say: Callable[[str], None] = lambda _: None) -> ReconcileReport:
    """Reconcile the config's journal with its exchange; ``say`` gets one line naming a saved
    exchange when the comparison is against one."""
    journal_dir = Path(settings.journal.dir)
    if not journal_dir.is_dir():
        raise ReconcileUnavailable(f"journal directory {journal_dir} does not exist "
                                   "(check [journal] dir in the config)")
    if _embedded(settings):
        holder = read_holder(journal_dir)  # the engine that owns the embedded exchange, if any
        holders = [holder.pid] if holder is not None and holder.pid != os.getpid() else []
        path = saved_state_path(settings)
        if not holders and (path.exists() or not settings.sim.port):
            # No engine owns the embedded exchange now: compare with it as it was saved. (With
            # one running, a second simulator from the same file would fork the exchange.)
            async with saved_exchange(settings) as url:
                say(f"exchange: the embedded simulator as saved in {path} ({saved_at(path)})")
                return await _reconcile_at(settings, replace(settings.exchange, url=url),
                                           journal_dir, since)
        return await _reconcile_at(settings, reconcile_exchange(settings, holders), journal_dir,
                                   since)
    return await _reconcile_at(settings, reconcile_exchange(settings), journal_dir, since)


async def _reconcile_at(settings: Any, exchange: Any, journal_dir: Path,
                        since: datetime | None) -> ReconcileReport:
    venue = make_venue(settings, exchange)
    try:
        await venue.connect()
        bind_journal(journal_dir, journal_account(settings, venue), record=False)  # one journal, one account
        return await reconcile_with_venue(venue, journal_dir, since)
    finally:
        await venue.close()


def main(settings: Any, since: datetime | None = None) -> int:
    """`perpdesk reconcile`: print the table; 0 all match, 1 differences, 2 could not run."""
    try:
        report = asyncio.run(_reconcile_settings(settings, since, say=print))
    except (PerpdeskError, ValueError) as exc:
        message = exc.message if isinstance(exc, PerpdeskError) else str(exc)
        logger.error(f"RECONCILE could not run: {message}")
        print(f"perpdesk reconcile: {message}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    for d in report.differences:
        logger.warning(f"RECONCILE DIFF {d.symbol} {d.position_id} {d.field}: "
                       f"journal {d.journal} exchange {d.exchange}")
    logger.info(f"RECONCILE {'ok' if report.ok else 'differences'}: {len(report.rows)} checks, "
                f"{len(report.differences)} differences")
    return 0 if report.ok else 1
