"""Every account, live: LISTEN for status notifications on a dedicated connection.

Why a catch-up query after every (re)connect and a refresh each second besides: a notification
sent while the listener was away is lost for good, and an engine that died sends none at all;
its heartbeat only grows old, and a reader must show that row as stale, not as fine.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from core.store.connect import STATUS_CHANNEL, connect, describe
from core.store.errors import StoreError
from core.store.queries import AccountRow, fetch_accounts

REFRESH_S = 1.0  # heartbeat ages move even when nothing is notified
RETRY_S = 2.0
COALESCE_S = 0.1  # a burst of notifications is one query
QUERY_TIMEOUT_S = 10.0


class AccountsWatch:
    """Calls ``on_rows(rows)`` with the accounts table on every change (and ``on_error(text)``
    while the store cannot be read), until ``stop()``."""

    def __init__(self, url: str, on_rows: Callable[[list[AccountRow]], None],
                 on_error: Callable[[str], None]) -> None:
        self.url = url
        self.on_rows = on_rows
        self.on_error = on_error
        self.connects = 0
        self._task: asyncio.Task[None] | None = None
        self._dirty: asyncio.Event | None = None

    def start(self) -> None:
        self._dirty = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="accounts-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def _notified(self, *_args: Any) -> None:
        if self._dirty is not None:
            self._dirty.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except StoreError as exc:
                self.on_error(exc.message)
            except Exception as exc:  # noqa: BLE001 - the server went away: say so, reconnect
                self.on_error(f"store connection lost: {describe(exc)}; reconnecting")
            await asyncio.sleep(RETRY_S)

    async def _session(self) -> None:
        assert self._dirty is not None
        listener = await connect(self.url, what="accounts")
        reader = None
        try:
            reader = await connect(self.url, what="accounts")
            await listener.add_listener(STATUS_CHANNEL, self._notified)
            self.connects += 1
            while True:
                rows = await asyncio.wait_for(fetch_accounts(reader), QUERY_TIMEOUT_S)
                self.on_rows(rows)  # the first one is the catch-up
                if listener.is_closed() or reader.is_closed():
                    raise StoreError("store connection lost; reconnecting")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._dirty.wait(), REFRESH_S)
                self._dirty.clear()
                await asyncio.sleep(COALESCE_S)
        finally:
            for conn in (listener, reader):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
