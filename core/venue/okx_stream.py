"""One OKX v5 WebSocket connection (public, private or business) on ``websockets``.

Why our own client and not ccxt.pro: we keep OKX's raw fields (category, algoId, fillPnl) and pay
only an orjson decode per push. This class speaks OKX's protocol: login (private/business),
subscribe (again on every reconnect), the text ping/pong keepalive OKX requires (it drops a
connection idle for 30 s); the connection's life (reconnect with exponential backoff + jitter,
status, latency) is core.venue.streams.Stream's. It knows nothing about the payloads: every
``{"arg":..., "data":[...]}`` push goes to ``on_message`` untouched.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import orjson
from loguru import logger
from websockets.asyncio.client import ClientConnection

from core.events import StreamStatus
from core.venue.streams import NOT_JSON, LoginTimeRejected, Message, Stream, StreamHandshakeError, skip_frame

__all__ = ["LoginTimeRejected", "Message", "OkxStream", "StreamHandshakeError", "login_args"]


def login_args(api_key: str, secret: str, passphrase: str, ts: int | None = None) -> dict[str, str]:
    """The OKX WS login arg: sign = base64(HMAC-SHA256(secret, ts + "GET" + "/users/self/verify"))."""
    stamp = str(int(time.time()) if ts is None else ts)
    digest = hmac.new(secret.encode(), f"{stamp}GET/users/self/verify".encode(), hashlib.sha256).digest()
    return {"apiKey": api_key, "passphrase": passphrase, "timestamp": stamp,
            "sign": base64.b64encode(digest).decode()}


class OkxStream(Stream):
    """Keeps one OKX WS endpoint connected and subscribed until ``stop()`` (the connection's life,
    status and latency: core.venue.streams.Stream)."""

    def __init__(
        self,
        name: str,
        url: str,
        subscriptions: list[dict[str, str]],
        on_message: Callable[[Message], None],
        on_status: Callable[[StreamStatus], None],
        *,
        credentials: tuple[str, str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, url, on_message, on_status, **kwargs)
        self._subs = subscriptions
        self._creds = credentials

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

    def _frame(self, raw: str | bytes) -> None:
        """Hot path: one frame decoded and handed over (``pump`` calls it for every frame)."""
        if raw == "pong":
            self._pong.set()
            return
        msg = self._decode(raw)
        if msg is None:
            return
        if "data" in msg:
            self._dispatch(msg)
        elif msg.get("event") == "error":
            logger.warning(f"WS {self.name} error: {msg.get('msg')} (OKX {msg.get('code')})")

    def _decode(self, raw: str | bytes) -> Message | None:
        """One frame -> dict, or None for a frame that is not an OKX JSON object (skipped by the
        rule of ``skip_frame``: logged once, the consumer told, the connection kept)."""
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            reason = NOT_JSON
        else:
            if isinstance(msg, dict) and ("data" not in msg or (
                    isinstance(msg["data"], list) and isinstance(msg.get("arg"), dict))):
                return msg
            reason = "not an OKX message object"
        skip_frame("OKX", self.name, raw, reason, self._on_malformed)
        return None

    def _dispatch(self, msg: Message) -> None:
        try:
            self._on_message(msg)
        except Exception:  # noqa: BLE001 - one bad push must not drop the connection
            logger.exception(f"WS {self.name} could not handle push on {msg.get('arg')}")

    async def _ping(self, ws: ClientConnection) -> None:
        await ws.send("ping")  # OKX's keepalive is the text "ping", answered by "pong"
