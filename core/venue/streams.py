"""The life of one exchange WebSocket connection, whichever the exchange (``websockets``).

Every venue's stream keeps its endpoint the same way: connect, log in and subscribe (the
exchange's protocol), serve until the socket closes, and reconnect with exponential backoff and
jitter until ``stop()``; a ping every interval and no pong in time cuts the link (the exchanges
drop an idle connection, and a half-open one says nothing). Status goes to ``on_status`` on every
state change; a CONNECTED after a DISCONNECTED means pushes may have been missed and the consumer
must resync from REST. Latency measurements (ping -> pong round trip) arrive as repeated
CONNECTED statuses with ``message="latency"`` so they never look like a state change.

Receiving: each whole text message is handed to the venue's frame handler inside the library's
``data_received`` (``DirectConnection``), as soon as the protocol has decoded it from the socket's
bytes, instead of being queued for a reader task that the loop wakes once per message (at the
exchanges' push rates most reads hold one message, so that wake-up, its future and the queue were
a good part of a push's cost). Order is kept: a message goes straight through only when nothing
is queued before it; what is queued (the handshake's answers, a fragmented message, a frame that
is not valid UTF-8) is read by ``pump`` as before, and the library still answers pings, fails a
protocol error and closes the connection.

Compression: permessage-deflate is offered to a remote exchange (the library's default: a mark
push shrinks to a fraction on the wire, and the wire is the internet) and not offered to a
loopback address (the embedded simulator, a local relay), where nothing crosses a network and
inflating every frame is pure CPU on the loop the console shares.

What differs per exchange (login, subscribe, the ping frame, telling a pong from a push) is each
venue's subclass: core.venue.okx_stream.OkxStream, core.venue.bybit_stream.BybitStream.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.typing import Data

from core.events import LinkState, StreamStatus
from core.support.net import is_loopback

Message = dict[str, Any]


def compression_for(url: str) -> str | None:
    """The compression a stream to ``url`` offers: none to a loopback host, else permessage-deflate."""
    return None if is_loopback(urlsplit(url).hostname or "") else "deflate"


FRAME_SHOWN = 80  # characters of a skipped frame the log shows: enough to tell what it was
NOT_JSON = "not valid JSON"


def skip_frame(venue: str, stream: str, raw: str | bytes, reason: str,
               on_malformed: Callable[[str], None] | None) -> None:
    """The one rule for a frame a stream cannot read (``reason``: not JSON, or not the exchange's
    message shape): one plain WARNING line naming the venue and the stream, with the frame's
    length and its head (``FRAME_SHOWN`` characters, cut with "..."), and ``on_malformed`` told so
    the consumer can resync from REST. The stream reads on: one garbled frame is the sender's (or
    a proxy's) fault, and dropping the connection for it would lose every push queued behind it.
    """
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "replace"))
    head = repr(text[:FRAME_SHOWN]) + ("..." if len(text) > FRAME_SHOWN else "")
    logger.warning(f"WS {stream} skipped a malformed frame from {venue} ({size} bytes, {reason}): {head}")
    if on_malformed is not None:
        on_malformed(reason)


class DirectConnection(ClientConnection):
    """A client connection that hands each whole text message to ``on_text`` as the protocol
    decodes it, when no message is queued before it (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_text: Callable[[str], None] | None = None
        self.queued = 0  # whole messages in the library's queue, not read by recv() yet
        self._partial = False  # a fragmented message is being queued

    def process_event(self, event: Any) -> None:
        if self.response is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake's response
            return
        opcode = event.opcode
        on_text = self.on_text
        if (on_text is not None and opcode is Opcode.TEXT and event.fin and not self.queued
                and not self._partial):
            try:
                text = bytes(event.data).decode()
            except UnicodeDecodeError:
                pass  # queued: the library's recv() fails the connection (1007) as it always did
            else:
                try:
                    on_text(text)
                except Exception:  # noqa: BLE001 - a handler bug must not break the connection
                    logger.exception("WS message handler failed")
                return
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
            self._partial = not event.fin
            if event.fin:
                self.queued += 1
        super().process_event(event)

    async def recv(self, decode: bool | None = None) -> Data:  # type: ignore[override]
        message = await super().recv(decode)
        self.queued -= 1
        return message


class StreamHandshakeError(Exception):
    """Login or subscribe was refused; the connection is retried with backoff."""


class LoginTimeRejected(StreamHandshakeError):
    """Login refused for its timestamp: the clock must be re-read before retrying."""


class Stream:
    """Keeps one WS endpoint connected until ``stop()``; the exchange's protocol is the subclass's
    (``_handshake``, ``pump``, ``_ping``; ``pump`` sets ``_pong`` when a pong arrives)."""

    def __init__(
        self,
        name: str,
        url: str,
        on_message: Callable[[Message], None],
        on_status: Callable[[StreamStatus], None],
        *,
        ping_interval: float = 18.0,
        pong_timeout: float = 10.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        handshake_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        on_malformed: Callable[[str], None] | None = None,
        resync_clock: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self._on_message = on_message
        self._on_status = on_status
        self._ping_interval = ping_interval
        self._pong_timeout = pong_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._handshake_timeout = handshake_timeout
        self._clock = clock  # seconds, corrected to the exchange's time (login is signed with it)
        self._on_malformed = on_malformed
        self._resync_clock = resync_clock
        self._stop = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._pong = asyncio.Event()
        self.latency_ms: float | None = None
        self.extensions: tuple[str, ...] = ()  # what the server agreed to on the current connection
        self.state = LinkState.DISCONNECTED

    async def _handshake(self, ws: ClientConnection) -> None:
        """Login (if private) then subscribe, in the exchange's words."""
        raise NotImplementedError

    def _frame(self, raw: str | bytes) -> None:
        """One message from the socket: decode it and hand it over (or note the pong)."""
        raise NotImplementedError

    async def pump(self, ws: ClientConnection) -> None:
        """Hand over every message until the socket closes: on a ``DirectConnection`` as each
        is decoded (see the module's docstring), and whatever the library queued (or any async
        iterable of frames: a benchmark's recorded ones) from its queue, in order.

        Public so a benchmark can feed recorded frames through the same path; ``run`` calls it
        once the handshake is done.
        """
        frame = self._frame
        direct = ws if isinstance(ws, DirectConnection) else None
        if direct is not None:
            direct.on_text = frame
        try:
            async for raw in ws:
                frame(raw)
        except ConnectionClosed:
            pass
        finally:
            if direct is not None:
                direct.on_text = None

    async def _ping(self, ws: ClientConnection) -> None:
        """Send the exchange's ping frame."""
        raise NotImplementedError

    def _status(self, state: LinkState, message: str = "") -> None:
        self.state = state
        self._on_status(StreamStatus(stream=self.name, state=state, latency_ms=self.latency_ms,
                                     message=message, ts=datetime.now(UTC)))

    def connector(self) -> connect:
        """The connection as ``run()`` opens it (each ``await`` or ``async with`` is one attempt)."""
        return connect(self.url, ping_interval=None, open_timeout=self._handshake_timeout,
                       close_timeout=2, max_size=2**23, compression=compression_for(self.url),
                       create_connection=DirectConnection)

    async def stop(self) -> None:
        """Stop reconnecting and close the socket; ``run()`` returns soon after."""
        self._stop.set()
        if self._ws is not None:
            await self._ws.close()

    async def run(self) -> None:
        """Connect, serve, and reconnect with backoff until ``stop()``."""
        delay = self._backoff_initial
        while not self._stop.is_set():
            self._status(LinkState.CONNECTING)
            reason = "closed by the exchange"
            try:
                async with self.connector() as ws:
                    self._ws = ws
                    self.extensions = tuple(ext.name for ext in ws.protocol.extensions)
                    if self._stop.is_set():
                        break
                    await self._handshake(ws)
                    self._status(LinkState.CONNECTED)
                    delay = self._backoff_initial
                    keepalive = asyncio.create_task(self._keepalive(ws))
                    try:
                        await self.pump(ws)
                    finally:
                        keepalive.cancel()
                    if ws.close_code is not None:
                        reason = f"closed by the exchange (code {ws.close_code})"
                    if keepalive.done() and not keepalive.cancelled() and keepalive.exception() is None:
                        reason = keepalive.result() or reason
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionClosed, StreamHandshakeError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
                if isinstance(exc, LoginTimeRejected) and self._resync_clock is not None:
                    with contextlib.suppress(Exception):
                        await self._resync_clock()  # the next login is signed with the new offset
            except Exception as exc:  # noqa: BLE001 - any failure means reconnect, never a dead stream
                logger.exception(f"WS {self.name} unexpected error")
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
                self.extensions = ()
            if self._stop.is_set():
                break
            self._status(LinkState.DISCONNECTED, reason)
            logger.warning(f"WS {self.name} DISCONNECTED {self.url}: {reason}; retry in {delay:.1f}s")
            try:
                await asyncio.wait_for(self._stop.wait(), delay * random.uniform(0.8, 1.2))
            except TimeoutError:
                pass
            delay = min(delay * 2, self._backoff_max)
        self._status(LinkState.DISCONNECTED, "stopped")

    async def _keepalive(self, ws: ClientConnection) -> str | None:
        """A ping every interval; no pong in time -> close the socket (reconnect follows)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._ping_interval)
            self._pong.clear()
            sent = loop.time()
            await self._ping(ws)
            try:
                await asyncio.wait_for(self._pong.wait(), self._pong_timeout)
            except TimeoutError:
                reason = f"no pong within {self._pong_timeout:g} s"
                ws.transport.abort()
                return reason
            self.latency_ms = round((loop.time() - sent) * 1000, 1)
            self._status(LinkState.CONNECTED, "latency")
