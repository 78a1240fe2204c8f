"""Issue 10 item 7: `perpdesk --headless` whose journal becomes unwritable must not end quietly.

The engine runs as a real headless process against the test's simulator; an outside client opens
a position (its fill and snapshot rows land on disk), then the journal folder is moved away and a
plain file put at its name, so the snapshot rows written at stop cannot land. The process must
exit non-zero with one stderr line naming the journal file, not 0 with the error only in the log.
"""
from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from core.journal import read_fills, read_positions
from tests.helpers.engine_helpers import BTC, Rig, wait_for
from tests.helpers.headless import _config, _safe, _start_headless

pytestmark = pytest.mark.timeout(120)


async def test_headless_exits_non_zero_when_the_journal_cannot_be_written_at_stop(
        rig: Rig, tmp_path: Path) -> None:
    cfg = _config(rig, tmp_path)
    jdir = tmp_path / "journal"
    proc = await _start_headless(cfg)
    try:
        await rig.ext.create_order(BTC, "market", "buy", 10)
        await wait_for(lambda: len(_safe(read_fills, jdir)) == 1
                       and len(_safe(read_positions, jdir)) >= 1, 20, "fill and snapshot on disk")
        jdir.rename(tmp_path / "journal.moved")
        jdir.write_text("not a folder\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 60)
    assert proc.stderr is not None
    err = (await proc.stderr.read()).decode()
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "positions_open_" in lines[0] and "not written at stop" in lines[0], err
