"""The PostgreSQL store (core/store): init and roles, shipping, outages, crashes, accounts, report.

Every test runs against a real PostgreSQL (tests/helpers/pg_helpers.py: one server per session, a fresh
database per test) and real engines on real simulators; nothing of the database is mocked.
"""
from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core.accounting.report import build_report, format_report
from core.journal import read_fills, read_funding, read_trades
from core.service.runner import build_stack
from core.settings.config import (
    ConfigError,
    parse_settings,
)
from core.store.queries import ALL_ENGINES, fetch_accounts, fetch_report
from tests.helpers.engine_helpers import wait_for
from tests.helpers.paths import HELPERS, REPO
from tests.helpers.pg_helpers import StoreDb
from tests.helpers.store_helpers import caught_up as _caught_up
from tests.helpers.store_helpers import csv_rows as _csv_rows
from tests.helpers.store_helpers import store_rows as _store_rows
from tests.helpers.store_helpers import store_settings as _settings
from tests.helpers.store_helpers import trade as _trade

pytestmark = pytest.mark.timeout(120)


# ---- config ---------------------------------------------------------------------------------
def test_store_url_with_a_password_is_refused_in_config() -> None:
    for url in ("postgresql://w:secret@db.example/perpdesk",
                "postgresql://w@db.example/perpdesk?password=secret"):
        with pytest.raises(ConfigError) as err:
            parse_settings({"store": {"url": url}})
        assert "PGPASSWORD" in err.value.message and "secret" not in err.value.message
    s = parse_settings({"store": {"url": "postgresql://w@/perpdesk?host=/run/postgresql"},
                        "engine": {"name": "desk-1"}})
    assert s.store.url == "postgresql://w@/perpdesk?host=/run/postgresql" and s.engine_name == "desk-1"
    assert parse_settings({}).store.url is None  # the embedded default needs no PostgreSQL


# ---- init and roles -------------------------------------------------------------------------
async def test_init_is_versioned_and_idempotent_and_the_roles_are_limited(store_db: StoreDb) -> None:
    from core.store.migrations import MIGRATIONS, init_store

    again = await init_store(store_db.admin)  # a second init applies nothing
    assert not any("applied migration" in line for line in again)
    versions = store_db.server.psql("SELECT version FROM perpdesk.schema_migrations", store_db.name)
    assert [int(v) for v in versions.split()] == [v for v, _, _ in MIGRATIONS]

    w = await asyncpg.connect(store_db.writer)
    r = await asyncpg.connect(store_db.reader)
    try:
        await w.execute("INSERT INTO perpdesk.risk (engine, venue, mode, account, row_key, ts) "
                        "VALUES ('e', 'sim', 'live', 'u', 'k', now())")
        for sql in ("SELECT * FROM perpdesk.risk", "DELETE FROM perpdesk.risk",
                    "UPDATE perpdesk.risk SET message = 'x'", "TRUNCATE perpdesk.risk",
                    "SELECT * FROM perpdesk.engine_status"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await w.execute(sql)
        assert await r.fetchval("SELECT count(*) FROM perpdesk.risk") == 1
        for sql in ("INSERT INTO perpdesk.risk (engine, venue, mode, account, row_key, ts) "
                    "VALUES ('e', 'sim', 'live', 'u', 'k2', now())",
                    "DELETE FROM perpdesk.risk", "UPDATE perpdesk.risk SET message = 'x'",
                    "SELECT perpdesk.put_status('e', 'sim', 'live', 'u', 1, 1, 1, 1, 1, 0, 'none',"
                    " 'running', '', 0, 0, now())"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await r.execute(sql)
    finally:
        await w.close()
        await r.close()


# ---- two engines, two accounts, one store ---------------------------------------------------
async def test_two_engines_ship_to_one_store_and_match_their_own_reports(
        tmp_path: Path, store_db: StoreDb, capsys: pytest.CaptureFixture[str]) -> None:
    a = _settings(tmp_path, "desk-a", store_db.writer, seed=3)
    b = _settings(tmp_path, "desk-b", store_db.writer, seed=11)
    async with build_stack(a) as sa, build_stack(b) as sb:
        await asyncio.gather(_trade(sa, 4), _trade(sb, 3, "5"))
        await asyncio.gather(_caught_up(sa), _caught_up(sb))
        for s in (sa, sb):
            assert s.store is not None
            link = s.store
            await wait_for(lambda link=link: link.status.written >= 2, timeout=5,  # type: ignore[misc]
                           what="status rows each second")
            await link.status.publish()  # and one with this second's numbers
        admin = await asyncpg.connect(store_db.admin)
        try:  # each engine's two connections, named for the DBA reading pg_stat_activity
            names = await admin.fetch("SELECT application_name FROM pg_stat_activity WHERE datname = $1 "
                                      "AND usename = 'perpdesk_writer' ORDER BY 1", store_db.name)
        finally:
            await admin.close()
        assert [n["application_name"] for n in names] == [
            "perpdesk shipper desk-a", "perpdesk shipper desk-b", "perpdesk status desk-a",
            "perpdesk status desk-b"]
        conn = await asyncpg.connect(store_db.reader)
        try:
            accounts = await fetch_accounts(conn)
            reports = {r.engine: r.rows for r in await fetch_report(conn)}
            day_now = datetime.now(UTC).date()
            today_reports = {r.engine: r.rows for r in await fetch_report(conn, day_now)}
            fills = await conn.fetch("SELECT row_key, fee::text AS fee, price::text AS price, "
                                     "coins::text AS coins FROM perpdesk.orders "
                                     "WHERE engine = 'desk-a' AND event = 'fill'")
        finally:
            await conn.close()
    conn = await asyncpg.connect(store_db.reader)
    try:  # stopped cleanly: the last rows say so (neither running nor stale)
        after = {r.engine: r for r in await fetch_accounts(conn)}
    finally:
        await conn.close()
    assert after["desk-a"].state == after["desk-b"].state == "stopped"
    assert not after["desk-a"].stale and after["TOTAL"].state == ""
    # the per-account rows: both engines and the total
    by_engine = {r.engine: r for r in accounts}
    assert set(by_engine) == {"desk-a", "desk-b", "TOTAL"}
    assert by_engine["desk-a"].account != by_engine["desk-b"].account  # two simulated accounts
    for name, settings in (("desk-a", a), ("desk-b", b)):
        row = by_engine[name]
        own = build_report(settings.journal.dir)
        today = [r for r in own if r.day is not None]
        assert row.fees == sum((r.fees for r in today), D(0))
        assert row.today_net == sum((r.net_pnl for r in today), D(0))
        assert row.positions == 0 and not row.stale and row.venue == "sim"
        # `report --store` per engine = the engine's own `perpdesk report`, to the last decimal
        assert format_report(reports[name]) == format_report(own)
        assert format_report(today_reports[name]) == format_report(build_report(settings.journal.dir, day_now))
        assert _store_rows(store_db, name) == _csv_rows(settings.journal.dir)
    total = by_engine["TOTAL"]
    assert total.fees == by_engine["desk-a"].fees + by_engine["desk-b"].fees
    assert total.equity == by_engine["desk-a"].equity + by_engine["desk-b"].equity
    all_rows = reports[ALL_ENGINES]
    assert all_rows[-1].net_pnl == reports["desk-a"][-1].net_pnl + reports["desk-b"][-1].net_pnl
    # every value exactly as the CSV has it (NUMERIC, never float)
    csv = {str(f["fill_id"]): f for f in read_fills(a.journal.dir)}
    assert len(fills) == len(csv) == 8
    for f in fills:
        assert D(f["fee"]) == csv[f["row_key"]]["fee"] and f["price"] == str(csv[f["row_key"]]["price"])
    assert len(read_trades(a.journal.dir)) == 4 and read_funding(a.journal.dir) == []

    # the command lines
    from console.cli import main

    cfg = tmp_path / "reader.toml"
    cfg.write_text(f'[store]\nread_url = "{store_db.reader}"\n')
    def cli(*args: str) -> int:  # in a thread: the command runs its own event loop
        return main(["--config", str(cfg), *args])

    assert await asyncio.to_thread(cli, "accounts", "--format", "json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert [p["engine"] for p in printed] == ["desk-a", "desk-b", "TOTAL"]
    assert printed[0]["fees"] == str(by_engine["desk-a"].fees)
    assert await asyncio.to_thread(cli, "report", "--store") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[-1] == "engine" and out[-1].split()[-1] == ALL_ENGINES
    # the engine's insert-only role cannot read: one plain line, exit 2
    cfg.write_text(f'[store]\nurl = "{store_db.writer}"\n')
    assert await asyncio.to_thread(cli, "accounts") == 2
    err = capsys.readouterr().err
    assert "permission denied" in err and "read_url" in err and "Traceback" not in err


# ---- crash ----------------------------------------------------------------------------------
def test_sigkill_mid_shipment_then_restart_loses_and_doubles_nothing(
        tmp_path: Path, store_db: StoreDb) -> None:
    import os
    import signal
    import subprocess
    import sys

    journal = tmp_path / "journal"
    script = HELPERS / "store_ship_writer.py"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(journal), store_db.writer, "3000"],
                            env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "shipping"
        deadline = time.monotonic() + 30
        while _store_rows(store_db, "crash") < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-shipment: rows are still being written and sent
    finally:
        proc.wait(10)
    shipped = _store_rows(store_db, "crash")
    written = _csv_rows(journal)
    print(f"at the kill: {shipped} rows in PostgreSQL, {written} in the journal")
    assert 200 <= shipped and shipped <= written
    # restart: ship what is left (no new rows), from the mark
    out = subprocess.run([sys.executable, str(script), str(journal), store_db.writer, "0"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert _store_rows(store_db, "crash") == _csv_rows(journal) == written
    keys = store_db.server.psql("SELECT count(DISTINCT row_key) FROM perpdesk.orders "
                                "WHERE engine = 'crash'", store_db.name)
    assert int(keys) == store_db.count("orders")


async def test_ship_once_beside_the_background_loop_is_safe(tmp_path: Path, store_db: StoreDb) -> None:
    """stop() drains with ship_once while the background task may be shipping on the same
    connection: the two must take turns, not share one transaction."""
    from core.journal.binding import AccountId
    from core.store.rows import Scope
    from core.store.shipper import Shipper

    journal = await _fills_journal(tmp_path / "journal", 3000)
    shipper = Shipper(journal, store_db.writer, Scope.of("turns", AccountId("sim", "u")), max_rows=100)
    await shipper.start()
    try:
        await asyncio.gather(*(shipper.ship_once() for _ in range(5)))
        await wait_for(lambda: shipper.state.rows_behind == 0 and shipper.state.connected,
                       timeout=30, what="caught up")
    finally:
        await shipper.stop()
        journal.close_sync()
    assert not shipper.state.error
    assert _store_rows(store_db, "turns") == 3000


def test_store_init_command_and_urls_with_a_password(tmp_path: Path, pg: Any,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    name = pg.create_database()
    cfg = tmp_path / "config.toml"
    cfg.write_text("")
    assert main(["--config", str(cfg), "store", "init", "--url", pg.dsn(name)]) == 0
    out = capsys.readouterr().out
    assert "applied migration 1" in out and "insert-only role perpdesk_writer" in out
    assert main(["--config", str(cfg), "store", "init", "--url", pg.dsn(name)]) == 0
    assert "applied migration" not in capsys.readouterr().out  # nothing left to apply
    # a password on the command line is refused like one in config.toml: one line, exit 2
    for args in (["store", "init", "--url", "postgresql://postgres:pw@localhost/x"],
                 ["accounts", "--url", "postgresql://r:pw@localhost/x"]):
        assert main(["--config", str(cfg), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert "PGPASSWORD" in err and len(err.splitlines()) == 1 and "pw@" not in err
    # the store unreachable: one line naming it, exit 2
    assert main(["--config", str(cfg), "accounts", "--url",
                 f"postgresql://perpdesk_reader@/{name}?host={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot connect to PostgreSQL" in err and len(err.splitlines()) == 1


async def test_a_server_that_stops_answering_mid_shipment_is_given_up_then_rows_land_once(
        tmp_path: Path, store_db: StoreDb, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead link does not reset the connection: the shipper's transaction would wait forever.
    Here the server process serving the shipper is frozen (SIGSTOP): the shipper gives up after
    its timeout, says so, and once the server answers again every row lands once.

    The backend frozen is the one pg_stat_activity names by the shipper's application_name, taken
    once the shipper has caught up with its first rows on one connection (the short timeout is set
    only then, so no give-up before the freeze leaves a second, dying backend of that name)."""
    import os
    import signal

    from core.journal.binding import AccountId
    from core.store import shipper as shipper_module
    from core.store.rows import Scope
    from core.store.shipper import Shipper
    from tests.helpers.journal_crash_writer import make_fill

    journal = await _fills_journal(tmp_path / "journal", 2000)
    shipper = Shipper(journal, store_db.writer, Scope.of("frozen", AccountId("sim", "u")), max_rows=50)
    admin = await asyncpg.connect(store_db.admin)
    frozen: int | None = None
    try:
        await shipper.start()
        await wait_for(lambda: shipper.state.rows_behind == 0 and shipper.state.connected,
                       timeout=60, what="the first rows shipped")
        monkeypatch.setattr(shipper_module, "SEND_TIMEOUT_S", 1.0)
        monkeypatch.setattr(shipper_module, "RETRY_S", (2.0,))  # time to see it given up
        pids = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
                                 "AND datname = $2", shipper.application_name, store_db.name)
        assert len(pids) == 1, pids  # the shipper's one connection, idle between cycles
        frozen = int(pids[0]["pid"])
        os.kill(frozen, signal.SIGSTOP)
        for i in range(2000, 2100):  # rows to send while it is frozen
            journal.record_fill(make_fill(i))
        journal.flush_sync()
        shipper.wake()  # a blocking flush tells no one: the shipper is woken as the engine's journal would
        await wait_for(lambda: "did not answer within 1 s" in shipper.state.error, timeout=15,
                       what="the shipper gives the frozen server up")
        assert shipper.state.rows_behind == 100 and not shipper.state.connected
        os.kill(frozen, signal.SIGCONT)
        frozen = None
        await wait_for(lambda: shipper.state.rows_behind == 0 and shipper.state.connected,
                       timeout=30, what="caught up")
    finally:
        if frozen is not None:
            os.kill(frozen, signal.SIGCONT)
        await shipper.stop()
        journal.close_sync()
        await admin.close()
    assert _store_rows(store_db, "frozen") == 2100


async def test_rows_journaled_just_before_a_stop_are_shipped_at_the_stop(
        tmp_path: Path, store_db: StoreDb) -> None:
    settings = _settings(tmp_path, "desk-stop", store_db.writer)
    async with build_stack(settings) as stack:
        await _trade(stack, 1)
        await _caught_up(stack)  # connected
        await _trade(stack, 3)  # and out at once: the stop flushes the journal, then ships it
    assert _store_rows(store_db, "desk-stop") == _csv_rows(settings.journal.dir)
    assert len(read_fills(settings.journal.dir)) > 2  # rows of the second burst are there


async def _fills_journal(directory: Path, n: int, offset: int = 0) -> Any:
    from core.journal import Journal
    from tests.helpers.journal_crash_writer import make_fill

    journal = Journal(directory, max_batch=5000)
    journal.open()
    for i in range(offset, offset + n):
        journal.record_fill(make_fill(i))
    journal.close_sync()
    journal = Journal(directory)
    journal.open()
    return journal


async def test_an_older_store_schema_is_said_then_upgraded_by_init(tmp_path: Path, pg: Any) -> None:
    from core.journal.binding import AccountId
    from core.store.migrations import init_store
    from core.store.rows import Scope
    from core.store.shipper import Shipper

    name = pg.create_database()
    await init_store(pg.dsn(name), upto=1)  # a store made by the first release
    journal = await _fills_journal(tmp_path / "journal", 50)
    shipper = Shipper(journal, pg.dsn(name, "perpdesk_writer"), Scope.of("old", AccountId("sim", "u")))
    await shipper.start()
    try:
        await wait_for(lambda: "store init" in shipper.state.error, timeout=10, what="the advice")
        assert shipper.state.rows_behind == 50
        lines = await init_store(pg.dsn(name))
        assert any(line.startswith("applied migration 2") for line in lines)
        assert not any(line.startswith("applied migration 1") for line in lines)
        await wait_for(lambda: shipper.state.rows_behind == 0 and shipper.state.connected,
                       timeout=15, what="shipping after the upgrade")
    finally:
        await shipper.stop()
        journal.close_sync()
    assert int(pg.psql("SELECT count(*) FROM perpdesk.orders", name)) == 50


async def test_one_engine_name_on_two_accounts_is_refused_and_mixes_nothing(
        tmp_path: Path, store_db: StoreDb) -> None:
    from core.journal.binding import AccountId
    from core.store.rows import Scope
    from core.store.shipper import Shipper

    first = await _fills_journal(tmp_path / "a", 30)
    second = await _fills_journal(tmp_path / "b", 20, offset=1000)
    a = Shipper(first, store_db.writer, Scope.of("same", AccountId("sim", "u-1")))
    b = Shipper(second, store_db.writer, Scope.of("same", AccountId("okx", "u-2", sandbox=True)))
    await a.start()
    try:
        await wait_for(lambda: a.state.rows_behind == 0 and a.state.connected, timeout=15,
                       what="the first account ships")
        await b.start()
        await wait_for(lambda: "already belongs to sim live account u-1" in b.state.error,
                       timeout=10, what="the second account refused by name")
        assert b.state.rows_behind == 20 and not b.state.connected
    finally:
        await a.stop()
        await b.stop()
        first.close_sync()
        second.close_sync()
    assert _store_rows(store_db, "same") == 30
    w = await asyncpg.connect(store_db.writer)
    try:
        with pytest.raises(asyncpg.UniqueViolationError):  # its status row is refused too
            await w.execute("SELECT perpdesk.put_status('same', 'okx', 'demo', 'u-2', 1, 1, 1, 1, 1,"
                            " 0, 'none', 'running', '', 0, 0, now())")
    finally:
        await w.close()


async def test_rows_behind_are_counted_while_the_store_cannot_be_reached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No server at all (a socket folder with nothing in it): the journal's rows are counted as
    behind, exactly, across read blocks, and the reason is the connection."""
    from core.journal.binding import AccountId
    from core.store import shipper as shipper_module
    from core.store.rows import Scope
    from core.store.shipper import Shipper

    monkeypatch.setattr(shipper_module, "CHUNK_BYTES", 1000)  # many blocks per file
    journal = await _fills_journal(tmp_path / "journal", 120)
    nowhere = tmp_path / "no-server"
    nowhere.mkdir()
    shipper = Shipper(journal, f"postgresql://perpdesk_writer@/perpdesk?host={nowhere}",
                      Scope.of("alone", AccountId("sim", "u")))
    await shipper.start()
    try:
        await wait_for(lambda: bool(shipper.state.error), timeout=10, what="the connection error")
        state = shipper.state
        assert state.rows_behind == 120 and not state.connected
        assert "cannot connect to PostgreSQL" in state.error
    finally:
        await shipper.stop()
        journal.close_sync()
