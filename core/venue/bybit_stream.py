"""One Bybit v5 WebSocket connection (/v5/public/linear or /v5/private) on ``websockets``.

The connection life (reconnect with backoff and jitter, status, stop, the keepalive) is every
venue's (core.venue.streams.Stream); what differs is Bybit's protocol, written down in its
wss-authentication page: ``{"op": "auth", "args": [apiKey, expires, signature]}`` with signature =
hex(HMAC-SHA256(secret, "GET/realtime" + expires)); ``{"op": "subscribe", "args": [topics]}``
answered once with ``success``; a JSON ``{"op": "ping"}`` every 20 s (Bybit drops a silent
connection), answered by ``ret_msg: "pong"`` (public) or ``op: "pong"`` (private). Every
``{"topic": ..., "data": ...}`` frame goes to ``on_message`` untouched.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
from typing import Any

import orjson
from loguru import logger
from websockets.asyncio.client import ClientConnection

from core.venue.streams import NOT_JSON, LoginTimeRejected, Message, Stream, StreamHandshakeError, skip_frame

EXPIRES_AHEAD_MS = 10_000  # an auth request stays valid this long (Bybit refuses an expired one)
_req_ids = itertools.count(1)


def auth_args(api_key: str, secret: str, now_ms: int) -> list[str]:
    expires = str(now_ms + EXPIRES_AHEAD_MS)
    signature = hmac.new(secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
    return [api_key, expires, signature]


def _is_pong(msg: Message) -> bool:
    return msg.get("op") == "pong" or (msg.get("op") == "ping" and msg.get("ret_msg") == "pong")


class BybitStream(Stream):
    """Keeps one Bybit WS endpoint connected and subscribed until ``stop()``.

    ``subscriptions`` are Bybit topic strings; ``credentials`` (key, secret) make it a private
    stream (auth first). Status and latency are told as the OKX stream tells them.
    """

    def __init__(self, name: str, url: str, topics: list[str], *args: Any,
                 credentials: tuple[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("ping_interval", 20.0)
        super().__init__(name, url, *args, **kwargs)
        self._topics = topics
        self._bybit_creds = credentials

    async def _handshake(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._handshake_timeout
        if self._bybit_creds is not None:
            args = auth_args(*self._bybit_creds, now_ms=int(self._clock() * 1000))
            await ws.send(orjson.dumps({"req_id": f"auth{next(_req_ids)}", "op": "auth", "args": args}).decode())
            msg = await self._reply(ws, deadline, "auth")
            if msg.get("success") is not True:
                said = str(msg.get("ret_msg") or msg.get("retMsg") or "")
                if "expire" in said.lower() or "timestamp" in said.lower():
                    raise LoginTimeRejected(f"auth refused: {said} — check this computer's clock")
                raise StreamHandshakeError(f"auth refused: {said} — check PERPDESK_API_KEY and PERPDESK_API_SECRET")
        if not self._topics:
            return
        await ws.send(orjson.dumps({"req_id": f"sub{next(_req_ids)}", "op": "subscribe",
                                    "args": self._topics}).decode())
        msg = await self._reply(ws, deadline, "subscribe")
        if msg.get("success") is not True:
            logger.warning(f"WS {self.name} subscribe refused: {msg.get('ret_msg')}")

    async def _reply(self, ws: ClientConnection, deadline: float, op: str) -> Message:
        """The answer to ``op`` within the handshake deadline; data frames meanwhile are dispatched."""
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise StreamHandshakeError(f"no {op} answer within {self._handshake_timeout:g} s")
            msg = self._decode(await asyncio.wait_for(ws.recv(), left))
            if msg is None or _is_pong(msg):
                continue
            if "topic" in msg:
                self._dispatch(msg)
            elif msg.get("op") == op:
                return msg

    def _frame(self, raw: str | bytes) -> None:
        """One frame decoded and handed over (``pump`` calls it for every frame)."""
        msg = self._decode(raw)
        if msg is None:
            return
        if "topic" in msg:
            self._dispatch(msg)
        elif _is_pong(msg):
            self._pong.set()
        elif msg.get("success") is False:
            logger.warning(f"WS {self.name} error: {msg.get('ret_msg')} (op {msg.get('op')})")

    def _decode(self, raw: str | bytes) -> Message | None:
        """One frame -> dict, or None for anything else (skipped by the rule of ``skip_frame``)."""
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            reason = NOT_JSON
        else:
            if isinstance(msg, dict) and ("topic" not in msg or "data" in msg):
                return msg
            reason = "not a Bybit message object"
        skip_frame("Bybit", self.name, raw, reason, self._on_malformed)
        return None

    def _dispatch(self, msg: Message) -> None:
        try:
            self._on_message(msg)
        except Exception:  # noqa: BLE001 - one bad push must not drop the connection
            logger.exception(f"WS {self.name} could not handle push on {msg.get('topic')}")

    async def _ping(self, ws: ClientConnection) -> None:
        await ws.send(orjson.dumps({"req_id": f"ping{next(_req_ids)}", "op": "ping"}).decode())
