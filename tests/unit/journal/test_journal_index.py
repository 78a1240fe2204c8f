"""The journal index: derived from the CSV bytes only, rebuilt when deleted, caught up when stale,
and what it answers (ids, report totals, replay rows, history pages) equals reading the CSV."""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.journal_year import generate
from core.accounting.ledger import Ledger
from core.accounting.report import build_report, build_report_from_csv
from core.journal import Journal, read_fills, read_funding, read_trades
from core.journal import history as history_module
from core.journal.history import HistoryPager, fill_from_row
from core.journal.index import INDEX_NAME, SqliteJournalIndex
from core.journal.schema import fill_row, funding_row
from tests.helpers.journal_rows import T0, _journal_with_rows, close, fill, funding, order


def _ids(directory: Path, table: str, column: str) -> set[str]:
    db = sqlite3.connect(directory / INDEX_NAME)
    try:
        return {r[0] for r in db.execute(f"SELECT {column} FROM {table}")}  # noqa: S608
    finally:
        db.close()


def test_index_is_rebuilt_when_deleted_and_every_id_stays_refused(tmp_path: Path) -> None:
    _journal_with_rows(tmp_path)
    before = _ids(tmp_path, "fills", "fill_id")
    assert before == {f"F{i}" for i in range(30)}
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp_path / INDEX_NAME) + suffix).unlink(missing_ok=True)
    j = Journal(tmp_path)
    j.open()
    assert _ids(tmp_path, "fills", "fill_id") == before
    assert j.has_fill("F0") and j.has_bill("B2") and not j.has_fill("F99")
    assert not j.record_fill(fill("F3")) and not j.record_funding(funding("B1"))
    assert not j.record_close(close(("F1",))) and not j.record_order(order())
    assert j.last_fill_time() == T0 + timedelta(hours=5 * 29)
    j.close_sync()
    assert len(read_fills(tmp_path)) == 30


@pytest.mark.parametrize(("spoil", "said"), [("delete", "was missing"), ("garbage", "was damaged"),
                                             ("empty tables", "was damaged")])
def test_a_rebuilt_index_is_said_once_in_the_log(tmp_path: Path, spoil: str, said: str) -> None:
    from tests.helpers.fault_helpers import LogCapture

    _journal_with_rows(tmp_path)
    index = tmp_path / INDEX_NAME
    for suffix in ("", "-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    if spoil == "garbage":
        index.write_bytes(b"this is not a database" * 100)
    elif spoil == "empty tables":
        db = sqlite3.connect(index)
        db.execute("CREATE TABLE something (x)")
        db.close()
    logs = LogCapture().install()
    try:
        for _ in range(2):  # the second open finds it current: nothing to say
            j = Journal(tmp_path)
            j.open()
            j.close_sync()
    finally:
        logs.remove()
    lines = logs.matching("JOURNAL INDEX")
    assert len(lines) == 1 and lines[0].level == "WARNING", [ln.message for ln in lines]
    assert said in lines[0].message and str(index) in lines[0].message
    assert "rebuilt from the CSV files" in lines[0].message and "35 rows" in lines[0].message
    assert _ids(tmp_path, "fills", "fill_id") == {f"F{i}" for i in range(30)}


def test_a_new_journal_says_nothing_of_its_first_index(tmp_path: Path) -> None:
    from tests.helpers.fault_helpers import LogCapture

    logs = LogCapture().install()
    try:
        _journal_with_rows(tmp_path)
    finally:
        logs.remove()
    assert logs.matching("JOURNAL INDEX") == []


def test_stale_index_catches_up_rows_appended_without_it(tmp_path: Path) -> None:
    """An older version (or a crash between the CSV fsync and the index) appended rows the index
    never saw: the next open indexes exactly that tail, nothing twice."""
    _journal_with_rows(tmp_path)
    orders = tmp_path / "orders_2024-05-01.csv"
    with open(orders, "a") as f:
        f.write(fill_row(fill("LATE", ts=T0 + timedelta(minutes=1))).line)
    with open(tmp_path / "funding_2024-05-01.csv", "a") as f:
        f.write(funding_row(funding("BLATE", ts=T0 + timedelta(minutes=2))).line)
    j = Journal(tmp_path)
    j.open()
    assert j.has_fill("LATE") and j.has_bill("BLATE")
    assert not j.record_fill(fill("LATE", ts=T0 + timedelta(minutes=1)))
    j.close_sync()
    assert _ids(tmp_path, "fills", "fill_id") == {str(r["fill_id"]) for r in read_fills(tmp_path)}
    assert build_report(tmp_path) == build_report_from_csv(tmp_path)


def test_file_edited_in_place_is_indexed_again_whole(tmp_path: Path) -> None:
    _journal_with_rows(tmp_path)
    build_report(tmp_path)  # index current
    orders = tmp_path / "orders_2024-05-01.csv"
    lines = orders.read_text().splitlines(keepends=True)
    removed = lines.pop(2)  # a trader deletes a row in a spreadsheet
    orders.write_text("".join(lines))
    assert build_report(tmp_path) == build_report_from_csv(tmp_path)
    fill_id = removed.split(",")[5]
    assert fill_id not in _ids(tmp_path, "fills", "fill_id")
    orders.unlink()  # a day file removed: its ids and totals leave the index
    assert build_report(tmp_path) == build_report_from_csv(tmp_path)
    assert _ids(tmp_path, "fills", "fill_id") == {str(r["fill_id"]) for r in read_fills(tmp_path)}


def test_report_from_index_equals_report_from_csv_over_many_days(tmp_path: Path) -> None:
    generate(tmp_path, lives=900, days=9)
    _journal_with_rows(tmp_path)  # another symbol, older days, funding and a liquidation-free mix
    assert build_report(tmp_path) == build_report_from_csv(tmp_path)
    day = sorted({r.day for r in build_report_from_csv(tmp_path) if r.day})[-1]
    assert build_report(tmp_path, day) == build_report_from_csv(tmp_path, day)
    assert len(_ids(tmp_path, "closes", "close_id")) == len(read_trades(tmp_path))
    assert len(_ids(tmp_path, "bills", "bill_id")) == len(read_funding(tmp_path))


def test_replay_rows_rebuild_the_same_open_lives_as_the_whole_history(tmp_path: Path) -> None:
    generate(tmp_path, lives=600, days=6)  # every life closed
    j = Journal(tmp_path)
    j.open()
    last = max(fill_from_row(r).ts for r in read_fills(tmp_path))
    j.record_fill(fill("OPEN1", ts=last + timedelta(hours=1), symbol="BTC-USDT-SWAP",
                       contract_size=fill().contract_size))
    j.record_fill(fill("OPEN2", ts=last + timedelta(hours=2), symbol="ETH-USDT-SWAP",
                       contract_size=fill().contract_size))
    j.close_sync()
    rows = j.replay_rows()
    everything = sorted((fill_from_row(r) for r in read_fills(tmp_path)), key=lambda f: f.ts)
    part = sorted((fill_from_row(r) for r in rows.fills), key=lambda f: f.ts)
    assert len(part) < len(everything) / 2  # only the last day or so is read and replayed
    assert rows.first_day is not None and rows.first_day > T0.date()
    whole, window = Ledger(), Ledger()
    for ledger, fills in ((whole, everything), (window, part)):
        for f in fills:
            ledger.apply_fill(f)
    assert window.positions() == whole.positions()
    assert {p.position_id for p in window.positions()} == {
        f"BTC-USDT-SWAP#net#{int((last + timedelta(hours=1)).timestamp() * 1000)}",
        f"ETH-USDT-SWAP#net#{int((last + timedelta(hours=2)).timestamp() * 1000)}"}
    pids = {str(r["position_id"]) for r in rows.trades}
    assert all(int(p.rsplit("#", 1)[1]) >= min(s.ts_ms for s in rows.starts.values() if s)
               for p in pids)


def test_deep_history_page_by_the_index_equals_walking_the_pages(tmp_path: Path) -> None:
    generate(tmp_path, lives=1200, days=8)
    SqliteJournalIndex(tmp_path).catch_up()
    walked = HistoryPager(tmp_path, "fills", 97)
    walked._counted = True  # noqa: SLF001 - the pre-index walk, as a reference
    pages = []
    n = 0
    while True:
        page = walked.read_page(n)
        pages.append(page)
        if not page.more:
            break
        n += 1
    jumped = HistoryPager(tmp_path, "fills", 97)
    deepest = jumped.read_page(10_000)
    assert deepest.number == pages[-1].number and deepest.items == pages[-1].items
    assert not deepest.more
    middle = HistoryPager(tmp_path, "fills", 97).read_page(len(pages) // 2)
    assert middle.items == pages[len(pages) // 2].items and middle.more


def test_one_batch_over_more_day_files_than_the_handle_cache_is_written(tmp_path: Path) -> None:
    """A backfill spanning many days lands in one batch: the handle cache (8 files) must not close
    a file of that batch before its fsync (it did: EBADF, the whole batch refused)."""
    j = Journal(tmp_path, max_open_files=2)
    j.open()
    for i in range(6):
        j.record_fill(fill(f"D{i}", ts=T0 + timedelta(days=i)))
    j.close_sync()
    assert sorted(str(r["fill_id"]) for r in read_fills(tmp_path)) == [f"D{i}" for i in range(6)]


def test_index_that_cannot_be_written_keeps_ids_refused_and_catches_up(tmp_path: Path,
                                                                       monkeypatch) -> None:
    """The CSV is written and fsynced first; an index update that fails (disk full) keeps the
    batch's ids in memory, and the next batch indexes both tails."""
    j = Journal(tmp_path)
    j.open()
    assert j.index is not None
    real = j.index.catch_up

    def broken(names=None):  # type: ignore[no-untyped-def]
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(j.index, "catch_up", broken)
    assert j.record_fill(fill("A"))
    j.flush_sync()
    assert "A" in {str(r["fill_id"]) for r in read_fills(tmp_path)}
    assert not j.record_fill(fill("A")) and j.has_fill("A")
    monkeypatch.setattr(j.index, "catch_up", real)
    assert j.record_fill(fill("B", ts=T0 + timedelta(seconds=1)))
    j.close_sync()
    assert _ids(tmp_path, "fills", "fill_id") == {"A", "B"}
    assert not j._pending_ids["fill"]  # noqa: SLF001


def _csv_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every journal CSV opened from now on (the readers and the index go through os.open)."""
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(".csv"):
            opened.append(Path(path).name)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    return opened


def test_report_of_a_current_index_opens_no_day_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    generate(tmp_path, lives=600, days=30)
    expected = build_report_from_csv(tmp_path)
    day = sorted({r.day for r in expected if r.day})[3]
    expected_day = build_report_from_csv(tmp_path, day)
    assert build_report(tmp_path) == expected  # builds the index from the CSV
    opened = _csv_opens(monkeypatch)
    assert build_report(tmp_path) == expected
    assert build_report(tmp_path, day) == expected_day != []
    assert opened == []  # the index is current: it answers alone, no day file is opened
    with open(tmp_path / f"trades_{day.isoformat()}.csv", "a") as f:  # a row the index has not seen
        f.write(",".join(["x"] * 3) + "\n")
    build_report(tmp_path)
    assert set(opened) == {f"trades_{day.isoformat()}.csv"}  # its new bytes only, not the others


def test_deepest_history_page_reads_only_the_rows_it_shows(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    generate(tmp_path, lives=600, days=30)
    index = SqliteJournalIndex(tmp_path)
    index.catch_up()  # built from the CSV
    index.close()
    read: list[int] = []
    from core.journal.rows import file_rows as real

    def counting(family: str, path: Path, typed: bool) -> Iterator[dict[str, Any]]:
        for n, row in enumerate(real(family, path, typed), 1):
            read.append(n)
            yield row

    monkeypatch.setattr(history_module, "file_rows", counting)
    opened = _csv_opens(monkeypatch)
    page = HistoryPager(tmp_path, "fills", 7).read_page(10**9)
    oldest = sorted(tmp_path.glob("orders_*.csv"))[0].name
    assert opened == [oldest] and not page.more
    whole = read_fills(tmp_path)
    assert [f.fill_id for f in page.items] == [str(r["fill_id"]) for r in whole[:len(page.items)]][::-1]
    fills_per_line = 2  # the generated orders files hold an order row per fill row
    assert len(read) <= fills_per_line * len(page.items) + 1 < sum(1 for r in whole if r)


def _dump(directory: Path) -> dict[str, list[tuple[Any, ...]]]:
    db = sqlite3.connect(directory / INDEX_NAME)
    try:
        names = {r[0]: r[1] for r in db.execute("SELECT id, name FROM files")}
        out = {"files": sorted(db.execute(
            "SELECT name, family, day, size, offset, lines, header, rows, tail, fill_rows FROM files"))}
        for table in ("fills", "orders", "closes", "bills", "totals"):
            rows = db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608
            at = 0 if table == "totals" else 1  # the file_id column, as the file's name
            out[table] = sorted(tuple(names.get(v, v) if i == at else v for i, v in enumerate(r))
                                for r in rows)
        return out
    finally:
        db.close()


def test_batches_are_indexed_from_memory_exactly_as_from_the_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each fsynced batch is indexed from the bytes the writer just wrote (issue 13: reading
    them back and re-checking each value was a fifth of the stream's CPU). The index must equal
    one rebuilt from the CSV files alone, a file edited in place between two batches included."""
    reads: list[str] = []
    catch_up_file = SqliteJournalIndex._catch_up_file

    def counting(self: SqliteJournalIndex, family: str, path: Path, known: Any) -> int:
        reads.append(path.name)
        return catch_up_file(self, family, path, known)

    j = Journal(tmp_path)
    j.open()
    monkeypatch.setattr(SqliteJournalIndex, "_catch_up_file", counting)
    for batch in range(4):
        for i in range(10):
            n = batch * 10 + i
            j.record_fill(fill(f"M{n}", ts=T0 + timedelta(hours=7 * n), fee=fill().fee + n))
        j.record_close(close((f"M{batch * 10}",), closed_at=T0 + timedelta(hours=70 * batch)))
        j.record_funding(funding(f"MB{batch}", ts=T0 + timedelta(hours=70 * batch + 1)))
        j.record_order(order())
        j.flush_sync()
    assert reads == []  # every batch from memory
    orders = sorted(tmp_path.glob("orders_*.csv"))[0]
    data = bytearray(orders.read_bytes())
    at = max(i for i in range(len(data) - 40, len(data)) if chr(data[i]).isdigit())
    data[at] = ord("7") if data[at] != ord("7") else ord("8")
    orders.write_bytes(bytes(data))  # one digit of the last row changed: same size, same inode
    j.record_fill(fill("M99", ts=T0 + timedelta(hours=1)))
    j.flush_sync()
    assert reads == [orders.name]  # the edit is seen: that file is read again whole
    j.close_sync()
    from_memory = _dump(tmp_path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp_path / INDEX_NAME) + suffix).unlink(missing_ok=True)
    SqliteJournalIndex(tmp_path).catch_up()  # from the files alone
    assert _dump(tmp_path) == from_memory
    assert build_report(tmp_path) == build_report_from_csv(tmp_path)


