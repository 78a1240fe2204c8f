"""`perpdesk attach [--read-only]`: the console of an engine running in another process.

The engine is found through its journal folder's lock (core/service/lock.py, which names its
control socket), else at the socket path the journal folder maps to (core/service/paths.py). The
console is the usual PerpdeskApp on a RemoteEngine (console/remote.py). Leaving it, however it
ends (q, SIGTERM, SIGINT, SIGHUP of a closed SSH session), only detaches: the engine and its
strategy go on.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from console.errors import describe, expected_errors, log_line
from core.support.errors import EXIT_FAIL

if TYPE_CHECKING:
    from core.settings.config import Settings


def engine_socket(settings: Settings) -> Path | None:
    """The control socket of the engine running on this config's journal, None if none runs."""
    from core.service.lock import read_holder
    from core.service.paths import socket_path

    holder = read_holder(settings.journal.dir)
    if holder is None:
        return None
    return Path(holder.socket) if holder.socket else socket_path(settings.journal.dir)


async def _attach(settings: Settings, read_only: bool) -> int:
    # imported here, not at the top: plain `perpdesk` imports this module for engine_socket()
    # before its first paint, and the remote engine's codec pulls in the engine (~0.1 s)
    from console.app import build_app
    from console.lifecycle import Lifecycle, hangup_safe
    from console.remote import EngineUnavailable, RemoteEngine
    from core.support.logs import flush_logs

    path = engine_socket(settings)
    if path is None:
        raise EngineUnavailable(f"perpdesk attach: no engine runs on journal {settings.journal.dir}; "
                                f"start one with `perpdesk --config {settings.config_path} serve`")
    remote = RemoteEngine(path, read_only=read_only)
    await remote.connect()
    app = build_app(remote, settings, read_only=read_only, freeze_heap=True)
    info = remote.info
    hello = (f"attached to engine pid {info.get('pid')} ({info.get('venue')}, journal "
             f"{info.get('journal')}){' read-only' if read_only else ''}: q detaches, the engine runs on")
    log_line("INFO", hello)
    app.after_first_frame = lambda: app.say(hello)  # once the panes are on screen
    lifecycle = Lifecycle(lambda: app.exit(0), "stop")  # every way out only detaches
    lifecycle.install()
    app.driver_class = hangup_safe(app.driver_class, lifecycle.terminal_lost)
    remote.start()
    try:
        await app.run_async()
    finally:
        await remote.close()
        lifecycle.uninstall()
        flush_logs()
    return app.return_code or 0


def run_attach(settings: Settings, read_only: bool = False) -> int:
    """Attach this terminal to the engine of ``settings``' journal; 2 with one line if none."""
    try:
        return asyncio.run(_attach(settings, read_only))
    except expected_errors() as exc:
        print(describe(exc), file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 0
