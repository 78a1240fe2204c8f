"""Records raw OKX v5 WebSocket pushes from the simulator while a ccxt client trades on it.

    python -m bench.record            # rewrites bench/fixtures/okx_pushes.jsonl
    python -m bench --record          # the same, then runs the benchmarks

Two plain ``websockets`` clients (public: mark-price; private: orders, positions, account) record
every data frame exactly as it came off the socket, one frame per line. Meanwhile an unmodified
ccxt (async) opens, adds to, partially closes and closes positions on three swaps over REST, and
the mark moves through the simulator's own price control, so the file holds orders with fills,
positions, account and mark-price pushes in the order the exchange sent them. The run ends flat,
so the fixture can be replayed back to back (see bench/stream.py).
"""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path

import ccxt.async_support as ccxt
import orjson
from websockets.asyncio.client import connect

from core.settings.demo import DEMO_KEY, DEMO_PASSPHRASE, DEMO_SECRET
from core.sim.ccxt_client import okx_client
from core.sim.server import SimServer
from core.venue.okx_stream import login_args

FIXTURE = Path(__file__).parent / "fixtures" / "okx_pushes.jsonl"
SYMBOLS = {"BTC/USDT:USDT": "BTC-USDT-SWAP", "ETH/USDT:USDT": "ETH-USDT-SWAP", "SOL/USDT:USDT": "SOL-USDT-SWAP"}
SIZES = {"BTC/USDT:USDT": 2, "ETH/USDT:USDT": 3, "SOL/USDT:USDT": 4}  # contracts per order
ROUNDS = 8


async def _listen(url: str, subs: list[dict[str, str]], frames: list[str], ready: asyncio.Event,
                  login: bool) -> None:
    async with connect(url, ping_interval=None, max_size=2**23) as ws:
        if login:
            await ws.send(orjson.dumps({"op": "login", "args": [login_args(DEMO_KEY, DEMO_SECRET, DEMO_PASSPHRASE)]}).decode())
            assert orjson.loads(await ws.recv()).get("event") == "login"
        await ws.send(orjson.dumps({"op": "subscribe", "args": subs}).decode())
        acks = 0
        async for raw in ws:
            msg = orjson.loads(raw)
            if msg.get("event") == "subscribe":
                acks += 1
                if acks == len(subs):
                    ready.set()
            elif "data" in msg and "\n" not in raw:
                frames.append(raw)


async def record(path: Path = FIXTURE, seed: int = 1) -> Counter[str]:
    """Trade a fixed script on a fresh simulator; write every push; return counts per channel."""
    srv = SimServer(speed=0, seed=seed, start_cash=Decimal("1000000"))
    await srv.start()
    rng = random.Random(seed)
    frames: list[str] = []
    ex = okx_client(ccxt.okx, srv.url)
    public = [{"channel": "mark-price", "instId": i} for i in SYMBOLS.values()]
    private = [{"channel": "orders", "instType": "SWAP"}, {"channel": "positions", "instType": "ANY"},
               {"channel": "account"}]
    ready = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(_listen(f"{srv.ws_url}/public", public, frames, ready[0], False)),
             asyncio.create_task(_listen(f"{srv.ws_url}/private", private, frames, ready[1], True))]
    try:
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 10)
        await ex.load_markets()
        frames.clear()  # subscription snapshots are not part of the steady stream

        async def wiggle(inst: str, n: int) -> None:
            for _ in range(n):
                srv.set_price(inst, srv.market.prices[inst] * Decimal(str(1 + rng.uniform(-0.002, 0.002))))
                await asyncio.sleep(0.003)

        for _ in range(ROUNDS):
            for sym, inst in SYMBOLS.items():
                side, other = ("buy", "sell") if rng.random() < 0.5 else ("sell", "buy")
                n = SIZES[sym]
                await ex.create_order(sym, "market", side, n)
                await wiggle(inst, 6)
                await ex.create_order(sym, "market", side, n)          # add
                await wiggle(inst, 6)
                await ex.create_order(sym, "market", other, n, None, {"reduceOnly": True})  # partial
                await wiggle(inst, 6)
                await ex.create_order(sym, "market", other, n, None, {"reduceOnly": True})  # flat
                await wiggle(inst, 4)
        await asyncio.sleep(0.5)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ex.close()
        await srv.stop()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f + "\n" for f in frames))
    return Counter(orjson.loads(f)["arg"]["channel"] for f in frames)


def load(path: Path = FIXTURE) -> list[str]:
    """The recorded frames, as the text the socket delivered."""
    return [line for line in path.read_text().splitlines() if line]


if __name__ == "__main__":
    counts = asyncio.run(record())
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size // 1024} KB): {sum(counts.values())} frames, {dict(counts)}")
