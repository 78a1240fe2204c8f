"""WebSocket side of the simulator's Bybit v5 face: /v5/public/linear and /v5/private.

The exchange core emits its pushes once, in OKX's channels (orders, orders-algo, positions,
account, tickers, balance_and_position); this hub turns each into the Bybit topic a subscriber
asked for: ``order`` (orders and conditional orders), ``execution`` (one item per fill, plus
funding executions), ``position``, ``wallet`` and ``tickers.{symbol}``. Private topics need
``op: auth`` first; ``op: ping`` is answered with a pong on both paths.

Writes go through the OKX face's per-connection queue and writer (core.sim.ws.Conn), so the
synchronous exchange never waits on a slow socket.
"""
from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import Counter
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from core.sim import bybit_auth
from core.sim import bybit_shapes as by
from core.sim.candles import CHANNELS as CANDLE_CHANNELS
from core.sim.exchange import Push
from core.sim.params import SimError
from core.sim.state import Account
from core.sim.ws import Conn

if TYPE_CHECKING:
    from core.sim.bybit_rest import BybitRest
    from core.sim.server import SimServer

PRIVATE_TOPICS = {"order", "execution", "position", "wallet"}
# the core's channels each Bybit topic is made from (the core emits only what someone listens to)
SOURCES = {"order": {"orders", "orders-algo"}, "execution": {"orders", "balance_and_position"},
           "position": {"positions"}, "wallet": {"account"}, "tickers": {"tickers"}}
_ids = itertools.count(1)


def _topic_base(topic: str) -> str:
    """order.linear -> order (Bybit's per-category private topics), tickers.BTCUSDT -> tickers."""
    return topic.split(".", 1)[0]


class BybitHub:
    """All Bybit WebSocket connections of one simulator."""

    def __init__(self, srv: SimServer, rest: BybitRest) -> None:
        self.srv = srv
        self.rest = rest
        self.ex = srv.exchange
        self.conns: set[Conn] = set()
        self.topic_count: Counter[str] = Counter()
        self.kline_bars: Counter[str] = Counter()  # the core's bar of each kline topic subscribed
        self.funding_seen: dict[str, int] = {}  # uid -> bills already looked at for funding executions
        self.extra: dict[str, dict[str, list[dict[str, Any]]]] = {}  # uid -> topic -> items for the next fan-out
        self.born = self.ex.clock()  # funding settled from here on is pushed (a resumed state's is history)

    def told(self, uid: str, topic: str, item: dict[str, Any]) -> None:
        """An item the core has no push for (a canceled TP/SL leg), sent with the next fan-out."""
        if self.topic_count[topic] > 0:
            self.extra.setdefault(uid, {}).setdefault(topic, []).append(item)

    def listening(self, channel: str) -> bool:
        if channel in CANDLE_CHANNELS:  # only the bars someone's kline topic asks for are built
            return self.kline_bars[CANDLE_CHANNELS[channel]] > 0
        return any(self.topic_count[t] > 0 for t, sources in SOURCES.items() if channel in sources)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        kind = "private" if request.path.rstrip("/").endswith("/private") else "public"
        ws = web.WebSocketResponse(heartbeat=None, autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Conn(ws, kind)
        conn.conn_id = f"{secrets.token_hex(10)}-{next(_ids)}"
        self.conns.add(conn)
        writer = asyncio.create_task(conn.writer())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.conns.discard(conn)
            for sub in conn.subs:
                self._count(str(sub["topic"]), -1)
            conn.subs.clear()
            conn.queue.put_nowait(None)
            try:
                await asyncio.wait_for(writer, 1.0)
            except (TimeoutError, asyncio.CancelledError):
                writer.cancel()
        return ws

    def _reply(self, conn: Conn, op: str, req_id: Any, ok: bool, msg: str, **extra: Any) -> None:
        out: dict[str, Any] = {"success": ok, "ret_msg": msg, "conn_id": conn.conn_id, "req_id": str(req_id or ""),
                               "op": op}
        out.update(extra)
        conn.send(out)

    def _on_text(self, conn: Conn, text: str) -> None:
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            req = None
        if not isinstance(req, dict):
            self._reply(conn, "", None, False, "error:invalid op")
            return
        op = str(req.get("op") or "")
        req_id = req.get("req_id")
        raw = req.get("args")
        args: list[Any] = raw if isinstance(raw, list) else []
        if op == "ping":  # the public and the private streams answer in their own documented shapes
            if conn.kind == "private":
                conn.send({"req_id": str(req_id or ""), "op": "pong", "args": [str(self.ex.clock())],
                           "conn_id": conn.conn_id})
            else:
                self._reply(conn, "ping", req_id, True, "pong")
        elif op == "auth":
            self._auth(conn, args, req_id)
        elif op == "subscribe":
            self._subscribe(conn, args, req_id)
        elif op == "unsubscribe":
            for topic in args:
                sub = {"topic": str(topic)}
                if sub in conn.subs:
                    conn.subs.remove(sub)
                    self._count(str(topic), -1)
            self._reply(conn, "unsubscribe", req_id, True, "")
        else:
            self._reply(conn, op, req_id, False, f"error:invalid op {op}")

    def _auth(self, conn: Conn, args: list[Any], req_id: Any) -> None:
        if conn.kind != "private":
            self._reply(conn, "auth", req_id, False, "error:auth is for /v5/private only")
            return
        try:
            conn.acct = bybit_auth.verify_ws(self.ex.accounts, args, self.ex.clock())
        except SimError as e:
            self._reply(conn, "auth", req_id, False, f"error:{e.msg}", request={"op": "auth", "args": args})
            return
        self._reply(conn, "auth", req_id, True, "")

    def _subscribe(self, conn: Conn, args: list[Any], req_id: Any) -> None:
        topics = [str(a) for a in args]
        for topic in topics:
            base = _topic_base(topic)
            bad = ""
            if conn.kind == "private":
                if base not in PRIVATE_TOPICS or topic not in (base, base + ".linear", base + ".all"):
                    bad = f"error:handler not found,topic:{topic}"
                elif conn.acct is None:
                    bad = "error:request not authorized"
            elif not self._public_topic(topic):
                bad = f"error:handler not found,topic:{topic}"
            if bad:
                self._reply(conn, "subscribe", req_id, False, bad)
                return
        for topic in topics:
            sub = {"topic": topic}
            if sub not in conn.subs:
                conn.subs.append(sub)
                self._count(topic, 1)
        self._reply(conn, "subscribe", req_id, True, "")
        for topic in topics:  # a public topic starts with a snapshot of the current state
            if _topic_base(topic) == "tickers":
                inst = self.rest.symbols[topic.split(".")[1]]
                conn.send(self._ticker_msg(topic, inst))
            elif _topic_base(topic) == "kline":
                _, interval, sym = topic.split(".")
                inst = self.rest.symbols[sym]
                row = self.srv.candles.current(inst, by.KLINE_BARS[interval], self.ex.clock())
                conn.send(self._kline_msg(topic, interval, row))

    def _public_topic(self, topic: str) -> bool:
        parts = topic.split(".")
        if parts[0] == "tickers":
            return len(parts) == 2 and parts[1] in self.rest.symbols
        return (parts[0] == "kline" and len(parts) == 3 and parts[1] in by.KLINE_BARS
                and parts[2] in self.rest.symbols)

    def _count(self, topic: str, delta: int) -> None:
        self.topic_count[_topic_base(topic)] += delta
        parts = topic.split(".")
        if parts[0] == "kline" and len(parts) == 3:
            self.kline_bars[by.KLINE_BARS[parts[1]]] += delta

    def _kline_msg(self, topic: str, interval: str, row: list[str]) -> dict[str, Any]:
        now = self.ex.clock()
        return {"topic": topic, "data": [by.kline(row, interval, now)], "ts": now, "type": "snapshot"}

    def _ticker_msg(self, topic: str, inst: str) -> dict[str, Any]:
        now = self.ex.clock()
        return {"topic": topic, "type": "snapshot", "data": self.rest.ticker(inst), "cs": now, "ts": now}

    # ------------------------------------------------------------------ pushes

    def fanout(self, pushes: list[Push]) -> None:
        if not self.conns:
            return
        per_uid, tickers = self._collect(pushes)
        candles: dict[tuple[str, str], list[list[str]]] = {}
        for push in pushes:
            if push.channel in CANDLE_CHANNELS and push.inst_id is not None:
                candles.setdefault((push.inst_id, CANDLE_CHANNELS[push.channel]), []).append(push.data)
        now = self.ex.clock()
        for conn in self.conns:
            for sub in conn.subs:
                topic = str(sub["topic"])
                base = _topic_base(topic)
                if base == "tickers":
                    inst = self.rest.symbols.get(topic.split(".")[1])
                    if inst in tickers:
                        conn.send(self._ticker_msg(topic, inst))
                    continue
                if base == "kline":
                    _, interval, sym = topic.split(".")
                    for row in candles.get((self.rest.symbols[sym], by.KLINE_BARS[interval]), ()):
                        conn.send(self._kline_msg(topic, interval, row))
                    continue
                data = per_uid.get(conn.acct.uid, {}).get(base) if conn.acct is not None else None
                if data and conn.acct is not None:
                    conn.send({"id": f"{conn.acct.uid}_{base}_{now}_{next(_ids)}", "topic": topic,
                               "creationTime": now, "data": data})

    def _collect(self, pushes: list[Push]) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], set[str]]:
        """The core's pushes as Bybit data per account uid and topic, and the instruments whose
        ticker moved. A position is told once per fan-out, in its state after the request."""
        per_uid, self.extra = self.extra, {}
        tickers: set[str] = set()
        positions: dict[str, dict[tuple[str, str, str], None]] = {}
        accounts = {a.uid: a for a in self.ex.accounts.values()}
        for push in pushes:
            acct = accounts.get(push.uid) if push.uid is not None else None
            if acct is None:
                if push.channel == "tickers" and push.inst_id is not None:
                    tickers.add(push.inst_id)
                continue
            topics = per_uid.setdefault(acct.uid, {})
            if push.channel == "orders":
                self._order_push(acct, push.data, topics)
            elif push.channel == "orders-algo":
                a = acct.algos.get(str(push.data.get("algoId") or ""))
                if a is not None:
                    topics.setdefault("order", []).extend(by.algo_orders(a, self.ex.specs[a.inst_id], push=True))
            elif push.channel == "positions":
                d = push.data
                positions.setdefault(acct.uid, {})[(str(d["instId"]), str(d["mgnMode"]), str(d["posSide"]))] = None
            elif push.channel == "account":
                topics["wallet"] = [self.rest.wallet_item(acct)]
        for acct in accounts.values():
            topics = per_uid.setdefault(acct.uid, {})
            self._funding_execs(acct, topics)
            keys = positions.get(acct.uid)
            if keys:
                topics["position"] = [self.rest.position_item(acct, k, push=True) for k in keys]
        return per_uid, tickers

    def _order_push(self, acct: Account, data: dict[str, Any], topics: dict[str, list[dict[str, Any]]]) -> None:
        o = acct.orders.get(str(data.get("ordId") or ""))
        if o is None:
            return
        spec = self.ex.specs[o.inst_id]
        topics.setdefault("order", []).append(by.order(acct, o, spec, o.tag, push=True, state=data))
        trade_id = str(data.get("tradeId") or "")
        if trade_id and data.get("fillSz") not in (None, "", "0"):
            f = next((x for x in reversed(acct.fills) if x.trade_id == trade_id), None)
            if f is not None:
                info = self.rest.replay(acct).execs.get(trade_id, by.ExecInfo())
                topics.setdefault("execution", []).append(by.execution(
                    acct, f, spec, info, o.tag, self.rest.fee_rate_of(f.exec_type == "M"), push=True))

    def _funding_execs(self, acct: Account, topics: dict[str, list[dict[str, Any]]]) -> None:
        """Funding settled since the last fan-out becomes execType Funding executions."""
        seen = self.funding_seen.get(acct.uid)
        if seen is None or seen > len(acct.bills):
            seen = next((i for i, b in enumerate(acct.bills) if b.ts >= self.born), len(acct.bills))
        for b in acct.bills[seen:]:
            if b.type == "8":
                rate = self.rest.funding_rate_at(b.inst_id, b.ts)
                topics.setdefault("execution", []).append(
                    by.funding_execution(b, self.ex.specs[b.inst_id], rate, push=True))
        self.funding_seen[acct.uid] = len(acct.bills)

    async def drop_all(self) -> int:
        conns = list(self.conns)
        for conn in conns:
            await conn.ws.close(code=1001, message=b"dropped by /sim/v1/drop")
        return len(conns)
