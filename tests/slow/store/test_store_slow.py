"""The store under a long outage and a SIGKILL of the shipping engine: nothing lost, nothing doubled."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core.journal import read_fills
from core.service.runner import build_stack
from tests.helpers.engine_helpers import BTC, wait_for
from tests.helpers.paths import REPO
from tests.helpers.pg_helpers import StoreDb
from tests.helpers.store_helpers import caught_up as _caught_up
from tests.helpers.store_helpers import csv_rows as _csv_rows
from tests.helpers.store_helpers import store_rows as _store_rows
from tests.helpers.store_helpers import store_settings as _settings
from tests.helpers.store_helpers import trade as _trade

pytestmark = pytest.mark.timeout(120)


# ---- outage ---------------------------------------------------------------------------------
async def test_store_down_both_engines_keep_trading_then_catch_up_once(
        tmp_path: Path, store_db: StoreDb) -> None:
    from console.app import store_label

    a = _settings(tmp_path, "desk-a", store_db.writer, seed=3)
    b = _settings(tmp_path, "desk-b", store_db.writer, seed=11)
    async with build_stack(a) as sa, build_stack(b) as sb:
        await asyncio.gather(_trade(sa, 1), _trade(sb, 1))
        await asyncio.gather(_caught_up(sa), _caught_up(sb))
        before = _store_rows(store_db, "desk-a") + _store_rows(store_db, "desk-b")
        lag: list[float] = []
        loop = asyncio.get_running_loop()

        async def probe() -> None:
            while True:
                t = loop.time()
                await asyncio.sleep(0.02)
                lag.append(loop.time() - t - 0.02)

        store_db.server.stop()
        try:
            task = asyncio.create_task(probe())
            started = time.monotonic()
            await asyncio.gather(_trade(sa, 4), _trade(sb, 4))  # fills go on, store down
            traded_in = time.monotonic() - started
            for s in (sa, sb):
                await s.engine.settle()
                assert s.store is not None
                s.store.shipper.wake()
            await asyncio.sleep(2.5)
            task.cancel()
            for s in (sa, sb):
                assert s.store is not None
                state = s.store.state
                assert not state.connected and state.rows_behind >= 16 and state.seconds_behind > 1
                assert store_label(lambda st=state: st).startswith("behind ")  # type: ignore[misc]
            assert traded_in < 10
            assert max(lag) < 0.5, f"event loop lag {max(lag):.3f} s while the store was down"
            assert len(read_fills(a.journal.dir)) == len(read_fills(b.journal.dir)) == 10
        finally:
            store_db.server.start()
        await asyncio.gather(_caught_up(sa), _caught_up(sb))
        after = 0
        for s in (a, b):
            n = _store_rows(store_db, s.engine.name)
            assert n == _csv_rows(s.journal.dir)  # every row, once
            after += n
        assert after > before
        assert store_label(lambda: sa.store.state) == "ok"  # type: ignore[union-attr]


async def test_engine_sigkilled_mid_shipment_restarts_without_losing_or_doubling_rows(
        tmp_path: Path, store_db: StoreDb, srv: Any) -> None:
    """A real headless engine on a simulator, an outside app bursting orders on its account, the
    engine SIGKILLed while it ships, then started again: every journal row lands once."""
    import os
    import signal
    import sys

    import ccxt.async_support as ccxt_async

    from core.sim.ccxt_client import market_burst, okx_client

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[exchange]\nvenue = "sim"\nurl = "{srv.url}"\nsymbols = ["{BTC}"]\n'
                   f'[engine]\nname = "killed"\n[store]\nurl = "{store_db.writer}"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    admin = await asyncpg.connect(store_db.admin)

    async def shipped() -> int:
        return int(await admin.fetchval(
            "SELECT (SELECT count(*) FROM perpdesk.orders WHERE engine = 'killed') + "
            "(SELECT count(*) FROM perpdesk.trades WHERE engine = 'killed') + "
            "(SELECT count(*) FROM perpdesk.funding WHERE engine = 'killed') + "
            "(SELECT count(*) FROM perpdesk.positions_open WHERE engine = 'killed') + "
            "(SELECT count(*) FROM perpdesk.risk WHERE engine = 'killed')"))

    async def start() -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "console", "--config", str(cfg), "--headless", cwd=tmp_path,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert "perpdesk headless" in line, line
        return proc

    ext = okx_client(ccxt_async.okx, srv.url)
    proc = await start()
    try:
        await ext.load_markets()
        burst = asyncio.create_task(market_burst(ext, BTC, 80, 4))
        async def forty_shipped() -> bool:
            return await shipped() >= 40
        await wait_for(forty_shipped, 30, "40 rows shipped")
        proc.kill()  # SIGKILL while rows are being written and shipped
        await proc.wait()
        at_kill = await shipped()
        await burst  # the exchange goes on filling while the engine is down
        proc = await start()  # backfills what it missed, ships the rest from its mark
        journal = tmp_path / "journal"
        last, steady = -1, time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            n = await shipped()
            if n != last:
                last, steady = n, time.monotonic()
            elif n == _csv_rows(journal) and time.monotonic() - steady > 2:
                break
            await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        fills = {str(f["fill_id"]) for f in read_fills(journal)}
        keys = {r["row_key"] for r in await admin.fetch(
            "SELECT row_key FROM perpdesk.orders WHERE engine = 'killed' AND event = 'fill'")}
        assert 40 <= at_kill < await shipped()
        assert await shipped() == _csv_rows(journal)  # every row once: none lost, none doubled
        assert keys == fills and len(fills) >= 200
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await ext.close()
        await admin.close()
