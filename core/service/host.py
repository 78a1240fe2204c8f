"""The control socket around a running stack: started once the engine is up, stopped (telling
every console why) before the stack stops. Used by `perpdesk serve` / `--headless` and by the
plain console, so that any engine on this host can be attached to and listed by `status`."""
from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger

from core.journal.binding import journal_account
from core.service.paths import RuntimeDirError, socket_path
from core.service.server import ControlServer

if TYPE_CHECKING:
    from core.engine import Engine
    from core.journal import Journal
    from core.service.lock import EngineLock
    from core.settings.config import Settings


class Stack(Protocol):
    """What the control socket needs of a running stack (``core.service.runner.Stack`` is one)."""

    @property
    def engine(self) -> Engine: ...
    @property
    def venue(self) -> object: ...
    @property
    def journal(self) -> Journal: ...
    @property
    def lock(self) -> EngineLock | None: ...


def engine_info(stack: Stack, settings: Settings, started: datetime) -> dict[str, Any]:
    """One engine as `perpdesk status` and an attaching console's header know it."""
    engine = stack.engine
    account = engine.account()
    risk = engine.risk_status()
    ident = journal_account(settings, stack.venue)
    return {
        "pid": os.getpid(), "host": socket.gethostname(), "started": started.isoformat(),
        "journal": str(settings.journal.dir.resolve()), "config": str(settings.config_path),
        "logs": str(settings.logs.dir.resolve()),
        "venue": ident.venue, "account": ident.uid, "sandbox": ident.sandbox,
        "strategy": risk.strategy, "strategy_running": risk.strategy_running,
        "trading": risk.state.value, "read_only": engine.read_only,
        "equity": format(account.equity, "f") if account is not None else None,
        "ccy": account.ccy if account is not None else "",
        "positions": len(engine.positions()),
    }


@contextlib.asynccontextmanager
async def serving(stack: Stack, settings: Settings) -> AsyncIterator[ControlServer | None]:
    """The stack's control socket for the time of the block; ``server.reason`` (set by the
    caller) is what every console is told at the end. None, with a warning, when the socket
    cannot be opened: the engine still runs (a console on it cannot attach)."""
    started = datetime.now(UTC)
    try:
        path = socket_path(settings.journal.dir)
    except RuntimeDirError as exc:
        logger.warning(f"SERVICE no control socket: {exc.message}")
        yield None
        return
    server = ControlServer(stack.engine, path, info=lambda: engine_info(stack, settings, started),
                           flush=stack.journal.flush)
    try:
        await server.start()
    except (RuntimeDirError, OSError) as exc:
        logger.warning(f"SERVICE no control socket at {path}: {getattr(exc, 'message', exc)}")
        yield None
        return
    if stack.lock is not None:
        stack.lock.set_socket(str(path))
    try:
        yield server
    finally:
        await server.stop(server.reason)
