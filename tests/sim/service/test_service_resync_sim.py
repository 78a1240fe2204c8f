"""A console's resync across midnight on a real serve."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from console.remote import RemoteEngine
from core.events import Notice, NoticeLevel, PlaceOrder
from core.journal import read_fills, read_trades
from core.model import OrderSide
from tests.helpers.engine_helpers import wait_for
from tests.helpers.lock_helpers import embedded_config, start_engine, start_serve, stop
from tests.helpers.service_helpers import _attached, _Console, _order, _safe

pytestmark = pytest.mark.timeout(120)


async def test_a_resync_across_midnight_shows_yesterdays_rows_and_the_missed_notices(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path)
    jdir = tmp_path / "journal"
    proc, path, env = start_serve(tmp_path, cfg)
    shift = [timedelta(0)]
    a = RemoteEngine(path, backoff=(2.0,), clock=lambda: datetime.now(UTC) + shift[0])
    await a.connect()
    a.start()
    console = _Console(a)
    await console.seed()
    notices: list[Notice] = []
    a.subscribe(lambda e: notices.append(e) if isinstance(e, Notice) else None)
    b = None
    try:
        await _order(a, OrderSide.BUY, "2")
        await _order(a, OrderSide.SELL, "1")
        await wait_for(lambda: console.drain() or len(console.fills) == 2, 20, "two fills on the panes")
        assert stop(proc) == 0
        await wait_for(lambda: not a.connected, 10, "the console to see the engine go")
        shift[0] = timedelta(days=1)  # the gap crosses UTC midnight for this console

        proc = start_engine(cfg, "serve", env=env, banner="perpdesk serve")
        b = await _attached(path)
        await _order(b, OrderSide.SELL, "1")  # rows of the day before, for the console
        await _order(b, OrderSide.BUY, "3")
        refused = await b.submit(PlaceOrder("NOPE/USDT:USDT", OrderSide.BUY, D(1)))
        assert not refused.ok and "NOPE" in refused.message  # the engine raised a notice
        await wait_for(lambda: a.connected, 15, "the console to reconnect")
        await _order(a, OrderSide.SELL, "3")
        await wait_for(lambda: len(_safe(read_fills, jdir)) == 5, 20, "five fills journaled")
        await wait_for(lambda: console.drain() or len(set(console.fills)) == 5, 20, "every fill on the panes")
        await asyncio.sleep(1.0)
        console.drain()
    finally:
        for remote in (a, b):
            if remote is not None:
                await remote.close()
        assert stop(proc) == 0
    assert a.fresh_snapshots == 1
    journal_fills = [f["fill_id"] for f in read_fills(jdir)]
    journal_closes = [r["close_id"] for r in read_trades(jdir)]
    assert sorted(console.fills) == sorted(journal_fills)  # none missing, none twice
    assert sorted(console.closes) == sorted(journal_closes) and len(journal_closes) == 3
    again = [n for n in notices if "NOPE" in n.text]
    assert len(again) == 1 and "while this console was away" in again[0].text, [n.text for n in notices]
    assert again[0].level is NoticeLevel.ERROR
