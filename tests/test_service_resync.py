"""Issue 22: what an attached console shows after a resync from a fresh snapshot.

The engine is a real `perpdesk serve` process on the embedded simulator; the console is a
RemoteEngine (what `perpdesk attach` drives the app with) feeding the real FeedBuffer. Its clock
is moved a day on while the engine is away, so the rows made meanwhile are dated "yesterday" for
it: the catch-up must read that day's journal file too, not only today's.
"""
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
from core.service.codec import encode
from core.service.server import NOTICE_HISTORY
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


def _history(first_seq: int) -> list[list[object]]:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return [[first_seq + i, encode(Notice(NoticeLevel.WARNING, f"notice {first_seq + i}", at))]
            for i in range(NOTICE_HISTORY)]


@pytest.mark.parametrize(("after", "replayed", "log_line"), [
    (99, NOTICE_HISTORY, False),  # the history starts right after the last notice seen
    (109, NOTICE_HISTORY - 10, False),  # some of them were seen
    (50, NOTICE_HISTORY, True),  # more were raised than the engine keeps: the log has them
])
def test_missed_notices_are_shown_again_and_older_ones_point_to_the_log(
        after: int, replayed: int, log_line: bool) -> None:
    remote = RemoteEngine(Path("/nonexistent"))
    remote.info = {"logs": "/desk/logs"}
    seen: list[Notice] = []
    remote.subscribe(lambda e: seen.append(e) if isinstance(e, Notice) else None)
    remote._notices_missed(_history(100), after, lost_old_run=False)
    shown = [n.text for n in seen if "while this console was away at 03:04:05 UTC" in n.text]
    assert shown == [f"notice {s} (while this console was away at 03:04:05 UTC)"
                     for s in range(100 + NOTICE_HISTORY - replayed, 100 + NOTICE_HISTORY)]
    pointers = [n for n in seen if "/desk/logs/perpdesk_<date>.log" in n.text]
    assert len(pointers) == (1 if log_line else 0)
    if log_line:
        assert pointers[0].level is NoticeLevel.WARNING and f"{replayed} notice(s)" in pointers[0].text


def test_a_console_that_lost_an_engine_run_without_a_goodbye_is_pointed_to_the_log() -> None:
    remote = RemoteEngine(Path("/nonexistent"))
    remote.info = {"logs": "/desk/logs"}
    seen: list[Notice] = []
    remote.subscribe(lambda e: seen.append(e) if isinstance(e, Notice) else None)
    remote._notices_missed([], 0, lost_old_run=True)
    assert len(seen) == 1 and "engine run that stopped meanwhile" in seen[0].text
    assert "/desk/logs/perpdesk_<date>.log" in seen[0].text
