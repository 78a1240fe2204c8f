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
        "journal_year_start_ratio", "journal_year_rss_ratio", "report_year_s", "report_year_rss_mb",
        "history_first_page_ms")

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


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _sections(quick: bool) -> list[tuple[str, str, Callable[[], Any]]]:
    """(--only name, label, run) of every section, in the order they run; imports are lazy."""

    def stream() -> Any:
        from bench.stream import bench_stream

        return run_async(bench_stream(3 if quick else 5, 8 if quick else 20), 180)

    def sim() -> Any:
        from bench.sim import bench_sim_orders

        return bench_sim_orders(500 if quick else 2000)

    def ui() -> Any:
        from bench.ui import bench_ui

        return bench_ui(quick)

    def startup() -> Any:
        from bench.startup import bench_startup

        return bench_startup(3 if quick else 5)

    def soak() -> Any:
        from bench.soak import bench_soak

        return bench_soak(quick)

    def journal() -> Any:
        from bench.journal_year import bench_journal_year

        return bench_journal_year(quick)

    return [("stream", "stream", stream), ("sim", "sim orders", sim), ("ui", "ui", ui),
            ("startup", "startup", startup), ("soak", "soak", soak),
            ("journal", "journal year", journal)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and a shortened soak (< 5 min)")
    ap.add_argument("--record", action="store_true", help="re-record bench/fixtures/okx_pushes.jsonl first")
    ap.add_argument("--only", default="", help="comma list of sections: stream,sim,ui,startup,soak,journal")
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

    for key, label, run in _sections(quick):
        if not only or key in only:
            _section(label, run, figures, notes)

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
