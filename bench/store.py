"""Store: shipping throughput, journal-to-store lag at the burst load, and the cost on the engine's CPU.

A private PostgreSQL (tests/helpers/pg_helpers.py: initdb + pg_ctl, Unix socket only) and a database made by
`perpdesk store init`. Three figures:

* ``store_ship_rows_per_s``: a journal of ``rows`` fills and funding rows already on disk, shipped
  from an empty mark by a fresh shipper (read, COPY, insert-or-ignore, mark), rows per second.
* ``store_lag_ms_p99``: the burst of bench/burst.py (a simulator child, the real venue, journal and
  engine in this process, an outside ccxt client child sending market orders) with [store] on:
  per fill row, the server's time of its shipping transaction minus the fill's own time (exchange
  -> engine -> journal group commit and fsync -> shipper -> PostgreSQL), 99th percentile.
* ``store_engine_cpu_ratio``: this process's CPU seconds (every thread: engine, journal writer,
  shipper, status row) over the same burst with [store] on, divided by the same without it. The
  PostgreSQL server's own CPU is another process and is not counted.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.burst import REPO, SYMBOL, start_sim

RATE = 200


def _percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def _burst(rate: int, seconds: float, directory: Path, url: str | None) -> dict[str, Any]:
    """One burst on a fresh simulator; CPU seconds of this process until every fill is journaled
    (and, with ``url``, shipped)."""
    from core.engine import Engine
    from core.journal import Journal
    from core.model import Fill
    from core.settings.config import SIM_DEMO_CREDENTIALS, ExchangeSettings
    from core.store.rows import Scope
    from core.store.shipper import Shipper
    from core.store.status import StatusPublisher
    from core.venue import OkxVenue

    child, sim_url = start_sim()
    journal = Journal(directory)
    engine = Engine(OkxVenue(ExchangeSettings(venue="sim", url=sim_url, symbols=(SYMBOL,)),
                             SIM_DEMO_CREDENTIALS), journal)
    shipper: Shipper | None = None
    status: StatusPublisher | None = None
    lags: list[float] = []
    try:
        await engine.start()
        fills = 0

        def count(event: object) -> None:
            nonlocal fills
            if isinstance(event, Fill):
                fills += 1

        engine.subscribe(count)
        if url is not None:
            scope = Scope("bench", "sim", "live", "bench")
            shipper = Shipper(journal, url, scope)
            journal.on_durable = shipper.wake
            await shipper.start()
            ship = shipper
            status = StatusPublisher(engine, url, scope, lambda: ship.state)
            await status.start()
        loop = asyncio.get_running_loop()

        async def probe() -> None:
            while True:
                t = loop.time()
                await asyncio.sleep(0.01)
                lags.append((loop.time() - t - 0.01) * 1000)

        lag_task = asyncio.create_task(probe())
        cpu0, t0 = time.process_time(), loop.time()
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.burst", "--client", sim_url, str(rate), str(seconds),
            cwd=REPO, stdout=asyncio.subprocess.PIPE)
        out, _ = await client.communicate()
        sent = json.loads(out.decode().strip().splitlines()[-1])
        expected = int(sent["orders"]) - int(sent["failed"])
        deadline = loop.time() + 60
        while loop.time() < deadline:
            await journal.flush()
            behind = shipper.state.rows_behind if shipper is not None else 0
            if fills >= expected and behind == 0 and journal.pending_rows == 0:
                break
            await asyncio.sleep(0.05)
        cpu, wall = time.process_time() - cpu0, loop.time() - t0
        lag_task.cancel()
        return {"cpu_s": cpu, "wall_s": wall, "fills": fills,
                "loop_lag_ms_p99": _percentile(lags, 0.99)}
    finally:
        if status is not None:
            await status.stop()
        if shipper is not None:
            await shipper.stop(drain_s=0)
        await engine.stop()
        await journal.close()
        child.terminate()
        child.wait(10)


async def _throughput(url: str, directory: Path, rows: int) -> tuple[float, int]:
    """Rows per second shipping a journal already on disk from an empty mark."""
    from core.journal import Journal
    from core.model import Fill, FundingPayment, OrderSide
    from core.store.rows import Scope
    from core.store.shipper import Shipper

    base = datetime.now(UTC) - timedelta(hours=1)
    journal = Journal(directory, max_batch=5000)
    journal.open()
    for i in range(rows):
        ts = base + timedelta(milliseconds=i)
        if i % 10:
            journal.record_fill(Fill(
                fill_id=f"F{i}", order_id=f"O{i}", client_order_id="", symbol=SYMBOL,
                side=OrderSide.BUY if i % 2 else OrderSide.SELL, contracts=Decimal(i % 9 + 1),
                contract_size=Decimal("0.01"), price=Decimal("64000.1") + Decimal(i) / 10,
                fee=Decimal("0.0123"), fee_ccy="USDT", ts=ts))
        else:
            journal.record_funding(FundingPayment(
                bill_id=f"B{i}", symbol=SYMBOL, position_id=f"{SYMBOL}#net#1", rate=Decimal("0.0001"),
                position_contracts=Decimal(5), position_coins=Decimal("0.05"),
                mark_price=Decimal(64000), amount=Decimal("-0.32"), ccy="USDT", ts=ts))
    journal.close_sync()
    journal = Journal(directory)
    journal.open()
    # its own account: the store refuses a second engine name on one account
    shipper = Shipper(journal, url, Scope("bench-ship", "sim", "live", "bench-ship"))
    await shipper.start()
    t0 = time.perf_counter()
    try:
        while await shipper.ship_once():
            pass
        elapsed = time.perf_counter() - t0
    finally:
        await shipper.stop(drain_s=0)
        journal.close_sync()
    return shipper.state.shipped / elapsed, shipper.state.shipped


async def _store_bench(db: Any, seconds: float, rows: int) -> dict[str, Any]:
    import asyncpg

    tmp = Path(tempfile.mkdtemp(prefix="perpdesk-bench-store-"))
    try:
        rate_rows, shipped = await _throughput(db.writer, tmp / "ship", rows)
        off = await _burst(RATE, seconds, tmp / "off", None)
        on = await _burst(RATE, seconds, tmp / "on", db.writer)
        conn = await asyncpg.connect(db.admin)
        try:
            lags = [float(r[0]) for r in await conn.fetch(
                "SELECT extract(epoch FROM shipped_at - ts) * 1000 FROM perpdesk.orders "
                "WHERE engine = 'bench' AND event = 'fill'")]
        finally:
            await conn.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = on["cpu_s"] / off["cpu_s"] if off["cpu_s"] else None
    p99 = _percentile(lags, 0.99)
    detail = (f"shipped {shipped} rows from an empty mark at {rate_rows:.0f} rows/s; burst {RATE}/s for "
              f"{seconds:g} s: without store {off['fills']} fills, {off['cpu_s']:.2f} CPU s, loop lag p99 "
              f"{off['loop_lag_ms_p99']:.1f} ms; with store {on['fills']} fills, {on['cpu_s']:.2f} CPU s, "
              f"loop lag p99 {on['loop_lag_ms_p99']:.1f} ms, {len(lags)} fill rows shipped, lag p50 "
              f"{_percentile(lags, 0.5) or 0:.0f} ms p99 {p99 or 0:.0f} ms")
    return {"store_ship_rows_per_s": round(rate_rows), "store_lag_ms_p99": round(p99 or 0, 1),
            "store_engine_cpu_ratio": round(ratio, 2) if ratio else None, "_detail": detail}


def bench_store(quick: bool = False) -> dict[str, Any]:
    from bench.common import run_async
    from tests.helpers.pg_helpers import make_store_db, pg_server

    with pg_server() as server:
        db = make_store_db(server)
        return run_async(_store_bench(db, 3.0 if quick else 5.0, 20_000 if quick else 100_000), 600)
