"""Soak: simulated hours of the demo scalper through the full engine (and the headless console).

The simulator runs in a child process (``python -m bench.soak --sim SPEED``) at a high speed
factor with funding every 8 simulated hours, so this process's RSS is the product's own: engine,
venue, journal, strategy and, once ``console.app`` exists, the Textual app running headless on top.
Simulated time = wall time x speed (the simulator's clock is the wall clock; its market and funding
schedule run ``speed`` times faster). At the end: the strategy is stopped, the engine settles,
``Engine.reconcile()`` (what ``perpdesk reconcile`` runs) compares the journal with the exchange,
and the journal is read back for rows and duplicate fill / bill ids.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.journal import FAMILIES, read_fills, read_funding, read_rows

REPO = Path(__file__).resolve().parent.parent
FUNDING_EVERY_S = 8 * 3600  # simulated
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or 'self'}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


async def _sim_child(speed: float) -> None:
    from bench.common import quiet_logs
    from core.sim.server import SimServer

    quiet_logs()
    srv = SimServer(speed=speed, seed=11, funding_interval_s=FUNDING_EVERY_S)
    await srv.start()
    print(f"READY {srv.port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await srv.stop()


def _start_sim(speed: float) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen([sys.executable, "-m", "bench.soak", "--sim", str(speed)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline() if child.stdout else ""
    if not line.startswith("READY"):
        child.kill()
        raise RuntimeError(f"simulator child did not start: {line!r}")
    return child, int(line.split()[1])


async def _soak(hours: float, speed: float, tmp: Path, port: int, child_pid: int) -> dict[str, Any]:
    from core.service.runner import build_stack
    from core.settings.config import load_settings

    s = load_settings(REPO / "config.toml", ui_state=False)  # the committed config, redirected:
    s = replace(s, exchange=replace(s.exchange, url=f"http://127.0.0.1:{port}"),
                journal=replace(s.journal, dir=tmp / "journal"), logs=replace(s.logs, dir=tmp / "logs"),
                strategy=replace(s.strategy, name="demo_scalper",
                                 params={"interval_s": 0.4, "max_positions": 3, "seed": 5}))
    samples: list[tuple[float, float]] = []
    app_note = "headless console: not run (console.app.build_app not importable)"
    async with build_stack(s) as stack:
        app, app_task = None, None
        try:
            from console.app import build_app  # type: ignore[import-not-found]

            app = build_app(stack.engine, s, freeze_heap=True)  # as run_app does
            app_task = asyncio.create_task(app.run_async(headless=True, size=(160, 50)))
            app_note = "headless console: build_app(...).run_async(headless=True, size=(160, 50))"
        except ImportError:
            pass
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) * speed / 3600 < hours:
            samples.append((elapsed * speed / 3600, rss_mb()))
            await asyncio.sleep(1.0)
        sim_hours = (time.perf_counter() - t0) * speed / 3600
        if stack.strategy is not None:
            await stack.strategy.stop()
        settled = await stack.engine.settle(20.0)
        report = await stack.engine.reconcile()
        if not report.ok and os.environ.get("PERPDESK_SOAK_DIR"):
            await _dump_exchange(stack.engine.venue, tmp, report.lines())
        samples.append((sim_hours, rss_mb()))
        sim_rss = rss_mb(child_pid)
        if app is not None and app_task is not None:
            app.exit()
            await asyncio.wait_for(app_task, 10)
    if not report.ok:
        diff = [ln for ln in report.lines() if ln.rstrip().endswith("DIFF")]
        app_note += "; reconcile differences: " + " | ".join(" ".join(ln.split()) for ln in diff[:6])
    jdir = tmp / "journal"
    rows = {fam: len(read_rows(jdir, fam)) for fam in FAMILIES}
    fills = Counter(str(r["fill_id"]) for r in read_fills(jdir))
    bills = Counter(str(r["bill_id"]) for r in read_funding(jdir))
    dups = sum(n - 1 for n in fills.values() if n > 1) + sum(n - 1 for n in bills.values() if n > 1)
    base = next((mb for h, mb in samples if h >= min(1.0, hours / 4)), samples[0][1])
    marks = [samples[int(i * (len(samples) - 1) / 4)] for i in range(5)]
    return {
        "soak_rss_growth_mb": round(samples[-1][1] - base, 1),
        "soak_rows": sum(rows.values()),
        "soak_duplicates": dups,
        "soak_sim_hours": round(sim_hours, 2),
        "_soak_reconcile": "clean" if report.ok else f"{len(report.differences)} differences",
        "_detail": (f"speed x{speed:g}, funding every 8 sim h, rows {rows}, {len(fills)} fills, {len(bills)} funding "
                    f"bills, settled={settled}, reconcile {'clean' if report.ok else report.lines()[-1]}; "
                    f"RSS MB (sim h: MB) " + ", ".join(f"{h:.1f}: {mb:.1f}" for h, mb in marks)
                    + f"; growth measured from the sample at {min(1.0, hours / 4):g} sim h; "
                    f"simulator child RSS {sim_rss:.0f} MB (not counted); {app_note}"),
    }


async def _dump_exchange(venue: Any, tmp: Path, lines: list[str]) -> None:
    """Keep what the exchange said beside the journal, so a difference can be read afterwards."""
    (tmp / "reconcile.txt").write_text("\n".join(lines) + "\n")
    parts = {"fills": await venue.fetch_fills(None),
             "positions_history": await venue.fetch_positions_history(None),
             "bills": await venue.fetch_funding_bills(None), "positions": await venue.fetch_positions()}
    for name, items in parts.items():
        (tmp / f"exchange_{name}.txt").write_text("".join(f"{item!r}\n" for item in items))


def bench_soak(quick: bool) -> dict[str, Any]:
    from bench.common import run_async

    """Full: 24 simulated hours at x240 (6 min). Quick: 10 simulated hours at x400 (90 s)."""
    hours, speed = (10.0, 400.0) if quick else (24.2, 240.0)
    child, port = _start_sim(speed)
    try:
        keep = os.environ.get("PERPDESK_SOAK_DIR")  # keep journal, logs and, on a difference, the
        if keep:                                     # exchange's side for reading afterwards
            Path(keep).mkdir(parents=True, exist_ok=True)
            out = run_async(_soak(hours, speed, Path(keep), port, child.pid), hours * 3600 / speed + 90)
        else:
            with tempfile.TemporaryDirectory(prefix="perpdesk-soak-") as tmp:
                out = run_async(_soak(hours, speed, Path(tmp), port, child.pid), hours * 3600 / speed + 90)
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
    if quick:
        out["_detail"] = f"QUICK soak: {hours:g} simulated hours, not a whole day; " + out["_detail"]
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--sim":
        asyncio.run(_sim_child(float(sys.argv[2])))
    else:
        from bench.common import quiet_logs

        quiet_logs()
        print(bench_soak("--quick" in sys.argv))
