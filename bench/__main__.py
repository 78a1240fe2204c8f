"""`python -m bench [--quick] [--record] [--only NAME,...]`: every figure of issue 6, measured now.

Prints a human table (figure, value, target, pass/miss) and, as its LAST line, one JSON object
with the keys of issue 6. Nothing is asserted: figures and ratios only. Each timing is the median
of several runs because other work may share this machine's cores. A section that cannot run
(e.g. the console is not built yet) prints why and its keys are null.
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

KEYS = ("stream_msgs_per_s", "ccxt_parse_msgs_per_s", "json_floor_msgs_per_s", "event_to_screen_ms_p50",
        "event_to_screen_ms_p99", "key_to_screen_ms_p99", "ui_cpu_pct", "loop_lag_ms_p99", "screen_kb_per_s",
        "startup_s", "soak_rss_growth_mb", "soak_rows", "soak_duplicates", "soak_sim_hours",
        "burst_clean_orders_per_s", "risk_check_us", "journal_year_start_ratio", "journal_year_rss_ratio",
        "report_year_s", "report_year_rss_mb", "history_first_page_ms")

# key -> (target text, check(value, figures) -> bool) ; keys without a target are informational
TARGETS: dict[str, tuple[str, Callable[[float, dict[str, Any]], bool]]] = {
    "stream_msgs_per_s": (">= 3x ccxt", lambda v, f: f.get("ccxt_parse_msgs_per_s") is not None
                          and v >= 3 * f["ccxt_parse_msgs_per_s"]),
    "event_to_screen_ms_p99": ("<= 100", lambda v, f: v <= 100),
    "key_to_screen_ms_p99": ("<= 50", lambda v, f: v <= 50),
    "ui_cpu_pct": ("<= 15", lambda v, f: v <= 15),
    "loop_lag_ms_p99": ("<= 10", lambda v, f: v <= 10),
    "screen_kb_per_s": ("<= 100", lambda v, f: v <= 100),
    "startup_s": ("<= 1.5", lambda v, f: v <= 1.5),
    "soak_rss_growth_mb": ("<= 20", lambda v, f: v <= 20),
    "soak_duplicates": ("== 0", lambda v, f: v == 0),
    "burst_clean_orders_per_s": (">= 100", lambda v, f: v >= 100),
    "risk_check_us": ("<= 100", lambda v, f: v <= 100),
    "journal_year_start_ratio": ("<= 1.2", lambda v, f: v <= 1.2),
    "journal_year_rss_ratio": ("<= 1.2", lambda v, f: v <= 1.2),
    "report_year_s": ("<= 1", lambda v, f: v <= 1),
    "report_year_rss_mb": ("<= 100", lambda v, f: v <= 100),
    "history_first_page_ms": ("<= 100", lambda v, f: v <= 100),
}


def quiet_logs() -> Path:
    """Send loguru to a temp log file the way the product does (file sink, never the terminal)."""
    from core.config import LogSettings, Settings
    from core.logs import setup_logging

    tmp = Path(tempfile.mkdtemp(prefix="perpdesk-bench-logs-"))
    atexit.register(shutil.rmtree, tmp, True)
    setup_logging(replace(Settings(), logs=replace(LogSettings(), dir=tmp)))
    return tmp


def run_async(coro: Any, timeout: float) -> Any:
    """asyncio.run with a deadline; on timeout every task's stack goes to stderr, then TimeoutError."""

    async def guarded() -> Any:
        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if task in done:
            return task.result()
        for t in asyncio.all_tasks():
            if t is not asyncio.current_task():
                t.print_stack(limit=6, file=sys.stderr)
        task.cancel()
        raise TimeoutError(f"section did not finish within {timeout:g} s (task stacks on stderr)")

    return asyncio.run(guarded())


def _section(name: str, run: Callable[[], Any], figures: dict[str, Any], notes: list[str]) -> None:
    t0 = time.perf_counter()
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    try:
        out = run()
    except Exception as exc:  # noqa: BLE001 - a section that cannot run is reported, the rest go on
        notes.append(f"{name}: NOT MEASURED ({type(exc).__name__}: {exc})")
        traceback.print_exc(file=sys.stderr)
        return
    for k, v in out.items():
        if k == "_detail":
            notes.append(f"{name}: {v}")
        elif k.startswith("_"):
            figures.setdefault("_extra", {})[k[1:]] = v
        else:
            figures[k] = v
    notes.append(f"{name}: {time.perf_counter() - t0:.1f} s wall")


SECTIONS = ("stream", "sim", "ui", "startup", "risk", "soak", "burst", "journal")


def _run_section(name: str, quick: bool, figures: dict[str, Any], notes: list[str]) -> None:
    """Import and run one section (imports are lazy: a section's modules load only when it runs)."""
    if name == "stream":
        from bench.stream import bench_stream

        _section("stream", lambda: run_async(bench_stream(3 if quick else 5, 8 if quick else 20), 180), figures, notes)
    elif name == "sim":
        from bench.sim import bench_sim_orders

        _section("sim orders", lambda: bench_sim_orders(500 if quick else 2000), figures, notes)
    elif name == "ui":
        from bench.ui import bench_ui

        _section("ui", lambda: bench_ui(quick), figures, notes)
    elif name == "startup":
        from bench.startup import bench_startup

        _section("startup", lambda: bench_startup(3 if quick else 5), figures, notes)
    elif name == "risk":
        from bench.risk import bench_risk

        _section("risk", lambda: bench_risk(3 if quick else 7), figures, notes)
    elif name == "burst":
        from bench.burst import bench_burst

        _section("burst", lambda: run_async(bench_burst(3.0 if quick else 5.0), 900), figures, notes)
    elif name == "journal":
        from bench.journal_year import bench_journal_year

        _section("journal year", lambda: bench_journal_year(quick), figures, notes)
    elif name == "soak":
        from bench.soak import bench_soak

        _section("soak", lambda: bench_soak(quick), figures, notes)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one branch per section
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and a shortened soak (< 5 min)")
    ap.add_argument("--record", action="store_true", help="re-record bench/fixtures/okx_pushes.jsonl first")
    ap.add_argument("--only", default="", help="comma list of sections: " + ",".join(SECTIONS))
    args = ap.parse_args(argv)
    quick = args.quick
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    quiet_logs()
    figures: dict[str, Any] = {}
    notes: list[str] = []
    t_start = time.perf_counter()

    if args.record:
        from bench.record import FIXTURE, record

        counts = asyncio.run(record())
        notes.append(f"record: wrote {FIXTURE.name} {dict(counts)}")

    def want(name: str) -> bool:
        return not only or name in only

    for name in SECTIONS:
        if want(name):
            _run_section(name, quick, figures, notes)

    print()
    print(f"perpdesk bench{' --quick' if quick else ''}  ({time.strftime('%Y-%m-%d %H:%M')}, "
          f"{time.perf_counter() - t_start:.0f} s)")
    print(f"{'figure':<26}{'value':>16}  {'target':<12}{'result'}")
    for k in KEYS:
        v = figures.get(k)
        target, ok = TARGETS.get(k, ("", None))
        result = "" if ok is None or v is None else ("pass" if ok(v, figures) else "MISS")
        print(f"{k:<26}{_fmt(v):>16}  {target:<12}{result}")
    if figures.get("stream_msgs_per_s") and figures.get("ccxt_parse_msgs_per_s"):
        print(f"{'ours / ccxt.pro':<26}{figures['stream_msgs_per_s'] / figures['ccxt_parse_msgs_per_s']:>15.2f}x")
    for k, v in figures.get("_extra", {}).items():
        print(f"{k:<26}{_fmt(v):>16}")
    for n in notes:
        print(f"  - {n}")
    print(json.dumps({k: figures.get(k) for k in KEYS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
