"""Back-pressure: a console that stops reading is dropped once MAX_QUEUE ordered events wait for
it (the engine never waits on it), and it comes back without a gap: resumed from its last
sequence number while the engine's ring still holds what it missed.

The engine stack runs in this process (embedded simulator, frozen market); the console is a raw
client on the real socket that simply stops reading.
"""
from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from core.events import NoticeLevel
from core.service import protocol as proto
from core.service.host import serving
from core.service.runner import build_stack
from core.service.server import MAX_QUEUE
from tests.helpers.runner_helpers import _settings
from tests.helpers.service_helpers import RawClient

pytestmark = pytest.mark.timeout(120)


def _read_all(sock: socket.socket) -> bytes:
    """What the engine had sent before it dropped the connection, up to the end."""
    sock.settimeout(10)
    data = b""
    while chunk := sock.recv(1 << 20):
        data += chunk
    return data


async def test_a_console_that_stops_reading_is_dropped_and_resumes_without_a_gap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERPDESK_RUNTIME_DIR", str(tmp_path / "run"))
    settings = _settings(tmp_path)
    async with build_stack(settings) as stack, serving(stack, settings) as server:
        assert server is not None
        stuck = socket.socket(socket.AF_UNIX)  # outside the event loop: nothing reads for it
        stuck.connect(str(server.path))
        stuck.setblocking(True)
        stuck.sendall(proto.frame({"t": "hello", "v": proto.PROTOCOL_VERSION, "role": "console"}))
        await asyncio.sleep(0.3)
        assert len(server.clients) == 1

        n = MAX_QUEUE + 2000
        text = "x" * 1500  # big enough to fill the socket buffers long before the queue
        started = time.perf_counter()
        for i in range(n):
            stack.engine.notice(NoticeLevel.INFO, f"{i} {text}")
            if i % 500 == 0:
                await asyncio.sleep(0)  # let the writer run: it fills the socket, then waits
        per_event_us = (time.perf_counter() - started) / n * 1e6
        await asyncio.sleep(0.2)
        assert len(server.clients) == 0, "the console that stopped reading was not dropped"
        print(f"{n} notices published with a stuck console attached: {per_event_us:.0f} us each")

        data = _read_all(stuck)
        complete = data[:data.rfind(b"\n") + 1]  # the drop may cut the last frame short
        frames = [proto.parse(line) for line in complete.splitlines()]
        stuck.close()
        hello, snapshot = frames[0], frames[1]
        assert hello["t"] == "hello" and snapshot["t"] == "snapshot"
        last = snapshot["seq"]
        seqs = [f["seq"] for f in frames[2:] if f["t"] == "ev" and f["e"]["type"] == "Notice"]
        assert seqs and seqs == list(range(last + 1, last + 1 + len(seqs)))  # in order, no gap
        assert len(seqs) < n

        back = await RawClient.open(server.path, session=hello["session"], seq=seqs[-1])
        assert (await back.next("snapshot"))["resumed"] is True
        rest = [(await back.next("ev"))["seq"] for _ in range(n - len(seqs))]
        assert rest == list(range(seqs[-1] + 1, seqs[-1] + 1 + n - len(seqs)))  # no gap, no repeat
        await back.close()
