"""`perpdesk report --store` with the report's options, against a real PostgreSQL.

Two journals (several UTC days, two symbols, funding, a liquidation penalty, decimals with long
tails) are shipped by the real shipper; then, for each option, the store's output per engine must
be that engine's own `perpdesk report` with the same options: csv and json to the last decimal,
the table rounded the same way. The ALL part must be the exact sum of the engines.
"""
from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import asyncpg
import pytest

from core.accounting.report import TOTAL
from core.journal import Journal
from core.journal.binding import AccountId
from core.model import CloseReason, CloseResult, Fill, FundingPayment, OrderSide, Origin, PositionSide
from core.store.queries import ALL_ENGINES, fetch_accounts
from core.store.rows import Scope
from core.store.shipper import Shipper
from tests.helpers.engine_helpers import wait_for
from tests.helpers.pg_helpers import StoreDb

pytestmark = pytest.mark.timeout(120)

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
T0 = datetime(2024, 5, 1, 20, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _round_trip(j: Journal, tag: str, symbol: str, opened: datetime, closed: datetime,
                contracts: str, cs: str, p_open: str, p_close: str, funding: str,
                liq: str = "0") -> None:
    """Open, one funding bill halfway, close: fills, a bill and a close row in the journal."""
    pid = f"{symbol}#net#{int(opened.timestamp() * 1000)}"
    coins = D(contracts) * D(cs)
    fee_open = coins * D(p_open) * D("0.000523")
    fee_close = coins * D(p_close) * D("0.000523")
    j.record_fill(Fill(f"{tag}o", f"O{tag}o", f"pdc{tag}o", symbol, OrderSide.BUY, D(contracts),
                       D(cs), D(p_open), fee_open, "USDT", opened, origin=Origin.CONSOLE))
    j.record_funding(FundingPayment(f"{tag}b", symbol, pid, D("0.0001"), D(contracts), coins,
                                    D(p_open), D(funding), "USDT", opened + (closed - opened) / 2))
    j.record_fill(Fill(f"{tag}c", f"O{tag}c", f"pdc{tag}c", symbol, OrderSide.SELL, D(contracts),
                       D(cs), D(p_close), fee_close, "USDT", closed, origin=Origin.CONSOLE,
                       liq_penalty=D(liq)))
    gross = coins * (D(p_close) - D(p_open))
    j.record_close(CloseResult(closed, symbol, pid, PositionSide.LONG, CloseReason.MANUAL, coins,
                               coins, D(0), D(contracts), D(cs), D(p_open), D(p_close), gross,
                               fee_open + fee_close, D(liq), D(funding), opened,
                               fill_ids=(f"{tag}c",)))


def _desk_a(j: Journal) -> None:
    _round_trip(j, "a1", BTC, T0, T0 + 5 * H, "37", "0.01", "60123.45", "61007.15", "-6.0375")
    _round_trip(j, "a2", ETH, T0 + 8 * H, T0 + 9 * H, "13", "0.1", "3001.17", "2700.33", "0",
                liq="0.5125")
    _round_trip(j, "a3", BTC, T0 + 30 * H, T0 + 31 * H, "3", "0.01", "61000.1", "60999.9", "0.00125")


def _desk_b(j: Journal) -> None:
    _round_trip(j, "b1", ETH, T0 + 1 * H, T0 + 2 * H, "7", "0.1", "2999.995", "3010.005", "1.234567")
    _round_trip(j, "b2", BTC, T0 + 26 * H, T0 + 50 * H, "11", "0.01", "60500.5", "59000.25",
                "-12.5")  # open over two days, closed on 2024-05-03


async def _ship(tmp_path: Path, store_db: StoreDb, name: str, uid: str,
                write: Callable[[Journal], None]) -> Path:
    directory = tmp_path / name
    j = Journal(directory)
    write(j)
    j.close_sync()
    journal = Journal(directory)
    journal.open()
    shipper = Shipper(journal, store_db.writer, Scope.of(name, AccountId("sim", uid)))
    await shipper.start()
    try:
        await wait_for(lambda: shipper.state.connected and shipper.state.rows_behind == 0,
                       timeout=30, what=f"{name} shipped")
    finally:
        await shipper.stop()
        journal.close_sync()
    return directory


OPTIONS: tuple[tuple[str, ...], ...] = (
    (),
    ("--day", "2024-05-02"),
    ("--from", "2024-05-02"),
    ("--to", "2024-05-01"),
    ("--from", "2024-05-01", "--to", "2024-05-02"),
    ("--symbol", "BTC"),
    ("--symbol", ETH, "--from", "2024-05-01", "--to", "2024-05-01"),
    ("--from", "2024-05-03"),
    ("--day", "2030-01-01"),  # nothing: the table says so, csv a header, json no engines
)


async def test_report_store_options_and_formats_equal_each_engines_own_report(
        tmp_path: Path, store_db: StoreDb, capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    journals = {"desk-a": await _ship(tmp_path, store_db, "desk-a", "u-a", _desk_a),
                "desk-b": await _ship(tmp_path, store_db, "desk-b", "u-b", _desk_b)}
    configs = {}
    for name, directory in journals.items():
        configs[name] = tmp_path / f"{name}.toml"
        configs[name].write_text(f'[journal]\ndir = "{directory}"\n')
    reader = tmp_path / "reader.toml"
    reader.write_text(f'[store]\nread_url = "{store_db.reader}"\n')

    def run(config: Path, *args: str) -> str:
        assert main(["--config", str(config), "report", *args]) == 0
        return capsys.readouterr().out

    async def both(args: tuple[str, ...]) -> tuple[dict[str, str], str]:
        own = {name: await asyncio.to_thread(run, cfg, *args) for name, cfg in configs.items()}
        return own, await asyncio.to_thread(run, reader, "--store", *args)

    checked = 0
    for opts in OPTIONS:
        checked += _check_csv(opts, *await both((*opts, "--format", "csv")))
        _check_json(opts, *await both((*opts, "--format", "json")))
        _check_table(opts, *await both(opts))
    assert checked > 20  # the options did select rows, not only empty reports


def _check_csv(opts: tuple[str, ...], own: dict[str, str], store: str) -> int:
    """Per engine, the engine's own csv to the last decimal, plus the engine column; ALL the
    exact sum of the engines. Returns how many engine rows were compared."""
    got = list(csv.reader(store.splitlines()))
    assert got[0] == [*next(csv.reader([own["desk-a"].splitlines()[0]])), "engine"], opts
    seen = []
    for name, text in own.items():
        mine = [row[:-1] for row in got[1:] if row[-1] == name]
        assert mine == list(csv.reader(text.splitlines()))[1:], (opts, name)
        seen += mine
    names = [row[-1] for row in got[1:]]
    every = names.count(ALL_ENGINES)
    assert names == sorted(n for n in names if n != ALL_ENGINES) + [ALL_ENGINES] * every, opts
    totals = [row for row in got[1:] if row[1] == TOTAL]
    assert bool(every) == bool(seen) and (not totals or totals[-1][-1] == ALL_ENGINES), opts
    for col in range(3, 8):  # gross, fees, liq, funding, net of ALL's TOTAL line
        assert sum((D(t[col]) for t in totals[:-1]), D(0)) == (D(totals[-1][col]) if totals else 0)
    return len(seen)


def _check_json(opts: tuple[str, ...], own: dict[str, str], store: str) -> None:
    """Each engine's part is the engine's own json (decimals as strings, exact) with "engine"."""
    parts = json.loads(store)["engines"]
    by_engine = {p["engine"]: p for p in parts}
    for name, text in own.items():
        mine = json.loads(text)
        if not mine["rows"]:
            assert name not in by_engine, (opts, name)
            continue
        part = by_engine[name]
        for item in [*part["rows"], part["total"]]:
            assert item.pop("engine") == name
        assert {"rows": part["rows"], "total": part["total"]} == mine, (opts, name)
        assert all(isinstance(r["fees"], str) for r in mine["rows"])
    assert [p["engine"] for p in parts] == [*sorted(n for n in by_engine if n != ALL_ENGINES),
                                            *([ALL_ENGINES] if parts else [])]


def _check_table(opts: tuple[str, ...], own: dict[str, str], store: str) -> None:
    """Each engine's lines are the engine's own table's cells, rounded the same way."""
    lines = store.splitlines()
    tables = [t for t in own.values() if not t.startswith("no journal rows")]
    if not tables:
        assert lines == [f"no journal rows in the store{_scope(opts)}"], opts
        return
    assert lines[0].split() == [*tables[0].splitlines()[0].split(), "engine"]
    for name, text in own.items():
        mine = [line.split()[:-1] for line in lines[1:] if line.split()[-1] == name]
        theirs = [] if text.startswith("no journal rows") else [
            line.split() for line in text.splitlines()[1:]]
        assert mine == theirs, (opts, name)
    assert lines[-1].split()[0] == TOTAL and lines[-1].split()[-1] == ALL_ENGINES


def _scope(opts: tuple[str, ...]) -> str:
    words = {"--day": "for", "--from": "from", "--to": "to", "--symbol": "for symbol"}
    return "".join(f" {words[opts[i]]} {opts[i + 1]}" for i in range(0, len(opts), 2))


async def test_accounts_json_is_exact_and_the_table_rounds_for_reading(
        tmp_path: Path, store_db: StoreDb, capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    w = await asyncpg.connect(store_db.writer)
    try:
        await w.execute("SELECT perpdesk.put_status('desk-a', 'sim', 'live', 'u-a', "
                        "10000.123456789, -2.255, 3.14159265, 0.0049999, -0.125, 1, 'none', "
                        "'running', '', 0, 0, now())")
        await w.execute("SELECT perpdesk.put_status('desk-b', 'sim', 'live', 'u-b', "
                        "0.005, 0.0000001, -0.004, 1.5, 0, 0, 'none', 'running', '', 0, 0, now())")
    finally:
        await w.close()
    cfg = tmp_path / "reader.toml"
    cfg.write_text(f'[store]\nread_url = "{store_db.reader}"\n')

    def cli(*args: str) -> int:
        return main(["--config", str(cfg), *args])

    assert await asyncio.to_thread(cli, "accounts", "--format", "json") == 0
    rows = {r["engine"]: r for r in json.loads(capsys.readouterr().out)}
    assert {k: rows["desk-a"][k] for k in ("equity", "upnl", "today_net", "fees", "funding")} == {
        "equity": "10000.123456789", "upnl": "-2.255", "today_net": "3.14159265",
        "fees": "0.0049999", "funding": "-0.125"}
    assert rows["desk-b"]["upnl"] == "0.0000001" and rows["desk-b"]["equity"] == "0.005"
    assert rows["TOTAL"]["equity"] == "10000.128456789"  # the exact sum
    assert rows["TOTAL"]["upnl"] == "-2.2549999"

    assert await asyncio.to_thread(cli, "accounts") == 0
    table = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    # USDT to the cent, half up, never -0.00: as `perpdesk report`'s table
    assert table["desk-a"][3:8] == ["10000.12", "-2.26", "3.14", "0.00", "-0.13"]
    assert table["desk-b"][3:8] == ["0.01", "0.00", "0.00", "1.50", "0.00"]
    assert table["TOTAL"][3:8] == ["10000.13", "-2.25", "3.14", "1.50", "-0.13"]
    conn = await asyncpg.connect(store_db.reader)
    try:
        exact = {r.engine: r for r in await fetch_accounts(conn)}
    finally:
        await conn.close()
    assert exact["desk-a"].equity == D("10000.123456789")  # read as Decimal, never a float
