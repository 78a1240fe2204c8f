"""Commands and calls an attached console sent and the engine has not answered yet.

A command gets a random id and stays pending until its result arrives; after a reconnect to the
same engine run it is sent again with the same id, and the engine answers with the first
execution's result instead of running it twice. If the engine restarted meanwhile nothing is known
of it, and it fails with a line saying so (never sent a second time). A call (flush, reconcile)
waiting on an engine that restarted fails the same way.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from core.events import CommandResult
from core.service.codec import WireError, decode
from core.support.errors import PerpdeskError


class EngineUnavailable(PerpdeskError):
    """No engine answers on the socket, or it refused this console (one line saying why)."""


class PendingCommands:
    """The futures of the commands and calls in flight, by id."""

    def __init__(self) -> None:
        self.commands: dict[str, tuple[bytes, asyncio.Future[CommandResult]]] = {}
        self.calls: dict[str, asyncio.Future[Any]] = {}

    def command(self, cid: str, payload: bytes) -> asyncio.Future[CommandResult]:
        """A command sent (or to be sent once connected) as ``payload``: its result, when it comes."""
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self.commands[cid] = (payload, future)
        return future

    def call(self, cid: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.calls[cid] = future
        return future

    def result(self, message: dict[str, Any]) -> None:
        """The engine's ``result`` frame: the command of that id is answered."""
        entry = self.commands.pop(str(message.get("id")), None)
        if entry is not None and not entry[1].done():
            try:
                entry[1].set_result(decode(message["r"], CommandResult))
            except WireError as exc:
                entry[1].set_result(CommandResult(False, f"unreadable answer: {exc}"))

    def reply(self, message: dict[str, Any]) -> None:
        """The engine's ``reply`` frame: the call of that id returns or raises."""
        future = self.calls.pop(str(message.get("id")), None)
        if future is not None and not future.done():
            if message.get("ok"):
                future.set_result(message.get("value"))
            else:
                future.set_exception(PerpdeskError(str(message.get("error"))))

    def reconnected(self, same_run: bool, send: Callable[[bytes], bool]) -> None:
        """Commands not answered yet: again with their ids (the engine runs each once), or, if
        the engine restarted meanwhile, failed: nothing is known of them."""
        for cid, (payload, future) in list(self.commands.items()):
            if same_run:
                send(payload)
            else:
                del self.commands[cid]
                if not future.done():
                    future.set_result(CommandResult(
                        False, "the engine restarted before answering: nothing is known of this "
                               "command; check the positions before sending it again"))
        for future in self.calls.values():
            if not same_run and not future.done():
                future.set_exception(EngineUnavailable("the engine restarted before answering"))
