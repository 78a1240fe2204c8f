"""Fixtures shared across the suites: real simulators, stacks and clients on loopback, one per test;
and the markers (unit, sim, slow) every test gets from what it uses, so no file lists its own."""
from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.engine_helpers import Rig, close_rig, make_rig
from tests.helpers.fault_helpers import LogCapture
from tests.helpers.pg_helpers import PgServer, StoreDb, make_store_db, pg_server

# Fixtures that start a simulator (here or in a test module) for the test that asks for them.
SIM_FIXTURES = frozenset({"srv", "sim", "rig", "sim_url", "live", "pg", "store_db"})
# What a test body calls when it starts a simulator, an engine stack or another process itself.
SIM_CALLS = ("SimServer(", "build_stack(", "make_rig(", "subprocess.", "Popen(", "Tmux(",
             "start_engine(", "start_serve(", "spawn(")  # tests/helpers/lock_helpers.py
# Files whose tests take 5-30 s each, and single tests that do (pytest --durations, loaded 2-core box)
SLOW_FILES = frozenset({
    "test_console_tmux.py", "test_console_sim_keys.py", "test_engine_restart.py", "test_engine_runner.py",
    "test_engine_stress.py", "test_journal_crash.py", "test_strategy_containment.py",
    "test_service_frozen.py", "test_service_tmux.py",
})
SLOW_TESTS = frozenset({
    "test_engine_sigkilled_mid_shipment_restarts_without_losing_or_doubling_rows",
    "test_store_down_both_engines_keep_trading_then_catch_up_once",
    "test_unreachable_exchange_is_one_line_exit_2",  # waits out the connect timeout
    "test_backfill_during_a_long_outage_completes_after_it_clears",
})


def _starts_a_simulator(item: pytest.Item) -> bool:
    if SIM_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    func = getattr(item, "function", None)
    try:
        source = inspect.getsource(func) if func is not None else ""
    except (OSError, TypeError):
        source = ""
    return any(call in source for call in SIM_CALLS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``sim`` when the test starts a simulator or a process, ``slow`` for the slow files, ``unit``
    for the rest; a marker a test sets itself is kept."""
    for item in items:
        marks = {m.name for m in item.iter_markers()}
        if "sim" not in marks and _starts_a_simulator(item):
            item.add_marker(pytest.mark.sim)
            marks.add("sim")
        if "slow" not in marks and (item.path.name in SLOW_FILES or item.originalname in SLOW_TESTS):
            item.add_marker(pytest.mark.slow)
            marks.add("slow")
        if not marks & {"sim", "slow", "unit"}:
            item.add_marker(pytest.mark.unit)


@pytest.fixture
def venue() -> str:
    """The simulator face (and venue) a rig test runs on: "okx" unless the test or its module
    parametrises ``venue`` (``pytest.mark.parametrize("venue", VENUES)``, tests/helpers/engine_helpers.py)."""
    return "okx"


@pytest.fixture
async def rig(tmp_path: Path, venue: str) -> AsyncIterator[Rig]:
    """A real SimServer (speed 0) + venue + journal + engine, and an outside ccxt client, on the
    simulator's ``venue`` face (OKX v5, or Bybit v5 with the native bybit venue)."""
    r = await make_rig(tmp_path, protocol=venue)
    try:
        yield r
    finally:
        r.srv.faults.clear()  # a fault left armed would stall the teardown's REST calls
        await close_rig(r)


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """One real PostgreSQL per test session (initdb + pg_ctl, Unix socket only)."""
    with pg_server() as server:
        yield server


@pytest.fixture
def store_db(pg: PgServer) -> StoreDb:
    """A fresh database per test, with the store's schema and roles (`perpdesk store init`)."""
    if not pg.running():
        pg.start()  # a test that stopped the server and failed before starting it again
    return make_store_db(pg)


@pytest.fixture
def logs() -> AsyncIterator[LogCapture]:
    """The loguru lines a test produced, to check the trader's message is one plain line."""
    cap = LogCapture().install()
    try:
        yield cap
    finally:
        cap.remove()


@pytest.fixture
def fast_resync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry a failed resync after 1 s instead of 5 s, to keep the fault suite quick."""
    import core.engine.coordinator

    monkeypatch.setattr(core.engine.coordinator, "RESYNC_RETRY_S", 1.0)


@pytest.fixture
async def sim() -> AsyncIterator[tuple[Any, Any]]:
    """A bare simulator (speed 0, no slippage or spread: hand-checkable prices) and an unmodified
    ccxt.pro okx client on its demo account, markets loaded. Modules needing another shape
    (a raw WebSocket, our own venue) define their own ``sim``."""
    import ccxt.pro

    from core.sim.ccxt_client import okx_client
    from core.sim.server import SimServer

    srv = SimServer(speed=0, slippage=Decimal(0), spread_ticks=0)
    await srv.start()
    ex = okx_client(ccxt.pro.okx, srv.url, srv.ws_url)
    await ex.load_markets()
    try:
        yield srv, ex
    finally:
        await ex.close()
        await srv.stop()


@pytest.fixture
async def srv() -> AsyncIterator[Any]:
    """A frozen simulator (speed 0, no slippage, no spread): prices move only when a test says so."""
    from core.sim.server import SimServer

    s = SimServer(speed=0, slippage=Decimal(0), spread_ticks=0)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()
