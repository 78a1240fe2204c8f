"""A raw client of the control socket (tests that speak the protocol frame by frame)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from core.service import protocol as proto
from core.service.codec import encode


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
