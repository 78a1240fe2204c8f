"""A raw OKX v5 client for the simulator tests: signed REST and WebSocket without ccxt in between.

Why: ccxt reshapes answers and adds headers of its own; checking the simulator's wire format
(fields, envelopes, the demo-trading header) needs the bytes as a plain client sends them.
"""
from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import websockets

from core.settings.demo import DEMO_KEY, DEMO_PASSPHRASE, DEMO_SECRET
from core.sim.auth import sign
from core.sim.server import SimServer


async def rest(srv: SimServer, method: str, path: str, query: dict[str, str] | None = None, body: Any = None,
               *, demo_header: bool = True) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON payload) of a signed call to ``/api/v5/<path>``."""
    target = f"/api/v5/{path}" + (f"?{urlencode(query)}" if query else "")
    text = json.dumps(body) if body is not None else ""
    now = datetime.now(UTC)
    ts = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    headers = {"OK-ACCESS-KEY": DEMO_KEY, "OK-ACCESS-PASSPHRASE": DEMO_PASSPHRASE, "OK-ACCESS-TIMESTAMP": ts,
               "OK-ACCESS-SIGN": sign(DEMO_SECRET, ts + method + target + text),
               "Content-Type": "application/json"}
    if demo_header:
        headers["x-simulated-trading"] = "1"
    async with aiohttp.ClientSession() as s, s.request(method, srv.url + target, data=text or None,
                                                        headers=headers) as r:
        return r.status, await r.json()


async def data(srv: SimServer, method: str, path: str, query: dict[str, str] | None = None,
               body: Any = None) -> list[Any]:
    """The ``data`` list of a call that must succeed (code "0")."""
    status, payload = await rest(srv, method, path, query, body)
    assert status == 200 and payload["code"] == "0", payload
    return payload["data"]


async def control(srv: SimServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.post(srv.url + path, json=body) as r:
        return r.status, await r.json()


def login_msg() -> str:
    ts = str(int(time.time()))
    return json.dumps({"op": "login", "args": [{"apiKey": DEMO_KEY, "passphrase": DEMO_PASSPHRASE, "timestamp": ts,
                                                "sign": sign(DEMO_SECRET, ts + "GET/users/self/verify")}]})


class Ws:
    """One raw WebSocket; ``next_push(channel)`` returns the next data message of that channel."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, srv: SimServer, kind: str, *, login: bool, subs: list[dict[str, str]]) -> Ws:
        ws = cls(await websockets.connect(f"{srv.ws_url}/{kind}"))
        if login:
            await ws.conn.send(login_msg())
            await ws.until(lambda m: m.get("event") == "login")
        await ws.conn.send(json.dumps({"op": "subscribe", "args": subs}))
        for sub in subs:
            await ws.until(lambda m, sub=sub: m.get("event") == "subscribe" and m["arg"] == sub)
        return ws

    async def until(self, pred: Any, timeout: float = 3.0) -> dict[str, Any]:
        for i, m in enumerate(self.seen):
            if pred(m):
                return self.seen.pop(i)

        async def loop() -> dict[str, Any]:
            while True:
                m = json.loads(await self.conn.recv())
                if pred(m):
                    return m
                self.seen.append(m)
        return await asyncio.wait_for(loop(), timeout)

    async def next_push(self, channel: str, pred: Any = lambda item: True) -> dict[str, Any]:
        return await self.until(lambda m: m.get("arg", {}).get("channel") == channel and m.get("data")
                                and pred(m["data"][0]))

    async def close(self) -> None:
        await self.conn.close()
