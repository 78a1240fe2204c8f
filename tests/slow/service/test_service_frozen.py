"""Issue 22 item 4: a frozen console (SIGSTOP for 30 s) costs the engine nothing measurable.

A real `perpdesk serve` trades with the demo strategy on a fast simulator; one console runs in
its own process and is stopped for 30 s while another watches. The engine's loop lag (its own
probe, in `status`) and its fills must look the same as before the stop; once continued, the
frozen console catches up (same engine run: it resumes, or it was dropped and resyncs from a
snapshot) to the positions the engine has.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from console.remote import RemoteEngine
from core.journal import read_fills
from tests.helpers.lock_helpers import embedded_config, start_serve, stop
from tests.helpers.paths import REPO
from tests.helpers.service_helpers import _safe

pytestmark = pytest.mark.timeout(180)
FROZEN_S = 30.0

_VICTIM = """
import asyncio, json, sys
from console.remote import RemoteEngine
async def main():
    r = RemoteEngine(sys.argv[1]); await r.connect(); r.start()
    n = [0]
    r.subscribe(lambda e: n.__setitem__(0, n[0] + 1))
    while True:
        with open(sys.argv[2], "a") as out:
            out.write(json.dumps({"seq": r.seq, "connected": r.connected, "events": n[0],
                                  "fresh": r.fresh_snapshots, "reconnects": r.reconnects,
                                  "positions": sorted((p.position_id, str(p.contracts)) for p in r.positions())}) + "\\n")
        await asyncio.sleep(0.2)
asyncio.run(main())
"""


def _last(path: Path) -> dict[str, Any]:
    lines = path.read_text().splitlines() if path.exists() else []
    return json.loads(lines[-1]) if lines else {}


async def _sample(watcher: RemoteEngine, seconds: float, jdir: Path) -> tuple[float, int]:
    """(worst loop lag the engine reported, fills journaled) over ``seconds``."""
    start = len(_safe(read_fills, jdir))
    worst = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        worst = max(worst, float((await watcher.call("status"))["loop_lag_ms"]))
    return worst, len(_safe(read_fills, jdir)) - start


async def test_a_frozen_console_costs_the_engine_nothing(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path, speed="50", strategy="demo_scalper",
                          extra="[strategy.params]\ninterval_s = 0.2\nmax_positions = 2\n"
                                "partial_chance = 0\nseed = 11\nnotional = 600\n")
    jdir = tmp_path / "journal"
    proc, path, _ = start_serve(tmp_path, cfg)
    report = tmp_path / "victim.jsonl"
    victim = subprocess.Popen([sys.executable, "-c", _VICTIM, str(path), str(report)],
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    watcher = RemoteEngine(path)
    await watcher.connect()
    watcher.start()
    try:
        deadline = time.monotonic() + 20
        while not _last(report).get("connected") and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert _last(report).get("connected"), "the console never attached"
        lag_before, fills_before = await _sample(watcher, FROZEN_S / 3, jdir)

        victim.send_signal(signal.SIGSTOP)
        lag_frozen, fills_frozen = await _sample(watcher, FROZEN_S, jdir)
        victim.send_signal(signal.SIGCONT)
        print(f"loop lag worst before {lag_before} ms, while a console was frozen {lag_frozen} ms; "
              f"fills {fills_before} in {FROZEN_S / 3:g} s before, {fills_frozen} in {FROZEN_S:g} s frozen")

        assert lag_frozen < max(3 * lag_before, 150.0)
        assert fills_frozen > 0 and fills_frozen >= fills_before  # three times as long: at least as many

        target = watcher.seq
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            last = _last(report)
            if (last.get("connected") and last.get("seq", 0) >= target and last.get("positions")
                    == sorted([p.position_id, str(p.contracts)] for p in watcher.positions())):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"the frozen console did not catch up: {_last(report)}; engine "
                                 f"seq {target}, positions {watcher.positions()}")
        print(f"after SIGCONT: console resynced from a snapshot {last['fresh']} time(s), "
              f"reconnected {last['reconnects']} time(s)")
    finally:
        victim.send_signal(signal.SIGCONT)
        victim.kill()
        victim.wait(10)
        await watcher.close()
        assert stop(proc) == 0
