"""Fixtures shared across the suites: real simulators, stacks and clients on loopback, one per test;
and the markers: a test's kind (unit, sim, slow) is the folder it sits in (tests/README.md)."""
from __future__ import annotations

import platform
import sys
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.engine_helpers import Rig, close_rig, make_rig
from tests.helpers.fault_helpers import LogCapture
from tests.helpers.pg_helpers import PgServer, StoreDb, make_store_db, pg_server

TESTS = Path(__file__).resolve().parent
KINDS = ("unit", "sim", "slow")


def _kind(item: pytest.Item) -> str:
    parts = item.path.resolve().relative_to(TESTS).parts
    if len(parts) < 2 or parts[0] not in KINDS:
        raise pytest.UsageError(f"{item.path}: a test file goes in tests/unit, tests/sim or tests/slow "
                                "(tests/README.md says which)")
    return parts[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test gets the marker of its folder: tests/unit/... ``unit``, tests/sim/... ``sim``,
    tests/slow/... ``slow``."""
    for item in items:
        item.add_marker(getattr(pytest.mark, _kind(item)))


# A unit test starts no process and listens on no port: an audit hook (the interpreter's own record
# of what the code asks the system for) notes each process start and each bind to an address while
# a unit test runs, and the test fails with what it started. Asking for the processor name runs
# `uname` once per interpreter: it is asked here, before any test, so no test pays for it.
platform.processor()
_STARTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.exec",
                     "os.system", "pty.spawn"})
_watching: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _watching is None:
        return
    if event in _STARTS:
        _watching.append(f"{event} {str(args[0])[:80]}")
    elif event == "socket.bind" and isinstance(args[1], tuple):
        _watching.append(f"a socket bound to {args[1]}")


sys.addaudithook(_audit)


def _unit_guard(item: pytest.Item) -> Iterator[None]:
    global _watching
    if item.get_closest_marker("unit") is None:
        yield
        return
    _watching = seen = []
    try:
        yield
    finally:
        _watching = None
    if seen:
        pytest.fail(f"a unit test starts no process and opens no port, this one did: {'; '.join(seen[:3])}; "
                    "it belongs in tests/sim or tests/slow", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _unit_guard(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _unit_guard(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if nextitem is None:  # the session's fixtures (the PostgreSQL of the store tests) end here too
        return (yield)
    yield from _unit_guard(item)


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
