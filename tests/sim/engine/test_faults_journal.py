"""Fault injection on the journal (issue 6): the disk fills up.

The journal's low-level write is replaced by one that writes half of what it was given and then
fails with ENOSPC, the way a filling disk does. Expected: one clear Notice, trading commands
refused while the journal cannot write (naming the journal), no half-written line on disk, and
after the disk frees every pending row lands exactly once — checked against the exchange. On
both faces of the simulator (OKX v5, and Bybit v5 through the native bybit venue).
"""
from __future__ import annotations

import errno
import os
from decimal import Decimal as D
from pathlib import Path

import pytest

import core.journal.dayfiles as dayfiles
from core.events import ClosePosition, NoticeLevel, PlaceOrder
from core.journal import JournalError
from core.model import OrderSide
from tests.helpers.engine_helpers import BTC, BTC_ID, VENUES, Rig, control, sim_state, wait_for
from tests.helpers.fault_helpers import (
    LogCapture,
    assert_matches_exchange,
    assert_plain,
    notices,
    wait_log,
    wait_notice,
)

pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("venue", VENUES)]


class FullDisk:
    """Stands in for ``dayfiles.write_all`` while ``full``: half the bytes land, then ENOSPC."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self.failures = 0
        real = dayfiles.write_all

        def write_all(fd: int, data: bytes) -> None:
            if not self.full:
                real(fd, data)
                return
            self.failures += 1
            os.write(fd, data[: max(1, len(data) // 2)])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(dayfiles, "write_all", write_all)


def _disk(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.csv"))}


def _assert_whole_lines(directory: Path) -> None:
    for name, data in _disk(directory).items():
        assert not data or data.endswith(b"\n"), f"{name} ends in a torn line"
        lines = data.decode().splitlines()
        width = lines[0].count(",")
        assert all(ln.count(",") >= width for ln in lines[1:]), f"{name} holds a short row"


async def test_disk_full_refuses_trading_and_lands_pending_rows_once(
        rig: Rig, logs: LogCapture, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FullDisk(monkeypatch)
    engine = await rig.start_engine()
    assert (await engine.submit(PlaceOrder(BTC, OrderSide.BUY, rig.ct(10)))).ok
    await rig.wait_fills(1)
    await rig.flush()
    before = _disk(rig.journal_dir)

    disk.full = True
    # the exchange goes on without us: a partial close and a funding settlement
    await rig.outside("sell", 4, reduce_only=True)
    await control(rig.srv, "/sim/v1/funding", {"instId": BTC_ID, "rate": "0.0001"})
    text = await wait_notice(rig, "journal cannot write")
    assert "No space left on device" in text and "trading commands are refused" in text
    assert str(rig.journal_dir) in text
    await wait_log(logs, "JOURNAL ERROR cannot write journal file", "No space left on device")
    await wait_for(lambda: engine.positions() and engine.positions()[0].contracts == rig.ct(6),
                   what="ledger follows the exchange while the disk is full")

    fills_before = (await sim_state(rig.srv))["fills"]
    for command in (PlaceOrder(BTC, OrderSide.BUY, rig.ct(1)), ClosePosition(BTC)):
        res = await engine.submit(command)
        assert not res.ok
        assert_plain(res.message)
        assert res.message.startswith("trading refused: the journal cannot write")
        assert "No space left on device" in res.message and "free disk space" in res.message
    assert (await sim_state(rig.srv))["fills"] == fills_before  # nothing reached the exchange

    await wait_for(lambda: disk.failures >= 2, what="the journal retrying")
    assert _disk(rig.journal_dir) == before  # every failed batch rolled back: nothing half-written
    _assert_whole_lines(rig.journal_dir)
    assert rig.journal is not None and rig.journal.pending_rows > 0

    disk.full = False  # the disk frees
    await wait_notice(rig, "journal writing again")
    await wait_log(logs, "JOURNAL RECOVERED")
    assert rig.journal.error is None
    res = await engine.submit(ClosePosition(BTC))
    assert res.ok, res
    rows = await rig.wait_trades(2)
    assert [(r["size_before"], r["size_after"]) for r in rows] == [(D("0.1"), D("0.06")), (D("0.06"), D(0))]
    assert rows[1]["funding"] == D("-0.36")  # 0.06 x 60000 x 0.0001, booked while the disk was full
    _assert_whole_lines(rig.journal_dir)
    await assert_matches_exchange(rig, expect_fills=3, expect_bills=1, expect_closes=2)
    errors = [t for t in notices(rig, NoticeLevel.ERROR) if "journal" in t]
    assert len(errors) == 3  # one notice for the fault, one per refused command: no flood
    assert not logs.tracebacks()


async def test_disk_still_full_at_stop_then_restart_backfills_everything_once(
        rig: Rig, logs: LogCapture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows pending in memory die with the process; the exchange still has them: the restart
    (disk freed) backfills them, once."""
    disk = FullDisk(monkeypatch)
    await rig.start_engine()
    await rig.outside("buy", 20)
    await rig.wait_fills(1)
    await rig.flush()
    disk.full = True
    await rig.outside("sell", 20, reduce_only=True)
    await wait_notice(rig, "journal cannot write")
    assert rig.engine is not None and rig.journal is not None
    await rig.engine.stop()
    logs.one("journal flush at stop failed", "No space left on device")
    with pytest.raises(JournalError, match="No space left on device"):
        await rig.journal.close()
    rig.engine = rig.journal = None
    _assert_whole_lines(rig.journal_dir)
    assert len(rig.fills()) == 1 and rig.trades() == []

    disk.full = False
    await rig.start_engine()
    (row,) = await rig.wait_trades(1)
    assert row["size_before"] == D("0.2") and row["size_after"] == 0
    await assert_matches_exchange(rig, expect_fills=2, expect_closes=1)
    assert not logs.tracebacks()
