"""Benchmark (not a test): market orders per second through unmodified ccxt against SimServer.

    .venv/bin/python bench/sim_orders.py [N] [--ws]

Opens and closes a BTC position N times (N orders), sequentially, one ccxt create_order each,
and prints orders/s and per-order latency percentiles. With --ws a ccxt.pro watch_orders
subscription is live too, so the push path is measured as well.
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import time
from decimal import Decimal

import ccxt.pro

from core.money import plain
from core.sim.ccxt_client import okx_client
from core.sim.server import SimServer


async def run(n: int, with_ws: bool) -> None:
    srv = SimServer(speed=0, start_cash=Decimal("1000000"))
    await srv.start()
    ex = okx_client(ccxt.pro.okx, srv.url, srv.ws_url)
    pushes = 0
    watcher: asyncio.Task[None] | None = None
    try:
        await ex.load_markets()

        async def watch() -> None:
            nonlocal pushes
            while True:
                got = await ex.watch_orders("BTC/USDT:USDT")
                pushes += len(got)

        if with_ws:
            watcher = asyncio.create_task(watch())
            await asyncio.sleep(0.3)
        for _ in range(20):  # warm-up
            await ex.create_order("BTC/USDT:USDT", "market", "buy", 1)
            await ex.create_order("BTC/USDT:USDT", "market", "sell", 1)
        lat: list[float] = []
        t0 = time.perf_counter()
        for i in range(n):
            s = time.perf_counter()
            await ex.create_order("BTC/USDT:USDT", "market", "buy" if i % 2 == 0 else "sell", 1)
            lat.append(time.perf_counter() - s)
        dt = time.perf_counter() - t0
        lat.sort()
        fills = len(srv.account.fills)
        print(f"orders: {n}  elapsed: {dt:.3f} s  orders/s: {n / dt:.0f}")
        print(f"latency ms: p50 {lat[len(lat) // 2] * 1e3:.2f}  p95 {lat[int(len(lat) * 0.95)] * 1e3:.2f}  "
              f"max {lat[-1] * 1e3:.2f}  mean {statistics.fmean(lat) * 1e3:.2f}")
        print(f"fills recorded: {fills}  cash: {plain(srv.account.cash)}"
              + (f"  order pushes seen by ccxt.pro: {pushes}" if with_ws else ""))
    finally:
        if watcher is not None:
            watcher.cancel()
        await ex.close()
        await srv.stop()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(run(int(args[0]) if args else 2000, "--ws" in sys.argv))
