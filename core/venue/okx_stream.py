"""One OKX v5 WebSocket connection (public, private or business) on ``websockets``.

Why our own client and not ccxt.pro: we keep OKX's raw fields (category, algoId, fillPnl) and pay
only an orjson decode per push. This class owns the connection life: login (private/business),
subscribe, the text ping/pong keepalive OKX requires (it drops a connection idle for 30 s), and
reconnect with exponential backoff + jitter, resubscribing every time. It knows nothing about the
payloads: every ``{"arg":..., "data":[...]}`` push goes to ``on_message`` untouched.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core.events import LinkState, StreamStatus

Message = dict[str, Any]


def login_args(api_key: str, secret: str, passphrase: str, ts: int | None = None) -> dict[str, str]:
    """The OKX WS login arg: sign = base64(HMAC-SHA256(secret, ts + "GET" + "/users/self/verify"))."""
    stamp = str(int(time.time()) if ts is None else ts)
    digest = hmac.new(secret.encode(), f"{stamp}GET/users/self/verify".encode(), hashlib.sha256).digest()
    return {"apiKey": api_key, "passphrase": passphrase, "timestamp": stamp,
            "sign": base64.b64encode(digest).decode()}


class StreamHandshakeError(Exception):
    """Login or subscribe was refused; the connection is retried with backoff."""


class LoginTimeRejected(StreamHandshakeError):
    """Login refused for its timestamp (OKX 60006): the clock must be re-read before retrying."""


class OkxStream:
    """Keeps one OKX WS endpoint connected and subscribed until ``stop()``.

    Status goes to ``on_status`` on every state change; a CONNECTED after a DISCONNECTED means
    pushes may have been missed and the consumer must resync from REST. Latency measurements
    (ping -> pong round trip) arrive as repeated CONNECTED statuses with ``message="latency"``
    so they never look like a state change.
    """

    def __init__(
        self,
        name: str,
        url: str,
        subscriptions: list[dict[str, str]],
        on_message: Callable[[Message], None],
        on_status: Callable[[StreamStatus], None],
        *,
        credentials: tuple[str, str, str] | None = None,
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
        self._subs = subscriptions
        self._on_message = on_message
        self._on_status = on_status
        self._creds = credentials
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
        self.state = LinkState.DISCONNECTED

    def _status(self, state: LinkState, message: str = "") -> None:
        self.state = state
        self._on_status(StreamStatus(stream=self.name, state=state, latency_ms=self.latency_ms,
                                     message=message, ts=datetime.now(UTC)))

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
                async with connect(self.url, ping_interval=None, open_timeout=self._handshake_timeout,
                                   close_timeout=2, max_size=2**23) as ws:
                    self._ws = ws
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

    async def _handshake(self, ws: ClientConnection) -> None:
        """Login (if private) then subscribe; pushes that arrive meanwhile are dispatched."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._handshake_timeout
        if self._creds is not None:
            login = login_args(*self._creds, ts=int(self._clock()))
            await ws.send(orjson.dumps({"op": "login", "args": [login]}).decode())
            while True:
                msg = await self._next(ws, deadline, "login")
                if msg.get("event") == "login" and str(msg.get("code", "0")) == "0":
                    break
                if msg.get("event") == "error":
                    if str(msg.get("code")) == "60006":
                        raise LoginTimeRejected(
                            f"login refused: {msg.get('msg')} (OKX 60006) — check this computer's "
                            "clock (it must be within 30 s of the exchange's)")
                    raise StreamHandshakeError(
                        f"login refused: {msg.get('msg')} (OKX {msg.get('code')}) — check the API key")
        if not self._subs:
            return
        await ws.send(orjson.dumps({"op": "subscribe", "args": self._subs}).decode())
        answered = 0
        while answered < len(self._subs):
            msg = await self._next(ws, deadline, "subscribe")
            event = msg.get("event")
            if event == "subscribe":
                answered += 1
            elif event == "error":
                answered += 1
                logger.warning(f"WS {self.name} subscribe refused: {msg.get('msg')} (OKX {msg.get('code')})")

    async def _next(self, ws: ClientConnection, deadline: float, what: str) -> Message:
        """Next event message within the handshake deadline; data pushes are dispatched."""
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise StreamHandshakeError(f"no {what} answer within {self._handshake_timeout:g} s")
            raw = await asyncio.wait_for(ws.recv(), left)
            if raw == "pong":
                continue
            msg = self._decode(raw)
            if msg is None:
                continue
            if "data" in msg:
                self._dispatch(msg)
            else:
                return msg

    async def pump(self, ws: ClientConnection) -> None:
        """Hot path: decode and hand over. Returns when the socket closes.

        Public so a benchmark can feed recorded frames through the same loop (any async iterable
        of frames works); ``run`` calls it once the handshake is done.
        """
        try:
            async for raw in ws:
                if raw == "pong":
                    self._pong.set()
                    continue
                msg = self._decode(raw)
                if msg is None:
                    continue
                if "data" in msg:
                    self._dispatch(msg)
                elif msg.get("event") == "error":
                    logger.warning(f"WS {self.name} error: {msg.get('msg')} (OKX {msg.get('code')})")
        except ConnectionClosed:
            pass

    def _decode(self, raw: str | bytes) -> Message | None:
        """One frame -> dict, or None for a frame that is not an OKX JSON object.

        Why not let it raise: a single truncated or garbled frame is the sender's (or a proxy's)
        fault; dropping the whole connection for it would lose every push queued behind it. The
        frame is skipped with one log line and the consumer is told, so it can resync from REST.
        """
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            reason = f"not valid JSON ({exc})"
        else:
            if isinstance(msg, dict) and ("data" not in msg or (
                    isinstance(msg["data"], list) and isinstance(msg.get("arg"), dict))):
                return msg
            reason = "not an OKX message object"
        logger.warning(f"WS {self.name} skipped a malformed frame ({len(raw)} bytes, "
                       f"{reason}): {str(raw[:80])!r}")
        if self._on_malformed is not None:
            self._on_malformed(reason)
        return None

    def _dispatch(self, msg: Message) -> None:
        try:
            self._on_message(msg)
        except Exception:  # noqa: BLE001 - one bad push must not drop the connection
            logger.exception(f"WS {self.name} could not handle push on {msg.get('arg')}")

    async def _keepalive(self, ws: ClientConnection) -> str | None:
        """Text ping every interval; no pong in time -> close the socket (reconnect follows)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._ping_interval)
            self._pong.clear()
            sent = loop.time()
            await ws.send("ping")
            try:
                await asyncio.wait_for(self._pong.wait(), self._pong_timeout)
            except TimeoutError:
                reason = f"no pong within {self._pong_timeout:g} s"
                ws.transport.abort()
                return reason
            self.latency_ms = round((loop.time() - sent) * 1000, 1)
            self._status(LinkState.CONNECTED, "latency")
