"""The CSV journal as a trader relies on it: exact rows, no duplicates, nothing torn, durable."""
from __future__ import annotations

import asyncio
import csv
import errno
import os
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from loguru import logger

from core.journal import (
    Journal,
    JournalError,
    read_fills,
    read_funding,
    read_orders,
    read_positions,
    read_rows,
    read_trades,
)
from core.model import (
    Liquidity,
    OrderState,
    PositionSide,
    PositionSnapshot,
)
from tests.helpers.journal_rows import T0, close, fill, funding, order

D = Decimal

SPEC_ORDERS = ["ts", "event", "symbol", "order_id", "client_order_id", "fill_id", "side",
               "contracts", "contract_size", "coins", "price", "fee", "fee_ccy", "reduce_only",
               "liquidity", "origin"]
SPEC_TRADES = ["closed_at", "symbol", "position_id", "side", "reason", "size_before",
               "size_closed", "size_after", "contracts_closed", "contract_size", "entry_price",
               "exit_price", "gross_pnl", "fee", "liq_penalty", "funding", "net_pnl", "opened_at",
               "source"]
SPEC_FUNDING = ["ts", "symbol", "position_id", "rate", "position_contracts", "position_coins",
                "mark_price", "amount", "ccy", "bill_id"]
SPEC_POSITIONS = ["ts", "symbol", "position_id", "side", "contracts", "coins", "entry_price",
                  "mark_price", "unrealized_pnl", "funding_accrued", "leverage", "margin_mode",
                  "liq_price"]


def snapshot(**kw: object) -> PositionSnapshot:
    base: dict[str, object] = dict(
        symbol="BTC/USDT:USDT", position_id="BTC/USDT:USDT#net#1714564800000", pos_side="net",
        side=PositionSide.SHORT, contracts=D("2"), contract_size=D("0.01"),
        entry_price=D("64000"), mark_price=D("63500.5"), unrealized_pnl=D("9.99"),
        funding_accrued=D("0.12"), leverage=D("10"), margin_mode="cross", liq_price=None,
        opened_at=T0 - timedelta(hours=1), ts=T0,
    )
    base.update(kw)
    return PositionSnapshot(**base)  # type: ignore[arg-type]


def raw(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def opened(tmp_path: Path, **kw: object) -> Journal:
    j = Journal(tmp_path, **kw)  # type: ignore[arg-type]
    j.open()
    return j


# ---- row content and column order ---------------------------------------------------------
def test_fill_row_is_exact_and_in_spec_column_order(tmp_path: Path) -> None:
    j = opened(tmp_path)
    assert j.record_fill(fill(fill_pnl=D("1.25"), pos_side="long"))
    j.close_sync()
    header, row = raw(tmp_path / "orders_2024-05-01.csv")
    assert header[:16] == SPEC_ORDERS
    got = dict(zip(header, row, strict=False))
    assert row[:16] == ["2024-05-01T12:00:00.123Z", "fill", "BTC/USDT:USDT", "O1", "pdc1", "F1",
                        "buy", "1.5", "0.01", "0.015", "64000.1", "0.0480075", "USDT", "false",
                        "taker", "console"]
    assert got["fill_pnl"] == "1.25" and got["pos_side"] == "long"


def test_order_state_row(tmp_path: Path) -> None:
    j = opened(tmp_path)
    assert j.record_order(order(OrderState.PLACED))
    assert j.record_order(order(OrderState.CANCELED, message="post only,\nwould take"))
    j.close_sync()
    rows = read_rows(tmp_path, "orders")
    assert [r["event"] for r in rows] == ["placed", "canceled"]
    placed = rows[0]
    assert (placed["fill_id"], placed["side"], placed["coins"], placed["price"]) == ("", "sell", "0.3", "3100.5")
    assert placed["reduce_only"] == "true" and placed["origin"] == "strategy"
    assert rows[1]["message"] == "post only, would take"  # one physical line per row
    assert read_fills(tmp_path) == []


def test_trade_row_net_pnl_and_columns(tmp_path: Path) -> None:
    j = opened(tmp_path)
    assert j.record_close(close(fill_ids=("F2", "F3")))
    j.close_sync()
    header, row = raw(tmp_path / "trades_2024-05-01.csv")
    assert header == SPEC_TRADES + ["close_id", "fill_ids"]
    got = dict(zip(header, row, strict=False))
    assert got["net_pnl"] == "4.9077"  # 5.001 - 0.081 - 0 + (-0.0123), exact
    assert got["size_before"] == "0.015" and got["size_after"] == "0.01"
    assert got["opened_at"] == "2024-05-01T09:00:00.123Z" and got["source"] == "ledger"
    assert got["fill_ids"] == "F2;F3"
    assert got["close_id"] == "BTC/USDT:USDT#net#1714564800000|F2"
    typed = read_trades(tmp_path)[0]
    assert typed["net_pnl"] == typed["gross_pnl"] - typed["fee"] - typed["liq_penalty"] + typed["funding"]  # type: ignore[operator]


def test_funding_row_exact_columns(tmp_path: Path) -> None:
    j = opened(tmp_path)
    assert j.record_funding(funding())
    j.close_sync()
    header, row = raw(tmp_path / "funding_2024-05-01.csv")
    assert header == SPEC_FUNDING
    assert row == ["2024-05-01T12:00:00.123Z", "BTC/USDT:USDT", "BTC/USDT:USDT#net#1714564800000",
                   "0.0001", "60", "0.6", "64016.5", "-0.3841", "USDT", "B1"]


def test_position_snapshot_row(tmp_path: Path) -> None:
    j = opened(tmp_path)
    j.record_position(snapshot())
    j.record_position(snapshot(liq_price=D("70123.40"), ts=T0 + timedelta(seconds=60)))
    j.close_sync()
    header, *rows = raw(tmp_path / "positions_open_2024-05-01.csv")
    assert header[:13] == SPEC_POSITIONS
    assert rows[0][:13] == ["2024-05-01T12:00:00.123Z", "BTC/USDT:USDT",
                            "BTC/USDT:USDT#net#1714564800000", "short", "2", "0.02", "64000",
                            "63500.5", "9.99", "0.12", "10", "cross", ""]
    typed = read_positions(tmp_path)
    assert typed[0]["liq_price"] is None and typed[1]["liq_price"] == D("70123.4")


def test_sign_conventions_survive_the_round_trip(tmp_path: Path) -> None:
    j = opened(tmp_path)
    j.record_fill(fill("PAID", fee=D("0.05")))
    j.record_fill(fill("REBATE", fee=D("-0.002"), liquidity=Liquidity.MAKER))
    j.record_funding(funding("RECV", amount=D("0.77")))
    j.record_funding(funding("PAID", amount=D("-0.77")))
    j.close_sync()
    fees = {r["fill_id"]: r["fee"] for r in read_fills(tmp_path)}
    assert fees == {"PAID": D("0.05"), "REBATE": D("-0.002")}
    amounts = {r["bill_id"]: r["amount"] for r in read_funding(tmp_path)}
    assert amounts == {"RECV": D("0.77"), "PAID": D("-0.77")}
    assert sum(amounts.values()) == 0  # exact, no float residue


def test_tiny_and_huge_values_are_plain_not_exponent(tmp_path: Path) -> None:
    j = opened(tmp_path)
    j.record_fill(fill(fee=D("1E-10"), price=D("1.2E+5")))
    j.close_sync()
    row = read_rows(tmp_path, "orders")[0]
    assert (row["fee"], row["price"]) == ("0.0000000001", "120000")


# ---- day files ------------------------------------------------------------------------------
def test_rows_roll_over_at_utc_midnight(tmp_path: Path) -> None:
    j = opened(tmp_path)
    before = datetime(2024, 5, 1, 23, 59, 59, 999000, tzinfo=UTC)
    after = datetime(2024, 5, 2, 0, 0, tzinfo=UTC)
    tokyo = timezone(timedelta(hours=9))
    j.record_fill(fill("A", ts=before))
    j.record_fill(fill("B", ts=after))
    j.record_fill(fill("C", ts=datetime(2024, 5, 2, 8, 30, tzinfo=tokyo)))  # 23:30Z on May 1
    j.record_funding(funding("B1", ts=after))
    j.close_sync()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".csv") == [
        "funding_2024-05-02.csv", "orders_2024-05-01.csv", "orders_2024-05-02.csv"]
    may1 = raw(tmp_path / "orders_2024-05-01.csv")
    may2 = raw(tmp_path / "orders_2024-05-02.csv")
    assert [r[5] for r in may1[1:]] == ["A", "C"] and [r[5] for r in may2[1:]] == ["B"]
    assert may1[2][0] == "2024-05-01T23:30:00.000Z"
    assert sum(r[0] == "ts" for r in may1) == 1  # header once
    assert [r["fill_id"] for r in read_fills(tmp_path, day=after.date())] == ["B"]


def test_header_written_once_across_batches_and_restarts(tmp_path: Path) -> None:
    for i in range(3):
        j = opened(tmp_path)
        j.record_fill(fill(f"F{i}"))
        j.flush_sync()
        j.record_fill(fill(f"G{i}"))
        j.close_sync()
    rows = raw(tmp_path / "orders_2024-05-01.csv")
    assert rows[0][0] == "ts" and all(r[0] != "ts" for r in rows[1:])
    assert len(rows) == 7


# ---- idempotency ----------------------------------------------------------------------------
def test_duplicates_refused_before_flush(tmp_path: Path) -> None:
    j = opened(tmp_path)
    assert j.record_fill(fill("F1")) and not j.record_fill(fill("F1", price=D("1")))
    assert j.record_funding(funding("B1")) and not j.record_funding(funding("B1"))
    assert j.record_close(close(("F2",))) and not j.record_close(close(("F2",)))
    assert j.record_order(order(OrderState.PLACED)) and not j.record_order(order(OrderState.PLACED))
    assert j.record_order(order(OrderState.FILLED))
    j.close_sync()
    assert [r["price"] for r in read_fills(tmp_path)] == [D("64000.1")]  # the first copy wins
    assert len(read_funding(tmp_path)) == 1 and len(read_trades(tmp_path)) == 1
    assert [r["event"] for r in read_orders(tmp_path)] == ["fill", "placed", "filled"]


def test_add_fill_and_add_close_hand_back_the_row_they_queued(tmp_path: Path) -> None:
    # the fill path logs from the row the journal queued (its texts), so the row handed back is
    # the one written, and a refused copy hands back none
    j = opened(tmp_path)
    row = j.add_fill(fill("F1"))
    assert row is not None and row.key == "F1"
    assert j.add_fill(fill("F1", price=D("1"))) is None
    crow = j.add_close(close(("F2",)))
    assert crow is not None and j.add_close(close(("F2",))) is None
    j.close_sync()
    lines = (tmp_path / "orders_2024-05-01.csv").read_text().splitlines()
    assert lines[1] + "\n" == row.line
    assert (tmp_path / "trades_2024-05-01.csv").read_text().splitlines()[1] + "\n" == crow.line


def test_add_fill_asked_still_refuses_a_pending_copy(tmp_path: Path) -> None:
    # asked=True skips the look-up the caller just made (has_fill); the id reserved by a copy
    # queued before it (another thread, or an earlier call) still refuses the second copy
    j = opened(tmp_path)
    assert not j.has_fill("F1", T0)
    assert j.add_fill(fill("F1"), asked=True) is not None
    assert j.add_fill(fill("F1", price=D("1")), asked=True) is None
    j.close_sync()
    assert [r["price"] for r in read_fills(tmp_path)] == [D("64000.1")]


def test_duplicates_refused_across_restart(tmp_path: Path) -> None:
    j = opened(tmp_path)
    j.record_fill(fill("F1", ts=T0 - timedelta(days=1)))
    j.record_fill(fill("F2"))
    j.record_funding(funding("B1"))
    j.record_close(close(("F2",)))
    j.record_order(order(OrderState.PLACED))
    j.close_sync()

    j2 = opened(tmp_path)
    assert j2.has_fill("F1") and j2.has_fill("F2") and j2.has_bill("B1")
    assert j2.last_fill_time() == T0
    assert not j2.record_fill(fill("F1", ts=T0 - timedelta(days=1)))
    assert not j2.record_fill(fill("F2"))
    assert not j2.record_funding(funding("B1"))
    assert not j2.record_close(close(("F2",)))
    assert not j2.record_order(order(OrderState.PLACED))
    assert j2.record_fill(fill("F3", ts=T0 + timedelta(seconds=1)))
    assert j2.last_fill_time() == T0 + timedelta(seconds=1)
    j2.close_sync()
    ids = [r["fill_id"] for r in read_fills(tmp_path)]
    assert sorted(ids) == ["F1", "F2", "F3"]


def test_empty_journal_has_no_last_fill(tmp_path: Path) -> None:
    j = opened(tmp_path / "new" / "dir")
    assert j.last_fill_time() is None and (tmp_path / "new" / "dir").is_dir()


# ---- torn lines -----------------------------------------------------------------------------
def _capture_logs() -> tuple[list[str], int]:
    lines: list[str] = []
    return lines, logger.add(lambda m: lines.append(str(m).rstrip("\n")), format="{message}")


@pytest.mark.parametrize("tail", [b"2024-05-01T12:00:01.000Z,fill,BTC/USDT:USDT,O9,pdc9,F9,bu",
                                  b"2024-05-01T12:00:01.000Z,fill,BTC\n"])
def test_torn_last_line_is_cut_once_and_never_propagated(tmp_path: Path, tail: bytes) -> None:
    j = opened(tmp_path)
    j.record_fill(fill("F1"))
    j.close_sync()
    path = tmp_path / "orders_2024-05-01.csv"
    good = path.read_bytes()
    with open(path, "ab") as f:
        f.write(tail)
    lines, sink = _capture_logs()
    try:
        j2 = opened(tmp_path)
    finally:
        logger.remove(sink)
    assert lines == [f"JOURNAL REPAIRED {path}: cut torn last line ({len(tail)} bytes)"]
    assert path.read_bytes() == good
    assert j2.record_fill(fill("F9"))  # the torn fill was never journaled: backfill may add it
    j2.close_sync()
    assert [r["fill_id"] for r in read_fills(tmp_path)] == ["F1", "F9"]
    assert all(len(r) == len(raw(path)[0]) for r in raw(path))
    lines, sink = _capture_logs()
    try:
        opened(tmp_path)
    finally:
        logger.remove(sink)
    assert lines == []  # an intact journal is left alone


def test_torn_header_only_file_gets_a_fresh_header(tmp_path: Path) -> None:
    path = tmp_path / "funding_2024-05-01.csv"
    path.write_bytes(b"ts,symbol,posi")
    j = opened(tmp_path)
    j.record_funding(funding("B1"))
    j.close_sync()
    assert raw(path)[0] == SPEC_FUNDING and len(raw(path)) == 2


def test_reader_skips_a_torn_tail_it_finds_before_repair(tmp_path: Path) -> None:
    j = opened(tmp_path)
    j.record_funding(funding("B1"))
    j.close_sync()
    with open(tmp_path / "funding_2024-05-01.csv", "a") as f:
        f.write("2024-05-01T12:00:00.123Z,BTC/USDT:USDT,x,0.0001")
    assert [r["bill_id"] for r in read_funding(tmp_path)] == ["B1"]


# ---- group commit and durability --------------------------------------------------------------
async def test_group_commit_batches_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    j = Journal(tmp_path, flush_interval=0.05, max_batch=500)
    await j.start()
    for i in range(1000):
        assert j.record_fill(fill(f"F{i}", ts=T0 + timedelta(milliseconds=i)))
    await j.flush()
    on_disk = read_fills(tmp_path)  # durable before close
    assert [r["fill_id"] for r in on_disk] == [f"F{i}" for i in range(1000)]
    assert len(calls) <= 6  # a handful of batches (+1 directory fsync), not 1000
    await j.close()


async def test_rows_reach_disk_without_an_explicit_flush(tmp_path: Path) -> None:
    j = Journal(tmp_path, flush_interval=0.01)
    await j.start()
    j.record_funding(funding("B1"))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if read_funding(tmp_path):
            break
    assert [r["bill_id"] for r in read_funding(tmp_path)] == ["B1"]
    assert j.pending_rows == 0
    await j.close()


async def test_an_idle_journal_keeps_no_timer_and_still_commits_each_group(tmp_path: Path) -> None:
    """With nothing pending the commit task sleeps without a timer (it polled every
    flush_interval, 20 loop wake-ups a second for nothing: issue 25); a row still reaches the
    disk within its group's interval, without a flush, each time one arrives."""
    j = Journal(tmp_path, flush_interval=0.02)
    await j.start()
    loop = asyncio.get_running_loop()

    def timers() -> list[asyncio.TimerHandle]:
        return [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]

    for n in (1, 2):
        await asyncio.sleep(0.1)
        assert timers() == []  # idle: nothing will wake the loop
        j.record_funding(funding(f"B{n}"))
        assert len(timers()) <= 1  # the group's interval, once the task runs
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(read_funding(tmp_path)) == n:
                break
        assert [r["bill_id"] for r in read_funding(tmp_path)] == [f"B{i}" for i in range(1, n + 1)]
    await asyncio.sleep(0.1)
    assert timers() == [] and j.pending_rows == 0
    await j.close()


@pytest.mark.parametrize("max_batch", [1000, 1], ids=["first-row", "full-batch"])
def test_a_row_from_another_thread_after_the_loop_closed_is_kept(tmp_path: Path, max_batch: int) -> None:
    """The first row of a batch (and a full batch) wakes the commit task; from another thread,
    after the engine's loop has closed, that wake cannot be delivered: the row is still accepted
    (not an error in the recording thread) and written by the closing flush."""
    import threading

    j = Journal(tmp_path, flush_interval=0.02, max_batch=max_batch)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(j.start())
    loop.close()  # the commit task never ran to its end: the engine's loop went away
    errors: list[BaseException] = []

    def record() -> None:
        try:
            assert j.record_funding(funding("B1"))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    worker = threading.Thread(target=record)
    worker.start()
    worker.join()
    assert errors == []
    j.close_sync()
    assert [r["bill_id"] for r in read_funding(tmp_path)] == ["B1"]


async def test_flush_waits_for_an_inflight_batch(tmp_path: Path) -> None:
    j = Journal(tmp_path, flush_interval=0.001, max_batch=1)
    await j.start()
    for i in range(50):
        j.record_fill(fill(f"F{i}"))
        if i % 7 == 0:
            await asyncio.sleep(0)
    await j.flush()
    assert len(read_fills(tmp_path)) == 50
    await j.close()


def test_disk_full_leaves_no_half_row_and_retries_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = opened(tmp_path)
    j.record_fill(fill("F1"))
    j.flush_sync()
    path = tmp_path / "orders_2024-05-01.csv"
    before = path.read_bytes()

    real_write = os.write
    journal_fds: set[int] = set(j._files.handles.values())

    def half_then_enospc(fd: int, data: bytes) -> int:
        if fd in journal_fds:
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_enospc)
    j.record_fill(fill("F2"))
    j.record_fill(fill("F3"))
    with pytest.raises(JournalError) as err:
        j.flush_sync()
    assert str(err.value) == f"cannot write journal file {path}: No space left on device"
    assert path.read_bytes() == before  # rolled back to the last whole batch
    assert not j.record_fill(fill("F2"))  # still reserved: will be written, not lost or doubled

    monkeypatch.setattr(os, "write", real_write)
    j.close_sync()
    assert [r["fill_id"] for r in read_fills(tmp_path)] == ["F1", "F2", "F3"]


def test_read_only_filesystem_on_a_new_day_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = opened(tmp_path)
    real_open = os.open

    def erofs(path: object, *a: object, **kw: object) -> int:
        if str(path).endswith(".csv"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_open(path, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", erofs)
    j.record_funding(funding("B1"))
    with pytest.raises(JournalError, match=r"funding_2024-05-01\.csv: Read-only file system$"):
        j.flush_sync()
    monkeypatch.setattr(os, "open", real_open)
    j.close_sync()
    assert [r["bill_id"] for r in read_funding(tmp_path)] == ["B1"]


def test_sync_use_commits_inline_at_max_batch(tmp_path: Path) -> None:
    j = opened(tmp_path, max_batch=10)
    for i in range(25):
        j.record_fill(fill(f"F{i}"))
    assert j.pending_rows == 5  # 20 already written without a loop
    assert len(read_fills(tmp_path)) == 20
    j.close_sync()
    assert len(read_fills(tmp_path)) == 25
