"""Builds the running stack from Settings: simulator (venue "sim"), venue, journal, engine, strategy.

Why one builder for the TUI and headless mode: both must run the very same engine and journal, and
shut down the same way (strategy cancelled, streams stopped, queued events and close confirmations
finished, journal flushed and closed, simulator stopped), whatever ended the run.
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from loguru import logger

from core.engine import Engine
from core.journal import Journal, JournalError
from core.journal.binding import bind_journal, journal_account
from core.journal.disk import disk_full, full_disk_message
from core.model import PositionSnapshot
from core.service.host import serving
from core.service.lock import EngineLock, acquire
from core.service.view import ProtectionView
from core.settings.config import ConfigError, Settings
from core.sim.persist import SIM_STATE_FILE, SimStateError
from core.strategies import load_strategy
from core.strategies.host import StrategyHost
from core.support.errors import PerpdeskError
from core.support.gc_tuning import freeze_startup_heap
from core.support.safefile import tighten
from core.venue.base import Venue
from core.venue.factory import make_venue
from core.venue.registry import venue_entry

if TYPE_CHECKING:
    from core.sim.server import SimServer
    from core.store.link import StoreLink
    from core.strategies.base import Strategy



@dataclass(frozen=True, slots=True)
class Stack:
    """What a front end needs: the engine (and, for demos and tests, the parts under it)."""

    engine: Engine
    venue: Venue
    journal: Journal
    sim: object | None  # core.sim.server.SimServer when venue = "sim" runs embedded
    strategy: StrategyHost | None  # .name, .running, .error (why it stopped)
    store: StoreLink | None = None  # [store] url set: the shipper and the status row
    lock: EngineLock | None = None  # the journal folder's (core.service.lock)


@contextlib.asynccontextmanager
async def build_stack(settings: Settings, lock: EngineLock | None = None) -> AsyncIterator[Stack]:
    """Start everything in the current loop; stop everything cleanly on exit.

    Raises a PerpdeskError (VenueError, ConfigError, JournalError, StrategyError, and
    core.service.lock.EngineRunning when another engine runs on this journal folder) at start.
    The journal folder's lock (``lock``, or taken here) is held until everything has stopped:
    nothing in the folder, the simulator's state file included, is touched without it.
    """
    strategy = load_strategy(settings.strategy)  # fail before I/O
    owned = lock is None
    held = lock if lock is not None else acquire(settings.journal.dir, attach_hint=attach_hint(settings))
    try:
        async with _stack(settings, strategy, held) as stack:
            yield stack
    finally:
        if owned:
            held.release()


def attach_hint(settings: Settings) -> str:
    """How the refused start reaches the running engine instead (core.service.lock)."""
    return f"attach a console to it with `perpdesk --config {settings.config_path} attach`"


@contextlib.asynccontextmanager
async def _stack(settings: Settings, strategy: Strategy | None,
                 lock: EngineLock) -> AsyncIterator[Stack]:
    sim = None
    exchange = settings.exchange
    tighten_files(settings)
    if venue_entry(exchange.venue).embedded_sim and not exchange.url:
        sim = await _start_sim(settings)
        exchange = replace(exchange, url=sim.url)
    venue: Venue | None = None
    journal: Journal | None = None
    engine: Engine | None = None
    host: StrategyHost | None = None
    store: StoreLink | None = None
    started = False
    unwritten: JournalError | None = None
    try:
        venue = make_venue(settings, exchange)
        await venue.connect()  # the account must be known before the journal is read
        bind_journal(settings.journal.dir, journal_account(settings, venue))
        journal = Journal(settings.journal.dir)
        trading = strategy is not None and not settings.ui.read_only
        engine = Engine(venue, journal, read_only=settings.ui.read_only, risk=settings.risk,
                        candles=trading)  # candles only feed a strategy
        await engine.start()
        started = True
        if settings.store.url:  # never waits on PostgreSQL: shipping and status run beside trading
            from core.store.link import start_store  # asyncpg only with a [store] url

            store = await start_store(settings, engine, journal, journal_account(settings, venue))
        if trading and strategy is not None:
            host = StrategyHost(strategy, engine, max_callback_s=settings.strategy.max_callback_s)
            await host.start()  # a failing warm-up or on_start stops the strategy, not the run
        yield Stack(engine, venue, journal, sim, host, store, lock)
    finally:
        if host is not None:
            with contextlib.suppress(Exception):
                await host.stop()
        if engine is not None and started:
            with contextlib.suppress(Exception):
                await engine.stop()
        if store is not None:  # after the engine's last rows are flushed: ship them if it can
            with contextlib.suppress(Exception):
                await store.stop()
        elif venue is not None:
            with contextlib.suppress(Exception):
                await venue.close()
        if journal is not None:
            try:
                await journal.close()
            except JournalError as exc:
                logger.error(f"journal close failed: {exc}")
                unwritten = exc
        if sim is not None:
            with contextlib.suppress(Exception):
                await sim.stop()
    if unwritten is not None:  # reached only when the run itself ended without an error
        raise unwritten  # rows lost at stop: the front end says so and exits non-zero


def tighten_files(settings: Settings) -> list[Path]:
    """Files an older version left readable by others (0644 journal, logs, state) made 0600 and
    their folders 0700 before anything reads them; one log line names them."""
    shared = [Path.cwd(), settings.config_path.parent, Path.home()]
    changed = tighten([settings.journal.dir, settings.logs.dir], shared)
    if changed:
        logger.warning(f"PERMISSIONS made private (files 0600, folders 0700; they were readable "
                       f"by other users): {', '.join(str(p) for p in changed)}")
    return changed


async def _start_sim(settings: Settings) -> SimServer:
    """The embedded simulator, its exchange kept beside the journal (core.sim.persist) so that it
    goes on at the next start as a real exchange would."""
    from core.sim.server import SimServer  # aiohttp only when the simulator runs embedded

    s = settings.sim
    try:
        sim = SimServer(host=s.host, port=s.port, speed=s.speed, seed=s.seed,
                        funding_interval_s=s.funding_interval_s,
                        state_path=settings.journal.dir / SIM_STATE_FILE, protocol=s.protocol)
    except SimStateError as exc:
        raise ConfigError(str(exc)) from None
    except ValueError as exc:
        raise ConfigError(f"{settings.config_path.name}: [sim] {exc}") from None
    try:
        await sim.start()
    except SimStateError as exc:
        if disk_full(settings.journal.dir, exc):  # its first save, before the journal's
            raise JournalError(full_disk_message(settings.journal.dir)) from None
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{settings.config_path.name}: [sim] cannot listen on "
                          f"{s.host}:{s.port} ({exc.strerror or exc})") from None
    logger.info(f"SIM embedded at {sim.url}" + (" (exchange continued from its state file)" if sim.resumed else ""))
    return sim


class _OpenPositions(Protocol):
    def positions(self) -> list[PositionSnapshot]: ...


def log_stop(engine: _OpenPositions, reason: str) -> None:
    """One log line at a stop: what stopped it and the positions left open on the exchange,
    with their exchange-side TP/SL when the engine knows them: after a dropped SSH session the
    log is where the trader reads what is still at risk."""
    parts = []
    for p in sorted(engine.positions(), key=lambda p: (p.symbol, p.pos_side)):
        tp, sl = (engine.tp_sl(p.symbol, p.pos_side) if isinstance(engine, ProtectionView)
                  else (None, None))
        parts.append(f"{p.symbol} {p.side.value} {p.contracts.normalize():f} ct "
                     f"({p.coins.normalize():f}) entry {p.entry_price.normalize():f} "
                     f"TP {'-' if tp is None else format(tp.normalize(), 'f')} "
                     f"SL {'-' if sl is None else format(sl.normalize(), 'f')}")
    left = "; ".join(parts) if parts else "none"
    logger.info(f"STOP ({reason}): {len(parts)} position(s) left open on the exchange: {left}")


async def _headless(settings: Settings, duration: float | None, banner: str) -> int:
    stop = asyncio.Event()
    why: list[str] = []
    loop = asyncio.get_running_loop()

    def stopped(name: str) -> None:
        if not stop.is_set():
            why.append(name)
            logger.warning(f"{name}: stopping the {banner} engine")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopped, sig.name)
    with contextlib.suppress(NotImplementedError, RuntimeError):  # a closed SSH session
        loop.add_signal_handler(signal.SIGHUP, logger.info, "SIGHUP ignored: the engine runs on "
                                "until SIGTERM or SIGINT (consoles attach with `perpdesk attach`)")
    try:
        async with build_stack(settings) as stack, serving(stack, settings) as server:
            where = stack.sim.url if stack.sim is not None else stack.venue.address  # type: ignore[attr-defined]
            freeze_startup_heap()
            print(f"perpdesk {banner}: {settings.exchange.venue} at {where}, journal "
                  f"{settings.journal.dir}, strategy {stack.strategy.name if stack.strategy else 'none'}"
                  + (f", control socket {server.path}" if server is not None else "")
                  + (f", stopping after {duration:g} s" if duration else "; Ctrl-C to stop"),
                  flush=True)
            try:
                await asyncio.wait_for(stop.wait(), duration)
            except TimeoutError:
                why.append("duration")
            reason = why[0] if why else "stop"
            logger.info(f"{banner}: stopping ({reason})")
            if server is not None:
                server.reason = f"engine stopped ({reason})"
            log_stop(stack.engine, reason)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return 0


def run_headless(settings: Settings, duration: float | None, banner: str = "headless") -> int:
    """`perpdesk serve` (and its alias `--headless`): the engine, strategy, risk guard and
    journal with no UI, plus the control socket consoles attach to (core/service/); runs until
    SIGINT/SIGTERM or ``duration``. SIGHUP is ignored (a closed terminal must not stop it).

    2, with one stderr line, if it cannot start or if journal rows could not be written at stop
    (a run that lost rows must not look like a clean one to a supervisor or a script).
    """
    try:
        return asyncio.run(_headless(settings, duration, banner))
    except PerpdeskError as exc:
        print(exc.message, file=sys.stderr)
        logger.error(f"headless could not run: {exc.message}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
