"""A raw client of the control socket (tests that speak the protocol frame by frame), a remote engine
attached to a serve, and reading its journal safely."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from console.remote import RemoteEngine
from core.events import PlaceOrder
from core.model import OrderSide
from core.service import protocol as proto
from core.service.codec import encode
from tests.helpers.engine_helpers import BTC


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


async def _order(remote: RemoteEngine, side: OrderSide, contracts: str) -> None:
    result = await remote.submit(PlaceOrder(BTC, side, D(contracts)))
    assert result.ok, result

