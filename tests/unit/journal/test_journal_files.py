"""Hostile and hand-edited journal files (issue 10, items 4, 6 and 7).

A spreadsheet that reorders columns, a renamed header, a bad byte in an enum field, a day file
that became a folder, a planted symlink, a file owned by someone else, a permissive umask: each
must end in correct books or one clear error naming the file (and the line), never in a misread
row, a duplicate fill or trade history readable by every local user.
"""
from __future__ import annotations

import csv
import os
import stat
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.journal import Journal, JournalError, read_fills, read_funding, read_rows, read_trades
from core.journal.history import fill_from_row, read_day
from core.model import OrderSide
from tests.helpers.journal_files import ORDERS, _journal, _rewrite
from tests.helpers.journal_rows import T0, close, fill, funding

D = __import__("decimal").Decimal


def _swap(a: str, b: str) -> object:
    def edit(rows: list[list[str]]) -> list[list[str]]:
        i, j = rows[0].index(a), rows[0].index(b)
        for row in rows:
            row[i], row[j] = row[j], row[i]
        return rows
    return edit


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# ---- item 4: a reordered header --------------------------------------------------------------
def test_reordered_header_is_read_by_name_and_appended_in_its_order(tmp_path: Path) -> None:
    first = fill("F1", price=D("64000.1"))
    second = fill("F2", ts=T0 + timedelta(seconds=1), price=D("64100.5"), side=OrderSide.SELL)
    third = fill("F3", ts=T0 + timedelta(seconds=2), price=D("64200"))
    j = _journal(tmp_path)
    assert j.record_fill(first)
    j.close_sync()
    _rewrite(tmp_path / ORDERS, _swap("fill_id", "price"))  # what a spreadsheet can save

    j = _journal(tmp_path)  # restart 1
    assert not j.record_fill(first)
    assert j.record_fill(second)
    j.close_sync()
    j = _journal(tmp_path)  # restart 2: what restart 1 appended is read right
    assert not j.record_fill(first) and not j.record_fill(second)
    assert j.record_fill(third)
    j.close_sync()

    with open(tmp_path / ORDERS, newline="") as f:
        header, *lines = list(csv.reader(f))
    assert header.index("price") < header.index("fill_id")  # the trader's order is kept
    assert all(line[header.index("fill_id")] in {"F1", "F2", "F3"} for line in lines)
    fills = read_fills(tmp_path)
    assert Counter(str(r["fill_id"]) for r in fills) == {"F1": 1, "F2": 1, "F3": 1}
    assert [fill_from_row(r) for r in fills] == [first, second, third]
    assert [f.fill_id for f in read_day(tmp_path, T0.date()).fills] == ["F1", "F2", "F3"]


def test_spreadsheet_csv_utf8_with_bom_and_crlf_reads_and_appends(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    assert j.record_fill(fill("F1"))
    j.close_sync()
    path = tmp_path / ORDERS
    _rewrite(path, _swap("side", "symbol"))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    j = _journal(tmp_path)
    assert not j.record_fill(fill("F1"))
    assert j.record_fill(fill("F2", ts=T0 + timedelta(seconds=1), side=OrderSide.SELL))
    j.close_sync()
    j = _journal(tmp_path)
    assert not j.record_fill(fill("F2"))
    j.close_sync()
    assert [(r["fill_id"], r["side"], r["symbol"]) for r in read_fills(tmp_path)] == [
        ("F1", "buy", "BTC/USDT:USDT"), ("F2", "sell", "BTC/USDT:USDT")]


def test_header_reordered_while_running_is_followed(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    assert j.record_funding(funding("B1"))
    j.flush_sync()
    path = tmp_path / "funding_2024-05-01.csv"
    _rewrite(path, _swap("amount", "bill_id"))  # saved over the name while the journal runs
    assert j.record_funding(funding("B2", amount=D("-1.5")))
    j.close_sync()
    assert {r["bill_id"]: r["amount"] for r in read_funding(tmp_path)} == {
        "B1": D("-0.3841"), "B2": D("-1.5")}


@pytest.mark.parametrize("edit, named", [
    (lambda rows: [[("id" if c == "fill_id" else c) for c in rows[0]], *rows[1:]], "fill_id"),
    (lambda rows: [row[:-1] for row in rows], "message"),
    (lambda rows: [[*rows[0][:-1], "note"], *rows[1:]], "'note'"),
])
def test_header_with_missing_or_unknown_columns_is_refused_with_its_name(
        tmp_path: Path, edit: object, named: str) -> None:
    j = _journal(tmp_path)
    assert j.record_fill(fill("F1"))
    j.close_sync()
    path = tmp_path / ORDERS
    _rewrite(path, edit)
    before = path.read_bytes()
    with pytest.raises(JournalError) as err:
        Journal(tmp_path).open()
    for message in (str(err.value), ):
        assert str(path) in message and "line 1" in message and named in message
        assert "\n" not in message
    assert err.value.exit_code == 2
    with pytest.raises(JournalError) as err:
        read_fills(tmp_path)
    assert str(path) in str(err.value) and named in str(err.value)
    assert path.read_bytes() == before  # nothing appended under a header it cannot read


# ---- item 7: a bad value names the file, the line and the column ----------------------------
@pytest.mark.parametrize("column, value", [("side", "bu\ufffdy"), ("origin", "consol"),
                                           ("price", "64k"), ("ts", "yesterday")])
def test_bad_value_names_file_line_column(tmp_path: Path, column: str, value: str) -> None:
    j = _journal(tmp_path)
    for n in range(3):
        j.record_fill(fill(f"F{n}", ts=T0 + timedelta(seconds=n)))
    j.close_sync()
    path = tmp_path / ORDERS

    def edit(rows: list[list[str]]) -> list[list[str]]:
        rows[2][rows[0].index(column)] = value
        return rows

    _rewrite(path, edit)
    for read in (read_fills, lambda d: read_rows(d, "orders"), lambda d: read_day(d, T0.date())):
        with pytest.raises(JournalError) as err:
            read(tmp_path)
        message = str(err.value)
        assert f"{path}: line 3: column {column}: {value!r}" in message, message


def test_bad_byte_in_enum_field(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.record_close(close())
    j.close_sync()
    path = tmp_path / "trades_2024-05-01.csv"
    path.write_bytes(path.read_bytes().replace(b",manual,", b",man\xffual,"))
    with pytest.raises(JournalError, match=r"trades_2024-05-01\.csv: line 2: column reason"):
        read_trades(tmp_path)


def test_funding_file_replaced_by_a_folder_is_refused(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.record_funding(funding("B1"))
    j.close_sync()
    path = tmp_path / "funding_2024-05-01.csv"
    path.unlink()
    path.mkdir()
    with pytest.raises(JournalError, match=r"funding_2024-05-01\.csv is a folder"):
        read_funding(tmp_path)
    with pytest.raises(JournalError, match=r"funding_2024-05-01\.csv is a folder"):
        Journal(tmp_path).open()


# ---- item 6: modes, symlinks, owners ---------------------------------------------------------
def test_files_0600_and_folders_0700_under_umask_000(tmp_path: Path, umask_000: None) -> None:
    directory = tmp_path / "deep" / "journal"
    j = _journal(directory)
    j.record_fill(fill("F1"))
    j.record_funding(funding("B1"))
    j.close_sync()
    for folder in (directory, directory.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    names = sorted(p.name for p in directory.iterdir() if not p.name.startswith(".index."))
    assert names == ["funding_2024-05-01.csv", ORDERS]
    assert (directory / ".index.sqlite3").exists()
    for path in directory.iterdir():  # the index too: it holds every id and the day totals
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_planted_symlink_is_never_followed(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours\n")
    j = _journal(directory)
    (directory / "trades_2024-05-01.csv").symlink_to(elsewhere)  # planted after start
    j.record_close(close())
    with pytest.raises(JournalError, match=r"trades_2024-05-01\.csv is a symbolic link"):
        j.flush_sync()
    assert elsewhere.read_text() == "not yours\n"
    j._close_handles()
    with pytest.raises(JournalError, match=r"trades_2024-05-01\.csv is a symbolic link"):
        Journal(directory).open()  # and at the next start
    with pytest.raises(JournalError, match=r"trades_2024-05-01\.csv is a symbolic link"):
        read_trades(directory)
    assert elsewhere.read_text() == "not yours\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.record_fill(fill("F1"))
    j.close_sync()
    path = tmp_path / ORDERS
    os.chown(path, 54321, 54321)
    before = path.read_bytes()
    j = Journal(tmp_path)
    with pytest.raises(JournalError, match=r"orders_2024-05-01\.csv is owned by another user"):
        j.open()
    with pytest.raises(JournalError, match=r"orders_2024-05-01\.csv is owned by another user"):
        read_fills(tmp_path)
    assert path.read_bytes() == before
    path.unlink()
    j = _journal(tmp_path)
    other = tmp_path / "funding_2024-05-01.csv"  # planted while running: refused at write
    other.write_text("")
    os.chown(other, 54321, 54321)
    j.record_funding(funding("B1"))
    with pytest.raises(JournalError, match=r"funding_2024-05-01\.csv is owned by another user"):
        j.flush_sync()
    assert other.read_bytes() == b""


