"""Fixtures shared across the suites: real simulators, stacks and clients on loopback, one per test."""
from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.engine_helpers import Rig, close_rig, make_rig
from tests.fault_helpers import LogCapture


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A real SimServer (speed 0) + venue + journal + engine, and an outside ccxt client."""
    r = await make_rig(tmp_path)
    try:
        yield r
    finally:
        r.srv.faults.clear()  # a fault left armed would stall the teardown's REST calls
        await close_rig(r)


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
