"""A raw client of the control socket (tests that speak the protocol frame by frame), a remote engine
attached to a serve, what its console's panes show against the journal, and reading the journal
safely."""
from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from console.remote import RemoteEngine
from core.events import PlaceOrder
from core.journal import read_fills, read_trades
from core.model import OrderSide
from core.service import protocol as proto
from core.service.codec import encode
from tests.helpers.engine_helpers import BTC, wait_for
from tests.helpers.lock_helpers import stop


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, path: Path, role: str = proto.ROLE_CONSOLE, *, version: str = proto.PROTOCOL_VERSION,
                   session: str | None = None, seq: int | None = None) -> RawClient:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=proto.MAX_FRAME)
        client = cls(reader, writer)
        client.send({"t": "hello", "v": version, "role": role, "session": session, "seq": seq})
        return client

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(proto.frame(message))

    def command(self, cid: str, command: object) -> None:
        self.send({"t": "cmd", "id": cid, "cmd": encode(command)})

    async def next(self, kind: str | None = None, timeout: float = 20.0) -> dict[str, Any]:
        """The next frame (of ``kind``, skipping others)."""
        async def read() -> dict[str, Any]:
            while True:
                line = await self.reader.readline()
                if not line:
                    raise EOFError("the engine closed the connection")
                message = proto.parse(line)
                if kind is None or message["t"] == kind:
                    return message
        return await asyncio.wait_for(read(), timeout)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (OSError, ConnectionError):
            pass


def _safe(read, directory: Path) -> list:  # type: ignore[no-untyped-def]
    try:
        return read(directory)
    except Exception:  # noqa: BLE001 - a file being appended to
        return []


async def _attached(path: Path, **kw: object) -> RemoteEngine:
    remote = RemoteEngine(path, **kw)  # type: ignore[arg-type]
    await remote.connect()
    remote.start()
    return remote


class _Console:
    """What a console's panes receive: the real FeedBuffer fed by the remote engine, seeded from
    today's journal as PerpdeskApp does, drained into the lists of row ids the panes would show."""

    def __init__(self, remote: RemoteEngine) -> None:
        from console.feed import FeedBuffer

        self.remote = remote
        self.feed = FeedBuffer()
        remote.subscribe(self.feed.push)
        self.fills: list[str] = []
        self.closes: list[str] = []

    async def seed(self) -> None:
        self._take(self.feed.seed(await self.remote.today_history(datetime.now(UTC).date())))

    def drain(self) -> None:
        self._take(self.feed.drain())

    def _take(self, batch: Any) -> None:
        self.fills += [f.fill_id for f in batch.fills]
        self.closes += [c.close_key for c in batch.closes]

    async def settle(self, journal: Path, fills: int) -> None:
        """Wait until ``fills`` fills are journaled and every one is on the panes, then a second
        more (a fill that would arrive twice has arrived by then)."""
        await wait_for(lambda: len(_safe(read_fills, journal)) == fills, 20, f"{fills} fills journaled")
        await wait_for(lambda: self.drain() or len(set(self.fills)) == fills, 20, "every fill on the panes")
        await asyncio.sleep(1.0)
        self.drain()

    def assert_shows_the_journal(self, journal: Path, closes: int) -> None:
        """The panes hold each journaled fill and close exactly once: none missing, none twice."""
        journal_fills = [f["fill_id"] for f in read_fills(journal)]
        journal_closes = [r["close_id"] for r in read_trades(journal)]
        assert sorted(self.fills) == sorted(journal_fills)
        assert sorted(self.closes) == sorted(journal_closes) and len(journal_closes) == closes


async def trade_then_lose_the_engine(remote: RemoteEngine, console: _Console,
                                     proc: subprocess.Popen[str]) -> None:
    """The attached console buys 2 and sells 1 (two fills on its panes); then the engine stops
    and the console sees it go."""
    await _order(remote, OrderSide.BUY, "2")
    await _order(remote, OrderSide.SELL, "1")
    await wait_for(lambda: console.drain() or len(console.fills) == 2, 20, "two fills on the panes")
    assert stop(proc) == 0
    await wait_for(lambda: not remote.connected, 10, "the console to see the engine go")


async def close_remotes(*remotes: RemoteEngine | None) -> None:
    """Detach every console a test attached (None: never attached)."""
    for remote in remotes:
        if remote is not None:
            await remote.close()


async def _order(remote: RemoteEngine, side: OrderSide, contracts: str) -> None:
    result = await remote.submit(PlaceOrder(BTC, side, D(contracts)))
    assert result.ok, result

