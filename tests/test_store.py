"""The PostgreSQL store (core/store): init and roles, shipping, outages, crashes, accounts, report.

Every test runs against a real PostgreSQL (tests/pg_helpers.py: one server per session, a fresh
database per test) and real engines on real simulators; nothing of the database is mocked.
"""
from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal as D
from pathlib import Path

import asyncpg
import pytest

from core.config import (
    ConfigError,
    EngineSettings,
    ExchangeSettings,
    JournalSettings,
    Settings,
    SimSettings,
    StoreSettings,
    parse_settings,
)
from core.events import PlaceOrder
from core.journal import read_fills, read_funding, read_trades
from core.model import OrderSide
from core.report import build_report, format_report
from core.runner import Stack, build_stack
from core.store.queries import ALL_ENGINES, fetch_accounts, fetch_report
from tests.engine_helpers import BTC, ETH, wait_for
from tests.pg_helpers import StoreDb

pytestmark = pytest.mark.timeout(120)


def _settings(tmp_path: Path, name: str, url: str | None, seed: int = 3) -> Settings:
    return Settings(
        exchange=ExchangeSettings(venue="sim", symbols=(BTC, ETH)),
        sim=SimSettings(speed=0, seed=seed, funding_interval_s=3600),
        journal=JournalSettings(dir=tmp_path / name / "journal"),
        config_path=tmp_path / name / "config.toml",
        engine=EngineSettings(name=name),
        store=StoreSettings(url=url),
    )


async def _trade(stack: Stack, rounds: int, size: str = "2") -> None:
    """Open and close positions: fills, closes with PnL and fees in the journal."""
    for i in range(rounds):
        symbol = BTC if i % 2 == 0 else ETH
        for side in (OrderSide.BUY, OrderSide.SELL):
            res = await stack.engine.submit(PlaceOrder(symbol, side, D(size)))
            assert res.ok, res


async def _caught_up(stack: Stack, timeout: float = 30.0) -> None:
    await stack.engine.settle()  # close confirmations in: every close row is journaled
    await stack.journal.flush()
    assert stack.store is not None
    link = stack.store

    def done() -> bool:
        link.shipper.wake()
        return link.state.connected and link.state.rows_behind == 0 and not link.state.error

    await wait_for(done, timeout=timeout, what="store caught up")


def _csv_rows(journal: Path) -> int:
    """Rows in every day file of the journal (header lines excluded)."""
    n = 0
    for path in journal.glob("*_????-??-??.csv"):
        n += max(0, len(path.read_bytes().splitlines()) - 1)
    return n


def _store_rows(db: StoreDb, engine: str) -> int:
    total = 0
    for table in ("orders", "trades", "funding", "positions_open", "risk"):
        total += int(db.server.psql(
            f"SELECT count(*) FROM perpdesk.{table} WHERE engine = '{engine}'", db.name).strip())
    return total


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
        for s in (sa, sb):  # a status row with this second's numbers
            assert s.store is not None
            await s.store.status.publish()
        conn = await asyncpg.connect(store_db.reader)
        try:
            accounts = await fetch_accounts(conn)
            reports = {r.engine: r.rows for r in await fetch_report(conn)}
            fills = await conn.fetch("SELECT row_key, fee::text AS fee, price::text AS price, "
                                     "coins::text AS coins FROM perpdesk.orders "
                                     "WHERE engine = 'desk-a' AND event = 'fill'")
        finally:
            await conn.close()
    # the per-account rows: both engines and the total
    by_engine = {r.engine: r for r in accounts}
    assert set(by_engine) == {"desk-a", "desk-b", "TOTAL"}
    for name, settings in (("desk-a", a), ("desk-b", b)):
        row = by_engine[name]
        own = build_report(settings.journal.dir)
        today = [r for r in own if r.day is not None]
        assert row.fees == sum((r.fees for r in today), D(0))
        assert row.today_net == sum((r.net_pnl for r in today), D(0))
        assert row.positions == 0 and not row.stale and row.venue == "sim"
        # `report --store` per engine = the engine's own `perpdesk report`, to the last decimal
        assert format_report(reports[name]) == format_report(own)
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


# ---- outage ---------------------------------------------------------------------------------
async def test_store_down_engine_keeps_trading_then_catches_up_once(
        tmp_path: Path, store_db: StoreDb) -> None:
    settings = _settings(tmp_path, "desk-down", store_db.writer)
    async with build_stack(settings) as stack:
        await _trade(stack, 1)
        await _caught_up(stack)
        before = _store_rows(store_db, "desk-down")
        store_db.server.stop()
        try:
            lag: list[float] = []
            loop = asyncio.get_running_loop()

            async def probe() -> None:
                while True:
                    t = loop.time()
                    await asyncio.sleep(0.02)
                    lag.append(loop.time() - t - 0.02)

            task = asyncio.create_task(probe())
            started = time.monotonic()
            await _trade(stack, 4)  # fills go on while the store is down
            await stack.journal.flush()
            stack.store.shipper.wake()  # type: ignore[union-attr]
            await asyncio.sleep(2.5)
            state = stack.store.state  # type: ignore[union-attr]
            assert not state.connected and state.rows_behind >= 16 and state.seconds_behind > 1
            assert time.monotonic() - started < 10
            task.cancel()
            assert max(lag) < 0.25, f"event loop lag {max(lag):.3f} s while the store was down"
        finally:
            store_db.server.start()
        await _caught_up(stack, timeout=30)
        assert _store_rows(store_db, "desk-down") == _csv_rows(settings.journal.dir) > before


# ---- crash ----------------------------------------------------------------------------------
def test_sigkill_mid_shipment_then_restart_loses_and_doubles_nothing(
        tmp_path: Path, store_db: StoreDb) -> None:
    import os
    import signal
    import subprocess
    import sys

    journal = tmp_path / "journal"
    script = Path(__file__).with_name("store_ship_writer.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
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
