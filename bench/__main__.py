"""`python -m bench [--quick] [--record] [--only NAME,...] [--compare FILE] [--save FILE]`: every figure, now.

Prints a human table (figure, value, target, pass/miss, the range of its rounds) and, as its LAST
line, one JSON object with every figure's key and ``spread`` ([lowest, highest] of
each figure measured in rounds). ``--compare bench/baseline.json`` adds a side-by-side of this run
against a stored baseline with the ratio now/baseline per figure, calling a change better or WORSE
only when it lies outside the spread of the rounds; ``--save FILE`` writes this run as such a
baseline (date, machine, figures, spread). Nothing is asserted: figures and ratios only.

Why a host reference: this host's speed swings 2-3x with the other work on it, so each section
measures ``bench.common.ref_loop_ms`` (a fixed pure-Python loop, CPU time) between its rounds, and
the stream section the JSON-decode floor in each round; each CPU and time figure is also given as a
multiple of the reference of the same moment (``*_x_ref``, ``stream_cost_x_json_floor``), which
is what to compare across hosts and days. A section that cannot run
(e.g. the console is not built yet) prints why and its keys are null.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import machine, quiet_logs, run_async

KEYS = ("host_ref_loop_ms", "stream_msgs_per_s", "ccxt_parse_msgs_per_s", "json_floor_msgs_per_s", "stream_vs_ccxt_x",
        "stream_cost_x_json_floor", "stream_cost_ref_iters",
        "event_to_screen_ms_p50", "event_to_screen_ms_p99", "event_to_screen_p99_x_ref",
        "key_to_screen_ms_p99", "key_to_screen_first_ms", "key_to_screen_p99_x_ref",
        "ui_cpu_pct", "ui_cpu_x_ref", "engine_only_cpu_pct", "engine_only_cpu_x_ref",
        "console_cpu_pts", "console_cpu_x_ref", "realistic_ui_cpu_pct", "realistic_ui_cpu_x_ref", "loop_lag_ms_p99",
        "screen_kb_per_s", "screen_kb_per_s_80x24", "slow_link_frames_dropped", "slow_link_loop_lag_ms_p99",
        "startup_s", "startup_x_ref", "soak_rss_growth_mb", "soak_rows", "soak_duplicates", "soak_sim_hours",
        "burst_clean_orders_per_s", "risk_check_us", "journal_year_start_ratio", "journal_year_rss_ratio",
        "report_year_s", "report_year_rss_mb", "history_first_page_ms",
        "store_ship_rows_per_s", "store_lag_ms_p99", "store_engine_cpu_ratio",
        "attach_event_to_screen_ms_p99", "attach_inproc_event_to_screen_ms_p99", "attach_minus_inproc_ms_p99",
        "attach_engine_cpu_ratio_3_vs_0", "attach_frozen_loop_lag_ms_p99", "attach_unfrozen_loop_lag_ms_p99",
        "attach_frozen_fills_per_s", "attach_unfrozen_fills_per_s")

# key -> (target text, check(value, figures) -> bool) ; keys without a target are informational.
# The targets hold for bench --quick at the bench load (50 positions, marks 10 Hz each, 5 fills/s,
# 160x50); the *_x_ref figures have none yet: the lead sets them from a quiet run.
TARGETS: dict[str, tuple[str, Callable[[float, dict[str, Any]], bool]]] = {
    "stream_vs_ccxt_x": (">= 4", lambda v, f: v >= 4),
    "stream_cost_x_json_floor": ("<= 8", lambda v, f: v <= 8),
    "event_to_screen_ms_p99": ("<= 50", lambda v, f: v <= 50),
    "key_to_screen_ms_p99": ("<= 30", lambda v, f: v <= 30),
    "key_to_screen_first_ms": ("<= 30", lambda v, f: v <= 30),
    "ui_cpu_pct": ("<= 8", lambda v, f: v <= 8),
    "engine_only_cpu_pct": ("<= 3 (fast)", lambda v, f: v <= 3),
    "console_cpu_pts": ("<= 4", lambda v, f: v <= 4),
    "realistic_ui_cpu_pct": ("<= 1.5", lambda v, f: v <= 1.5),
    "loop_lag_ms_p99": ("<= 10", lambda v, f: v <= 10),
    "screen_kb_per_s": ("<= 25", lambda v, f: v <= 25),
    "screen_kb_per_s_80x24": ("<= 12", lambda v, f: v <= 12),
    "slow_link_loop_lag_ms_p99": ("<= 10", lambda v, f: v <= 10),
    "startup_s": ("<= 0.5", lambda v, f: v <= 0.5),
    "soak_rss_growth_mb": ("<= 20", lambda v, f: v <= 20),
    "soak_duplicates": ("== 0", lambda v, f: v == 0),
    "burst_clean_orders_per_s": (">= 100", lambda v, f: v >= 100),
    "risk_check_us": ("<= 100", lambda v, f: v <= 100),
    "journal_year_start_ratio": ("<= 1.2", lambda v, f: v <= 1.2),
    "journal_year_rss_ratio": ("<= 1.2", lambda v, f: v <= 1.2),
    "report_year_s": ("<= 1", lambda v, f: v <= 1),
    "report_year_rss_mb": ("<= 100", lambda v, f: v <= 100),
    "history_first_page_ms": ("<= 100", lambda v, f: v <= 100),
    "attach_minus_inproc_ms_p99": ("<= 10", lambda v, f: v <= 10),
}


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
        if k == "refs":  # host reference ms measured by the section, between its rounds
            figures.setdefault("_refs", []).extend(v)
        elif k == "spread":  # [lowest, highest] of each figure's rounds
            figures.setdefault("spread", {}).update(v)
        elif k == "_detail":
            notes.append(f"{name}: {v}")
        elif k.startswith("_"):
            figures.setdefault("_extra", {})[k[1:]] = v
        else:
            figures[k] = v
    notes.append(f"{name}: {time.perf_counter() - t0:.1f} s wall")


SECTIONS = ("stream", "sim", "ui", "startup", "risk", "soak", "burst", "journal", "store", "attach")


def _run_section(name: str, quick: bool, figures: dict[str, Any], notes: list[str]) -> None:
    """Import and run one section (imports are lazy: a section's modules load only when it runs)."""
    if name == "stream":
        from bench.stream import bench_stream

        _section("stream", lambda: run_async(bench_stream(5 if quick else 7, 8 if quick else 20), 180), figures, notes)
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
    elif name == "store":
        from bench.store import bench_store

        _section("store", lambda: bench_store(quick), figures, notes)
    elif name == "attach":
        from bench.attach import bench_attach

        _section("attach", lambda: bench_attach(quick), figures, notes)
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


# figures where a larger value is better (the ratio column says "better"/"worse" with this)
HIGHER_IS_BETTER = {"stream_msgs_per_s", "ccxt_parse_msgs_per_s", "json_floor_msgs_per_s", "stream_vs_ccxt_x",
                    "burst_clean_orders_per_s", "soak_sim_hours", "soak_rows", "store_ship_rows_per_s",
                    "sim_orders_per_s", "ours_parse_only_msgs_per_s",
                    "attach_frozen_fills_per_s", "attach_unfrozen_fills_per_s"}  # the rest: lower is better
NOISE = 0.05  # without rounds on either side, a change within this fraction is "same"


def verdict(key: str, now: float, was: float, now_spread: list[float] | None,
            was_spread: list[float] | None) -> str:
    """Whether ``now`` differs from ``was`` by more than the rounds' own spread.

    Each side is the range its rounds covered ([lowest, highest]; a side without rounds is its
    one value): only when the two ranges do not overlap is the change the code's and not the
    host's, and only then is it called better or WORSE. Without rounds on either side, a change
    within ``NOISE`` is "same" and a larger one is marked "(no rounds)"."""
    lo_now, hi_now = now_spread if now_spread else (now, now)
    lo_was, hi_was = was_spread if was_spread else (was, was)
    up = now > was
    better = up if key in HIGHER_IS_BETTER else not up
    if now_spread or was_spread:
        if lo_now <= hi_was and lo_was <= hi_now:
            return "same (within spread)"
        return "better" if better else "WORSE"
    if was and abs(now / was - 1) < NOISE:
        return "same"
    return ("better" if better else "WORSE") + " (no rounds)"


def compare(figures: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Lines of a side-by-side: figure, now, baseline, now/baseline and whether that is a change.

    A change is flagged only outside the spread of the rounds (``verdict``); the *_x_ref figures
    (each round against the host reference of the same moment) are the ones to read across hosts
    and load, the raw ones only on a like-for-like host."""
    base = baseline.get("figures", {})
    now_spreads = figures.get("spread", {})
    was_spreads = baseline.get("spread", {})
    out = [f"compared with {baseline.get('date', '?')} ({baseline.get('source', '')})",
           f"  baseline machine: {baseline.get('machine', {})}",
           f"  this machine:     {machine()}",
           f"{'figure':<28}{'now':>14}{'baseline':>14}{'now/base':>10}  verdict"]
    for k in KEYS:
        now, was = figures.get(k), base.get(k)
        if now is None and was is None:
            continue
        ratio = text = ""
        if isinstance(now, (int, float)) and isinstance(was, (int, float)) and was:
            ratio = f"{now / was:.2f}x"
            text = verdict(k, now, was, now_spreads.get(k), was_spreads.get(k))
        out.append(f"{k:<28}{_fmt(now):>14}{_fmt(was):>14}{ratio:>10}  {text}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and a shortened soak (< 5 min)")
    ap.add_argument("--record", action="store_true", help="re-record bench/fixtures/okx_pushes.jsonl first")
    ap.add_argument("--only", default="", help="comma list of sections: " + ",".join(SECTIONS))
    ap.add_argument("--compare", metavar="FILE", help="baseline JSON to compare with (e.g. bench/baseline.json)")
    ap.add_argument("--save", metavar="FILE", help="write this run's figures as a baseline JSON")
    args = ap.parse_args(argv)
    baseline = json.loads(Path(args.compare).read_text()) if args.compare else None
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

    for name in SECTIONS:
        if not only or name in only:
            _run_section(name, quick, figures, notes)

    refs = figures.pop("_refs", [])
    if refs:
        from bench.common import median, spread

        figures["host_ref_loop_ms"] = round(median(refs), 1)
        figures.setdefault("spread", {})["host_ref_loop_ms"] = spread(refs, 1)
    if figures.get("stream_vs_ccxt_x") is None and figures.get("stream_msgs_per_s") \
            and figures.get("ccxt_parse_msgs_per_s"):
        figures["stream_vs_ccxt_x"] = round(figures["stream_msgs_per_s"] / figures["ccxt_parse_msgs_per_s"], 2)
    print()
    print(f"perpdesk bench{' --quick' if quick else ''}  ({time.strftime('%Y-%m-%d %H:%M')}, "
          f"{time.perf_counter() - t_start:.0f} s)")
    print(f"{'figure':<28}{'value':>14}  {'target':<12}{'result':<8}{'rounds (low-high)'}")
    spreads = figures.get("spread", {})
    for k in KEYS:
        v = figures.get(k)
        target, ok = TARGETS.get(k, ("", None))
        result = "" if ok is None or v is None else ("pass" if ok(v, figures) else "MISS")
        rng = spreads.get(k)
        rounds = f"{_fmt(rng[0])} - {_fmt(rng[1])}" if rng else ""
        print(f"{k:<28}{_fmt(v):>14}  {target:<12}{result:<8}{rounds}".rstrip())
    for k, v in figures.get("_extra", {}).items():
        print(f"{k:<26}{_fmt(v):>16}")
    for n in notes:
        print(f"  - {n}")
    if baseline is not None:
        print()
        print("\n".join(compare(figures, baseline)))
    if args.save:
        Path(args.save).write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "source": f"python -m bench{' --quick' if quick else ''}{' --only ' + args.only if args.only else ''}",
            "machine": machine(), "figures": {k: figures.get(k) for k in KEYS},
            "spread": figures.get("spread", {})}, indent=2) + "\n")
        print(f"baseline written to {args.save}")
    print(json.dumps({**{k: figures.get(k) for k in KEYS}, "spread": figures.get("spread", {})}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
