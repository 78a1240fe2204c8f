"""Fixtures shared by the engine, fault and console suites: one real stack per test on loopback."""
from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

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
    import core.engine

    monkeypatch.setattr(core.engine, "RESYNC_RETRY_S", 1.0)
