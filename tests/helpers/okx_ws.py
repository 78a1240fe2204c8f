"""The simulator's OKX WebSocket spoken raw: a login, waiting for a message, a push's shape."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

KEY, SECRET, PASS = "perpdesk-demo", "perpdesk-demo-secret", "perpdesk-demo"
_backlog: dict[int, list] = {}


def login_msg(secret: str = SECRET, ts: str | None = None) -> str:
    ts = ts or str(int(time.time()))
    sign = base64.b64encode(hmac.new(secret.encode(), (ts + "GET/users/self/verify").encode(),
                                     hashlib.sha256).digest()).decode()
    return json.dumps({"op": "login", "args": [{"apiKey": KEY, "passphrase": PASS, "timestamp": ts, "sign": sign}]})


async def recv(ws, pred=lambda m: True, timeout: float = 3.0) -> dict:
    """The first message satisfying ``pred``; others are kept, in order, for later calls.

    Pushes of different channels may interleave in any order, so tests ask for what they
    expect instead of assuming the sequence.
    """
    backlog = _backlog.setdefault(id(ws), [])
    for i, m in enumerate(backlog):
        if pred(m):
            return backlog.pop(i)

    async def loop():
        while True:
            raw = await ws.recv()
            msg = raw if raw == "pong" else json.loads(raw)
            if pred(msg):
                return msg
            backlog.append(msg)
    return await asyncio.wait_for(loop(), timeout)


def push_of(channel: str, **extra):
    def pred(m):
        if not isinstance(m, dict) or m.get("arg", {}).get("channel") != channel or "data" not in m:
            return False
        return all(m.get(k) == v or (m["data"] and m["data"][0].get(k) == v) for k, v in extra.items())
    return pred
