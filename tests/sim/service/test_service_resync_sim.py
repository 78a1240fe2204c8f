"""A console's resync across midnight on a real serve."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from console.remote import RemoteEngine
from core.events import Notice, NoticeLevel, PlaceOrder
from core.model import OrderSide
from tests.helpers.engine_helpers import wait_for
from tests.helpers.lock_helpers import embedded_config, start_engine, start_serve, stop
from tests.helpers.service_helpers import (
    _attached,
    _Console,
    _order,
    close_remotes,
    trade_then_lose_the_engine,
)

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
        await trade_then_lose_the_engine(a, console, proc)
        shift[0] = timedelta(days=1)  # the gap crosses UTC midnight for this console

        proc = start_engine(cfg, "serve", env=env, banner="perpdesk serve")
        b = await _attached(path)
        await _order(b, OrderSide.SELL, "1")  # rows of the day before, for the console
        await _order(b, OrderSide.BUY, "3")
        refused = await b.submit(PlaceOrder("NOPE/USDT:USDT", OrderSide.BUY, D(1)))
        assert not refused.ok and "NOPE" in refused.message  # the engine raised a notice
        await wait_for(lambda: a.connected, 15, "the console to reconnect")
        await _order(a, OrderSide.SELL, "3")
        await console.settle(jdir, fills=5)
    finally:
        await close_remotes(a, b)
        assert stop(proc) == 0
    assert a.fresh_snapshots == 1
    console.assert_shows_the_journal(jdir, closes=3)
    again = [n for n in notices if "NOPE" in n.text]
    assert len(again) == 1 and "while this console was away" in again[0].text, [n.text for n in notices]
    assert again[0].level is NoticeLevel.ERROR
