"""A stream hands each whole text message over as the protocol decodes it, in order
(core/venue/streams.py, DirectConnection): no reader task woken per message, nothing reordered
behind what is queued, fragmented messages and the keepalive as before. A real websockets server
on a loopback port speaks to the streams of both venues."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

from core.events import LinkState, StreamStatus
from core.venue.bybit_stream import BybitStream
from core.venue.okx_stream import OkxStream
from core.venue.streams import DirectConnection, Stream

pytestmark = pytest.mark.timeout(30)

Handler = Callable[[ServerConnection], Awaitable[None]]


def okx_push(n: int) -> str:
    return orjson.dumps({"arg": {"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
                         "data": [{"instId": "BTC-USDT-SWAP", "markPx": str(60000 + n)}]}).decode()


def bybit_push(n: int) -> str:
    return orjson.dumps({"topic": "tickers.BTCUSDT", "data": {"markPrice": str(60000 + n)}}).decode()


def number(msg: dict[str, Any]) -> int:
    data = msg["data"]
    item = data[0] if isinstance(data, list) else data
    return int(item.get("markPx") or item["markPrice"]) - 60000


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, compression=None) as srv:
        yield f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}"


async def until(check: Callable[[], bool]) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 5 s")


@pytest.mark.parametrize(("make", "push"), [(OkxStream, okx_push), (BybitStream, bybit_push)])
async def test_each_message_is_handed_over_as_it_is_read_not_by_a_woken_task(
        make: type[Stream], push: Callable[[int], str]) -> None:
    # before: the connection queued each message and the stream's task was woken to read it
    # (the handler ran inside that task); now the handler runs inside the read itself
    got: list[tuple[int, bool]] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await asyncio.sleep(0.2)  # the stream is serving by then (what comes before is queued)
        for n in range(1, 21):
            await ws.send(push(n))
            await asyncio.sleep(0.001)
        await done.wait()

    def on_message(msg: dict[str, Any]) -> None:
        got.append((number(msg), asyncio.current_task() is None))
        if len(got) == 20:
            done.set()

    async with server(handler) as url:
        stream = make("public", url, [], on_message, lambda _: None)  # type: ignore[call-arg]
        task = asyncio.create_task(stream.run())
        await asyncio.wait_for(done.wait(), 10)
        await stream.stop()
        await task
    assert [n for n, _ in got] == list(range(1, 21))
    assert all(direct for _, direct in got), got


async def test_a_message_read_while_earlier_ones_are_queued_waits_behind_them() -> None:
    # the handshake leaves three messages queued; the two that arrive once the stream hands
    # messages over directly must not overtake them
    release = asyncio.Event()
    got: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        for n in (1, 2, 3):
            await ws.send(okx_push(n))
        await release.wait()
        for n in (4, 5):
            await ws.send(okx_push(n))
        await ws.wait_closed()

    stream = OkxStream("public", "", [], lambda msg: got.append(number(msg)), lambda _: None)
    async with server(handler) as url:
        stream.url = url
        async with stream.connector() as ws:
            assert isinstance(ws, DirectConnection)
            await until(lambda: ws.queued == 3)
            ws.on_text = lambda raw: got.append(-1)  # what pump() will set: must not be called yet
            release.set()
            await asyncio.sleep(0.2)  # 4 and 5 are read meanwhile
            assert got == [] and ws.queued == 5
            ws.on_text = None
            pump = asyncio.create_task(stream.pump(ws))
            await until(lambda: len(got) == 5)
            assert ws.queued == 0
            await ws.close()
            await pump
    assert got == [1, 2, 3, 4, 5]


async def test_a_fragmented_message_is_assembled_and_kept_in_order() -> None:
    got: list[int] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(okx_push(1))
        text = okx_push(2)
        await ws.send([text[:20], text[20:50], text[50:]])  # one message in three frames
        await ws.send(okx_push(3))
        await done.wait()

    def on_message(msg: dict[str, Any]) -> None:
        got.append(number(msg))
        if len(got) == 3:
            done.set()

    async with server(handler) as url:
        stream = OkxStream("public", url, [], on_message, lambda _: None)
        task = asyncio.create_task(stream.run())
        await asyncio.wait_for(done.wait(), 10)
        await stream.stop()
        await task
    assert got == [1, 2, 3]


async def test_the_keepalive_still_reads_its_pong_and_a_silent_link_is_still_cut() -> None:
    statuses: list[StreamStatus] = []
    answer = asyncio.Event()
    answer.set()

    async def handler(ws: ServerConnection) -> None:
        async for raw in ws:
            if raw == "ping" and answer.is_set():
                await ws.send("pong")

    async with server(handler) as url:
        stream = OkxStream("public", url, [], lambda _: None, statuses.append,
                           ping_interval=0.05, pong_timeout=0.3)
        task = asyncio.create_task(stream.run())
        await until(lambda: any(s.message == "latency" for s in statuses))
        answer.clear()  # the link goes silent: no pong, the stream cuts it and reconnects
        await until(lambda: any(s.state is LinkState.DISCONNECTED and "no pong" in s.message
                                for s in statuses))
        await stream.stop()
        await task


async def test_a_text_message_that_is_not_utf8_still_fails_the_connection() -> None:
    # it goes to the library's queue, whose reader fails the connection as before (nothing after
    # it is handed over); the messages before it are, and the stream reconnects
    statuses: list[StreamStatus] = []
    got: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        await asyncio.sleep(0.2)
        await ws.send(okx_push(1))
        await ws.send(b'{"arg": "\xff\xfe"}', text=True)
        await ws.send(okx_push(2))
        await ws.wait_closed()

    async with server(handler) as url:
        stream = OkxStream("public", url, [], lambda msg: got.append(number(msg)), statuses.append)
        task = asyncio.create_task(stream.run())
        await until(lambda: any(s.state is LinkState.DISCONNECTED for s in statuses))
        await stream.stop()
        await task
    assert got == [1]
    cut = next(s for s in statuses if s.state is LinkState.DISCONNECTED)
    assert "closed" in cut.message, cut.message
