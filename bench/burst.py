"""Burst: the largest burst of outside market orders after which the books are still exact.

Each step runs a fresh simulator (in a child process, speed 0), the real venue adapter, journal
and engine (in this process), and an unmodified ccxt client (another child process: another app
on the same account) that sends ``rate`` market orders of 1 contract a second on one symbol for a
few seconds (alternating buy and sell, each on its own schedule slot, so position lives open and
close all the time). When every fill is journaled the engine is stopped at once, and the step is
clean when:

* no close row had to be written unconfirmed at stop (nothing was waiting for the exchange), and
* ``reconcile`` (what `perpdesk reconcile` runs, with a fresh adapter) finds no difference, and
* no fill id is journaled twice.

The figure is the largest achieved rate (orders filled per second of the burst) of a clean step;
the ladder stops at the first step that is not clean, or when the sending side could not deliver
half the rate asked (the machine, not the books, is then the limit).

The simulator runs on its plain millisecond clock: a burst opens, closes and opens a leg again
within one millisecond, and those lives must stay apart in the journal and in reconcile.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

RATES = (100, 200, 400, 800)
SYMBOL = "BTC/USDT:USDT"
REPO = Path(__file__).resolve().parent.parent


async def _sim_child() -> None:
    from bench.common import quiet_logs
    from core.sim.server import SimServer

    quiet_logs()
    srv = SimServer(speed=0, slippage=Decimal(0), spread_ticks=0, start_cash=Decimal("10000000"))
    await srv.start()
    print(f"READY {srv.port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await srv.stop()


async def _client_child(url: str, rate: float, seconds: float) -> None:
    """The outside app, in its own process so its ccxt work does not take the engine's CPU time:
    ``rate`` orders a second, each on its own schedule slot whatever the previous one's latency."""
    import ccxt.async_support as ccxt_async

    from core.sim.ccxt_client import market_burst, okx_client

    ext = okx_client(ccxt_async.okx, url)
    try:
        await ext.load_markets()
        results, _, elapsed = await market_burst(ext, SYMBOL, rate, seconds)
        n = len(results)
    finally:
        await ext.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    print(json.dumps({"orders": n, "elapsed": elapsed, "failed": len(errors),
                      "first_error": f"{type(errors[0]).__name__}: {str(errors[0])[:120]}"
                      if errors else ""}), flush=True)


def start_sim() -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "bench.burst", "--sim"]
    child = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline() if child.stdout else ""
    if not line.startswith("READY"):
        child.kill()
        raise RuntimeError(f"simulator child did not start: {line!r}")
    return child, f"http://127.0.0.1:{int(line.split()[1])}"


async def _step(rate: int, seconds: float, directory: Path) -> dict[str, Any]:
    from loguru import logger

    from core.engine import Engine
    from core.journal import Journal, read_fills
    from core.reconcile.compare import reconcile_with_venue
    from core.settings.config import SIM_DEMO_CREDENTIALS, ExchangeSettings
    from core.venue import OkxVenue

    at_stop: list[str] = []
    sink = logger.add(lambda m: at_stop.append(m.record["message"]), level="WARNING",
                      filter=lambda r: "at stop" in r["message"], format="{message}")
    child, url = start_sim()
    settings = ExchangeSettings(venue="sim", url=url, symbols=(SYMBOL,))
    engine: Engine | None = None
    journal = Journal(directory)
    try:
        engine = Engine(OkxVenue(settings, SIM_DEMO_CREDENTIALS), journal)
        await engine.start()
        loop = asyncio.get_running_loop()
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.burst", "--client", url, str(rate), str(seconds),
            cwd=REPO, stdout=asyncio.subprocess.PIPE)
        out, _ = await client.communicate()
        sent = json.loads(out.decode().strip().splitlines()[-1])
        n, elapsed, failed = int(sent["orders"]), float(sent["elapsed"]), int(sent["failed"])
        # every fill journaled (an order the client gave up on may still have filled: wait until
        # the count stands still), then stop at once
        deadline, last, steady = loop.time() + 60, -1, loop.time()
        while loop.time() < deadline:
            await journal.flush()
            count = len(read_fills(directory))
            if count != last:
                last, steady = count, loop.time()
            elif count >= n - failed and loop.time() - steady >= 1.0:
                break
            await asyncio.sleep(0.2)
        t_stop = loop.time()
        await engine.stop()
        stop_s = loop.time() - t_stop
        engine = None
        await journal.close()
        venue = OkxVenue(settings, SIM_DEMO_CREDENTIALS)
        await venue.connect()
        try:
            report = await reconcile_with_venue(venue, directory)
        finally:
            await venue.close()
        fills = Counter(str(f["fill_id"]) for f in read_fills(directory))
        dups = sum(c - 1 for c in fills.values())
        # orders the client gave up on may have executed or not; what counts is what filled
        achieved = len(fills) / elapsed
        clean = report.ok and not at_stop and dups == 0
        return {"rate": rate, "achieved": round(achieved), "orders": n, "failed_orders": failed,
                "fills": len(fills), "stop_s": round(stop_s, 2), "at_stop": at_stop[:1],
                "differences": len(report.differences), "duplicates": dups, "clean": clean,
                "first_error": sent["first_error"]}
    finally:
        logger.remove(sink)
        if engine is not None:
            await engine.stop()
            await journal.close()
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


async def bench_burst(seconds: float = 5.0, rates: tuple[int, ...] = RATES) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    best: int | None = None
    for rate in rates:
        tmp = Path(tempfile.mkdtemp(prefix="perpdesk-bench-burst-"))
        try:
            step = await _step(rate, seconds, tmp / "journal")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        steps.append(step)
        if not step["clean"]:
            break
        best = max(best or 0, step["achieved"])
        if step["achieved"] < rate / 2:
            break  # the sending side is saturated: a higher rate asks for nothing more
    detail = "; ".join(
        f"{s['rate']}/s asked, {s['achieved']}/s sent, {s['fills']} fills, stop {s['stop_s']} s, "
        f"{s['differences']} reconcile differences, {s['duplicates']} duplicate fills, "
        f"{'nothing' if not s['at_stop'] else s['at_stop'][0]} at stop: "
        f"{'clean' if s['clean'] else 'NOT clean'}"
        + (f" ({s['failed_orders']} orders failed at the client, first {s['first_error']})"
           if s["failed_orders"] else "")
        for s in steps)
    return {"burst_clean_orders_per_s": best, "_detail": f"{seconds:g} s per step: {detail}"}


if __name__ == "__main__" and sys.argv[1:2] == ["--sim"]:
    asyncio.run(_sim_child())
elif __name__ == "__main__" and sys.argv[1:2] == ["--client"]:
    asyncio.run(_client_child(sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))
