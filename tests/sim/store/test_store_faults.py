"""The store must neither stop trading nor stall on one bad thing: a mark file that cannot be
read, a journal line PostgreSQL cannot take. Real engines, real simulators, a real PostgreSQL."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.journal import Journal, read_fills
from core.journal.binding import AccountId
from core.model import OrderSide, OrderState, OrderUpdate
from core.service.runner import build_stack
from core.store.marks import MARK_FILE
from core.store.rows import Scope
from core.store.shipper import Shipper
from tests.helpers.engine_helpers import BTC, wait_for
from tests.helpers.journal_crash_writer import make_bill, make_fill
from tests.helpers.pg_helpers import StoreDb
from tests.helpers.store_helpers import caught_up, csv_rows, store_rows, store_settings, trade

pytestmark = pytest.mark.timeout(120)


def _journal_of_fills(directory: Path, n: int) -> None:
    """A journal at ``directory`` holding ``n`` fills (F0000000 on), written and closed."""
    j = Journal(directory)
    for i in range(n):
        j.record_fill(make_fill(i))
    j.close_sync()


async def test_a_mark_file_that_cannot_be_read_neither_stops_the_engine_nor_loses_rows(
        tmp_path: Path, store_db: StoreDb) -> None:
    """store-mark.json is a directory (a bad copy, a hand mistake): the engine starts and trades
    all the same, the store says why it is behind, and once the file is moved away every row
    lands, once."""
    settings = store_settings(tmp_path, "desk-m", store_db.writer)
    journal_dir = Path(settings.journal.dir)
    journal_dir.mkdir(parents=True, mode=0o700)
    (journal_dir / MARK_FILE).mkdir()
    async with build_stack(settings) as stack:
        await trade(stack, 2)
        await stack.engine.settle()
        await stack.journal.flush()
        assert stack.store is not None
        link = stack.store
        await wait_for(lambda: MARK_FILE in link.state.error, timeout=10, what="the reason said")
        assert not link.state.connected and store_rows(store_db, "desk-m") == 0
        (journal_dir / MARK_FILE).rmdir()
        await caught_up(stack)
        await trade(stack, 1)
        await caught_up(stack)
    assert len(read_fills(journal_dir)) == 6
    assert store_rows(store_db, "desk-m") == csv_rows(journal_dir)


async def test_a_line_postgresql_cannot_take_does_not_stall_every_row_after_it(
        tmp_path: Path, store_db: StoreDb) -> None:
    """An exchange message holding a NUL byte is journaled as it came; PostgreSQL's text refuses
    NUL. The row lands (the byte shown as U+FFFD, as an undecodable byte is) and so does every
    row after it, instead of the shipment failing again and again forever."""
    directory = tmp_path / "journal"
    j = Journal(directory)
    for i in range(5):
        j.record_fill(make_fill(i))
    t = datetime(2024, 5, 1, 12, tzinfo=UTC)
    j.record_order(OrderUpdate("O-nul", "pdc-nul", BTC, OrderSide.BUY, "limit", D("1"), D("0.01"),
                               D("60000"), OrderState.REJECTED, t, message="bad\x00price"))
    for i in range(5, 10):
        j.record_fill(make_fill(i))
    j.close_sync()
    assert any("\x00" in p.read_text() for p in directory.glob("orders_*.csv"))  # as it came
    journal = Journal(directory)
    journal.open()
    shipper = Shipper(journal, store_db.writer, Scope.of("nul", AccountId("sim", "u")))
    await shipper.start()
    try:
        deadline = asyncio.get_running_loop().time() + 15
        while asyncio.get_running_loop().time() < deadline:
            state = shipper.state
            if state.connected and state.rows_behind == 0 and not state.error:
                break
            await asyncio.sleep(0.1)
        assert not shipper.state.error, shipper.state.error
        assert shipper.state.rows_behind == 0
    finally:
        await shipper.stop()
        journal.close_sync()
    assert store_rows(store_db, "nul") == csv_rows(directory) == 11
    message = store_db.server.psql("SELECT message FROM perpdesk.orders WHERE row_key = "
                                   "'O-nul|rejected'", store_db.name).strip()
    assert message == "bad\ufffdprice"


async def test_one_account_under_a_second_engine_name_is_refused_and_counted_once(
        tmp_path: Path, store_db: StoreDb) -> None:
    """The default engine name is host + journal folder: a moved folder or a container's new
    host name renames the engine. The same journal under the new name must not land a second
    time (the store's report and accounts total would count the account twice): the second name
    is refused, naming the first, and the first ships on."""
    import asyncpg

    from core.store.queries import ALL_ENGINES, fetch_report

    directory = tmp_path / "journal"
    _journal_of_fills(directory, 40)
    account = AccountId("sim", "u-1")
    for name in ("desk-old", "desk-new"):  # the same journal, started again under a new name
        journal = Journal(directory)
        journal.open()
        shipper = Shipper(journal, store_db.writer, Scope.of(name, account))
        await shipper.start()
        try:
            if name == "desk-old":
                await wait_for(lambda s=shipper: s.state.connected and s.state.rows_behind == 0,  # type: ignore[misc]
                               timeout=15, what="the first name ships")
            else:
                await wait_for(lambda s=shipper: "desk-old" in s.state.error, timeout=15,  # type: ignore[misc]
                               what="the second name refused")
                assert 'set [engine] name = "desk-old"' in shipper.state.error
                assert shipper.state.rows_behind == 40 and not shipper.state.connected
        finally:
            await shipper.stop()
            journal.close_sync()
    assert store_rows(store_db, "desk-old") == 40 and store_rows(store_db, "desk-new") == 0
    conn = await asyncpg.connect(store_db.reader)
    try:
        reports = {r.engine: r.rows for r in await fetch_report(conn)}
    finally:
        await conn.close()
    assert set(reports) == {"desk-old", ALL_ENGINES}
    assert reports[ALL_ENGINES][-1].fills == 40
    w = await asyncpg.connect(store_db.writer)
    try:  # its status row is refused too, so the accounts total does not count it twice
        with pytest.raises(asyncpg.UniqueViolationError):
            await w.execute("SELECT perpdesk.put_status('desk-new', 'sim', 'live', 'u-1', 1, 1, 1,"
                            " 1, 1, 0, 'none', 'running', '', 0, 0, now())")
        await w.execute("SELECT perpdesk.put_status('desk-old', 'sim', 'live', 'u-1', 1, 1, 1,"
                        " 1, 1, 0, 'none', 'running', '', 0, 0, now())")
    finally:
        await w.close()


async def _ship_all(directory: Path, store_db: StoreDb, engine: str,
                    edit: Callable[[], None] | None = None) -> Shipper:
    """Ship the journal in ``directory`` until nothing more can go (``edit`` runs once the
    journal is open, as a hand edit of a running engine's files would); the stopped shipper."""
    journal = Journal(directory)
    journal.open()
    if edit is not None:
        edit()
    shipper = Shipper(journal, store_db.writer, Scope.of(engine, AccountId("sim", f"u-{engine}")))
    await shipper.start()
    try:
        for _ in range(50):
            await asyncio.sleep(0.1)
            if shipper.state.connected and not await shipper.ship_once():
                break
    finally:
        await shipper.stop()
        journal.close_sync()
    return shipper


async def test_a_value_postgresql_cannot_store_is_skipped_and_every_other_row_lands(
        tmp_path: Path, store_db: StoreDb) -> None:
    """A hand edit gives one fill a fee of 1e-20000: a decimal, but more places than PostgreSQL's
    numeric holds, so the driver refuses the whole batch, at every retry. That row is skipped
    with a warning; the others land."""
    directory = tmp_path / "journal"
    _journal_of_fills(directory, 10)
    path = next(directory.glob("orders_*.csv"))
    lines = path.read_text().splitlines(keepends=True)
    assert lines[4].count(",0.0123,") == 1
    lines[4] = lines[4].replace(",0.0123,", ",1e-20000,")
    path.write_text("".join(lines))
    shipper = await _ship_all(directory, store_db, "edited")
    assert shipper.state.rows_behind == 0 and not shipper.state.error
    assert store_rows(store_db, "edited") == 9
    missing = store_db.server.psql("SELECT count(*) FROM perpdesk.orders WHERE row_key = "
                                   "'F0000003'", store_db.name).strip()
    assert missing == "0"  # the edited one (line 4 = the fourth fill)


async def test_when_postgresql_refuses_every_row_nothing_is_skipped(
        tmp_path: Path, store_db: StoreDb) -> None:
    """Every row refused is the store's fault (a schema of another version?), not the rows':
    none is skipped, they wait behind and the reason is said."""
    directory = tmp_path / "journal"
    _journal_of_fills(directory, 4)
    path = next(directory.glob("orders_*.csv"))
    path.write_text(path.read_text().replace(",0.0123,", ",1e-20000,"))
    journal = Journal(directory)
    journal.open()
    shipper = Shipper(journal, store_db.writer, Scope.of("all-bad", AccountId("sim", "u")))
    await shipper.start()
    try:
        await wait_for(lambda: "refuses every row" in shipper.state.error, timeout=15,
                       what="the store's refusal said")
        assert shipper.state.rows_behind == 4
    finally:
        await shipper.stop()
        journal.close_sync()
    assert store_rows(store_db, "all-bad") == 0


async def test_a_file_whose_header_cannot_be_read_waits_and_the_other_files_ship(
        tmp_path: Path, store_db: StoreDb) -> None:
    """The funding file's header is broken while the engine runs: its rows wait (counted as
    behind), every other file's rows land."""
    directory = tmp_path / "journal"
    j = Journal(directory)
    for i in range(10):
        j.record_fill(make_fill(i))
        j.record_funding(make_bill(i))
    j.close_sync()
    funding = next(directory.glob("funding_*.csv"))

    def break_header() -> None:
        text = funding.read_text()
        funding.write_text(text.replace(",amount,", ",amt,", 1))

    shipper = await _ship_all(directory, store_db, "header", break_header)
    assert store_rows(store_db, "header") == 10  # the fills
    assert shipper.state.rows_behind == 10  # the bills, waiting
    funding.write_text(funding.read_text().replace(",amt,", ",amount,", 1))  # mended
    shipper = await _ship_all(directory, store_db, "header")
    assert store_rows(store_db, "header") == 20 and shipper.state.rows_behind == 0
