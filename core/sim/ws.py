"""WebSocket side of the simulator: /ws/v5/public, /ws/v5/private, /ws/v5/business.

Each connection keeps its subscriptions as the client sent them; a push goes to every matching
subscription with that subscription's own ``arg`` echoed back (plus ``uid`` on private channels),
because ccxt.pro routes a push by the instId in ``arg``. Writes go through a per-connection queue
and writer task so the synchronous exchange never waits on a slow socket.
"""
from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from loguru import logger

from core.sim import auth
from core.sim.candles import CHANNELS as CANDLE_CHANNELS
from core.sim.exchange import Push, SimError
from core.sim.state import Account

PUBLIC_CHANNELS = {"tickers", "mark-price", "funding-rate"}
PRIVATE_CHANNELS = {"positions", "orders", "account", "balance_and_position"}
BUSINESS_CHANNELS = {"orders-algo", *CANDLE_CHANNELS}
LOGIN_FREE = PUBLIC_CHANNELS | set(CANDLE_CHANNELS)  # candles are public data served on /business
EVENT_TYPE_CHANNELS = {"positions", "account"}
MAX_QUEUE = 20000

_conn_ids = itertools.count(1)


class Conn:
    """One client WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, kind: str) -> None:
        self.ws = ws
        self.kind = kind
        self.conn_id = f"{next(_conn_ids):08x}"
        self.acct: Account | None = None
        self.subs: list[dict[str, Any]] = []
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()

    def send(self, msg: dict[str, Any] | str) -> None:
        if self.queue.qsize() > MAX_QUEUE:
            self.queue.put_nowait(None)  # slow consumer: the writer closes the socket
            return
        self.queue.put_nowait(msg if isinstance(msg, str) else orjson.dumps(msg).decode())

    async def writer(self) -> None:
        while True:
            text = await self.queue.get()
            if text is None or self.ws.closed:
                await self.ws.close()
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return


class Hub:
    """All live connections; matching of pushes to subscriptions."""

    def __init__(self, accounts: dict[str, Account], valid_inst: Callable[[str], bool],
                 snapshot: Callable[[Conn, dict[str, Any]], list[dict[str, Any]]],
                 clock: Callable[[], float] | None = None) -> None:
        self.accounts = accounts
        self.clock = clock  # the exchange's clock (s): logins are checked against it, as OKX does
        self.valid_inst = valid_inst
        self.snapshot = snapshot  # (conn, arg) -> initial messages for a new subscription
        self.conns: set[Conn] = set()
        self.channel_count: Counter[str] = Counter()

    def listening(self, channel: str) -> bool:
        return self.channel_count[channel] > 0

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        kind = request.match_info["kind"]
        if kind not in ("public", "private", "business"):
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(heartbeat=None, autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Conn(ws, kind)
        self.conns.add(conn)
        writer = asyncio.create_task(conn.writer())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.ERROR:
                        break
                    continue
                try:
                    self._on_text(conn, msg.data)
                except Exception as exc:  # an input no check foresaw: an error event and one log line, never a traceback
                    logger.error("SIM WebSocket message failed: {}: {}", type(exc).__name__, exc)
                    self._error(conn, "60012", "Illegal request")
        finally:
            self.conns.discard(conn)
            for sub in conn.subs:
                self.channel_count[sub["channel"]] -= 1
            conn.subs.clear()
            conn.queue.put_nowait(None)
            try:
                await asyncio.wait_for(writer, 1.0)
            except (TimeoutError, asyncio.CancelledError):
                writer.cancel()
        return ws

    def _error(self, conn: Conn, code: str, msg: str) -> None:
        conn.send({"event": "error", "code": code, "msg": msg, "connId": conn.conn_id})

    def _on_text(self, conn: Conn, text: str) -> None:
        if text == "ping":
            conn.send("pong")
            return
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._error(conn, "60012", f"Illegal request: {text}")
            return
        if not isinstance(req, dict):
            self._error(conn, "60012", f"Illegal request: {text}")
            return
        op = req.get("op")
        raw_args = req.get("args")
        args: list[Any] = raw_args if isinstance(raw_args, list) else []
        if op == "login":
            self._login(conn, args, text)
        elif op == "subscribe":
            for arg in args:
                self._subscribe(conn, arg, text)
        elif op == "unsubscribe":
            for arg in args:
                self._unsubscribe(conn, arg)
        else:
            self._error(conn, "60012", f"Illegal request: {text}")

    def _login(self, conn: Conn, args: list[Any], text: str) -> None:
        if conn.kind == "public" or not args or not isinstance(args[0], dict):
            self._error(conn, "60012" if args else "60009", f"Illegal request: {text}" if args else "Login failed.")
            return
        try:
            conn.acct = auth.verify_ws_login(self.accounts, args[0],
                                             now=self.clock() if self.clock is not None else None)
        except SimError as e:
            self._error(conn, e.code, e.msg)
            return
        conn.send({"event": "login", "code": "0", "msg": "", "connId": conn.conn_id})

    def _subscribe(self, conn: Conn, arg: Any, text: str) -> None:
        if not isinstance(arg, dict) or not arg.get("channel"):
            self._error(conn, "60012", f"Illegal request: {text}")
            return
        channel = str(arg["channel"])
        allowed = {"public": PUBLIC_CHANNELS, "private": PRIVATE_CHANNELS, "business": BUSINESS_CHANNELS}[conn.kind]
        if channel not in allowed:
            self._error(conn, "60018", f"Wrong URL or channel:{channel} doesn't exist. Please use the correct URL, "
                                       f"channel and parameters referring to API document.")
            return
        inst_id = arg.get("instId")
        if channel in LOGIN_FREE and (not inst_id or not self.valid_inst(str(inst_id))):
            self._error(conn, "60018", f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist.")
            return
        if channel not in LOGIN_FREE:
            if conn.acct is None:
                self._error(conn, "60011", "Please log in")
                return
            if inst_id and not self.valid_inst(str(inst_id)):
                self._error(conn, "60018", f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist.")
                return
        sub = dict(arg)
        if sub not in conn.subs:
            conn.subs.append(sub)
            self.channel_count[channel] += 1
        conn.send({"event": "subscribe", "arg": arg, "connId": conn.conn_id})
        for msg in self.snapshot(conn, sub):
            conn.send(msg)

    def _unsubscribe(self, conn: Conn, arg: Any) -> None:
        if isinstance(arg, dict) and arg in conn.subs:
            conn.subs.remove(arg)
            self.channel_count[str(arg.get("channel"))] -= 1
        conn.send({"event": "unsubscribe", "arg": arg, "connId": conn.conn_id})

    @staticmethod
    def matches(sub: dict[str, Any], push: Push) -> bool:
        if sub.get("channel") != push.channel:
            return False
        inst = sub.get("instId")
        if inst and push.inst_id and inst != push.inst_id:
            return False
        inst_type = sub.get("instType")
        if inst_type and inst_type not in ("ANY", "SWAP"):
            return False
        fam = sub.get("instFamily") or sub.get("uly")
        if fam and push.inst_id and not push.inst_id.startswith(str(fam) + "-"):
            return False
        ccy = sub.get("ccy")
        if ccy and push.channel == "account" and ccy != "USDT":
            return False
        return True

    @staticmethod
    def message(sub: dict[str, Any], push: Push, uid: str | None) -> dict[str, Any]:
        arg = dict(sub)
        if uid is not None:
            arg["uid"] = uid
        msg: dict[str, Any] = {"arg": arg}
        if push.channel in EVENT_TYPE_CHANNELS:
            msg["eventType"] = push.event_type or "event_update"
            msg["curPage"] = 1
            msg["lastPage"] = True
        msg["data"] = [push.data]
        return msg

    def fanout(self, pushes: list[Push]) -> None:
        if not pushes or not self.conns:
            return
        for conn in self.conns:
            if not conn.subs:
                continue
            uid = conn.acct.uid if conn.acct is not None else None
            for push in pushes:
                if push.uid is not None and push.uid != uid:
                    continue
                for sub in conn.subs:
                    if self.matches(sub, push):
                        conn.send(self.message(sub, push, push.uid))

    async def drop_all(self) -> int:
        conns = list(self.conns)
        for conn in conns:
            await conn.ws.close(code=1001, message=b"dropped by /sim/v1/drop")
        return len(conns)
