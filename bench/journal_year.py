"""A year of a busy scalper's journal: start-up, memory, report and history pages against it.

The journal is generated, not recorded: 146,000 closed position lives on three swaps (an opening
and a closing fill each, one "filled" order event per order, a trades row per life and three
funding rows a day per symbol), written straight in the schema's column order with valid values
into 1,095 day files, ending yesterday. It is cached in a temp folder for the run.

Figures:
- ``journal_year_start_ratio`` / ``journal_year_rss_ratio``: headless ``perpdesk --headless
  --duration 2`` on the embedded simulator with the year journal, over the same with an empty
  journal (steady state: the journal index already built; the first start, which builds the
  index from the CSV, is reported beside it);
- ``report_year_s`` and ``report_year_rss_mb``: ``perpdesk report`` over the whole year;
- ``history_first_page_ms``: a fresh history pager's page at the deepest depth (the oldest fills).
Peak RSS is each child's own, read by a small wrapper process (RUSAGE_CHILDREN of one child).
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.journal.binding import ACCOUNT_FILE
from core.journal.schema import header_line

REPO = Path(__file__).resolve().parent.parent
LIVES = 146_000
DAYS = 365
SYMBOLS = (("BTC-USDT-SWAP", "0.01", 60000), ("ETH-USDT-SWAP", "0.1", 3000),
           ("SOL-USDT-SWAP", "1", 150))

_WRAP = (
    "import resource, subprocess, sys, time\n"
    "t0 = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "dt = time.perf_counter() - t0\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(dt, rss, p.returncode)\n"
    "sys.stderr.write(p.stderr.decode(errors='replace')[-2000:])\n"
)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"


def generate(directory: Path, lives: int = LIVES, days: int = DAYS) -> dict[str, int]:
    """Write the year journal into ``directory`` (0700, files 0600); counts of what was written."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    last_day = datetime.now(UTC).date() - timedelta(days=1)
    first_day = last_day - timedelta(days=days - 1)
    per_day = lives // days
    spacing = 86_400_000 // per_day
    life = fill = 0
    counts = {"fills": 0, "lives": 0, "funding": 0, "bytes": 0, "files": 0}
    heads = {f: header_line(f) for f in ("orders", "trades", "funding")}
    for d in range(days):
        day = first_day + timedelta(days=d)
        base = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        orders: list[str] = [heads["orders"]]
        trades: list[str] = [heads["trades"]]
        funding: list[str] = [heads["funding"]]
        n = per_day + (1 if d < lives - per_day * days else 0)
        for i in range(n):
            symbol, ctsize, px = SYMBOLS[life % len(SYMBOLS)]
            t_open = base + i * spacing + 17
            t_close = t_open + spacing // 2
            long = life % 2 == 0
            contracts = 1 + life % 7
            coins = f"{contracts * float(ctsize):g}"
            p_open = px + (life % 97) / 10
            p_close = p_open + ((life % 13) - 6) / 10
            fee_o = f"{contracts * float(ctsize) * p_open * 0.0005:.8f}"
            fee_c = f"{contracts * float(ctsize) * p_close * 0.0005:.8f}"
            gross = (p_close - p_open) * contracts * float(ctsize) * (1 if long else -1)
            pid = f"{symbol}#net#{t_open}"
            o_side, c_side = ("buy", "sell") if long else ("sell", "buy")
            for ts, side, price, fee, ro in ((t_open, o_side, p_open, fee_o, "false"),
                                             (t_close, c_side, p_close, fee_c, "true")):
                fill += 1
                iso = _iso(ts)
                orders.append(
                    f"{iso},fill,{symbol},YO{fill:09d},,YF{fill:09d},{side},{contracts},{ctsize},"
                    f"{coins},{price:.1f},{fee},USDT,{ro},taker,strategy,net,normal,,,0,,,,\n")
                orders.append(
                    f"{iso},filled,{symbol},YO{fill:09d},,,{side},{contracts},{ctsize},{coins},"
                    f"{price:.1f},,,{ro},,strategy,,,,,,market,{contracts},{price:.1f},\n")
            fees = f"{float(fee_o) + float(fee_c):.8f}"
            net = f"{gross - float(fees):.8f}"
            trades.append(
                f"{_iso(t_close)},{symbol},{pid},{'long' if long else 'short'},strategy,{coins},"
                f"{coins},0,{contracts},{ctsize},{p_open:.1f},{p_close:.1f},{gross:.8f},{fees},0,0,"
                f"{net},{_iso(t_open)},ledger,{pid}|YF{fill:09d},YF{fill:09d}\n")
            life += 1
        for k in range(3):
            for s, (symbol, _, px) in enumerate(SYMBOLS):
                counts["funding"] += 1
                ts = base + k * 28_800_000
                funding.append(f"{_iso(ts)},{symbol},,0.0001,1,1,{px},-0.{s + 1}5,USDT,"
                               f"YB{d:04d}{k}{s}\n")
        counts["fills"] += 2 * n
        counts["lives"] += n
        for family, lines in (("orders", orders), ("trades", trades), ("funding", funding)):
            path = directory / f"{family}_{day.isoformat()}.csv"
            data = "".join(lines).encode()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            counts["bytes"] += len(data)
            counts["files"] += 1
    return counts


def _perpdesk() -> str:
    exe = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "perpdesk"
    return str(exe) if exe.exists() else shutil.which("perpdesk") or "perpdesk"


def _config(folder: Path, journal: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "config.toml"
    cfg.write_text(f'[exchange]\nvenue = "sim"\n[journal]\ndir = "{journal}"\n'
                   f'[logs]\ndir = "{folder / "logs"}"\n[strategy]\nname = "none"\n')
    return cfg


def _measure(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}
    proc = subprocess.run([sys.executable, "-c", _WRAP, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    dt, rss, rc = proc.stdout.split()
    if rc != "0":
        raise RuntimeError(f"{' '.join(args[1:])} exited {rc}: {proc.stderr.strip()[-400:]}")
    return float(dt), int(rss) / 1024


def _headless(cfg: Path) -> tuple[float, float]:
    return _measure([_perpdesk(), "--config", str(cfg), "--headless", "--duration", "2"],
                    cfg.parent)


def bench_journal_year(quick: bool = False) -> dict[str, Any]:
    runs = 2 if quick else 3
    with tempfile.TemporaryDirectory(prefix="perpdesk-bench-year-") as tmp:
        root = Path(tmp)
        year = root / "year" / "journal"
        t0 = time.perf_counter()
        made = generate(year)
        gen_s = time.perf_counter() - t0
        empty_cfg = _config(root / "empty", root / "empty" / "journal")
        year_cfg = _config(root / "year", year)
        _headless(empty_cfg)  # the empty journal's first start creates its folder and index
        # a journal with rows is refused without the record of its account: the year journal is
        # given the simulated account (its saved state) and the record that the empty journal's
        # first start wrote, so both runs trade on one account with the same empty exchange
        for name in (ACCOUNT_FILE, "sim-state.json"):
            shutil.copy2(root / "empty" / "journal" / name, year / name)
        first_s, first_rss = _headless(year_cfg)  # builds the index from the CSV
        empty: list[tuple[float, float]] = []
        steady: list[tuple[float, float]] = []
        for _ in range(runs):  # interleaved: a machine whose load drifts shifts both alike
            empty.append(_headless(empty_cfg))
            steady.append(_headless(year_cfg))
        reports = [_measure([_perpdesk(), "--config", str(year_cfg), "report"], year_cfg.parent)
                   for _ in range(runs)]
        report_empty = [_measure([_perpdesk(), "--config", str(empty_cfg), "report"],
                                 empty_cfg.parent) for _ in range(runs)]
        page_ms = _deepest_page_ms(year, 3 if quick else 5)
        e_s = statistics.median(r[0] for r in empty)
        e_rss = max(r[1] for r in empty)
        y_s = statistics.median(r[0] for r in steady)
        y_rss = max(r[1] for r in steady)
        return {
            "journal_year_start_ratio": round(y_s / e_s, 2),
            "journal_year_rss_ratio": round(y_rss / e_rss, 2),
            "report_year_s": round(statistics.median(r[0] for r in reports), 2),
            "report_year_rss_mb": round(max(r[1] for r in reports), 1),
            "history_first_page_ms": round(page_ms, 1),
            "_report_empty_journal_s": round(statistics.median(r[0] for r in report_empty), 2),
            "_journal_year_first_start_ratio": round(first_s / e_s, 2),
            "_journal_year_first_rss_ratio": round(first_rss / e_rss, 2),
            "_detail": (f"year journal {made['files']} files {made['bytes'] / 1e6:.0f} MB "
                        f"{made['fills']} fills {made['lives']} lives (generated in {gen_s:.1f} s); "
                        f"headless empty {e_s:.2f} s {e_rss:.0f} MB, year first start (index "
                        f"built) {first_s:.2f} s {first_rss:.0f} MB, year steady {y_s:.2f} s "
                        f"{y_rss:.0f} MB; " + json.dumps({"report_runs_s": [round(r[0], 2)
                                                                             for r in reports]})),
        }


def _deepest_page_ms(journal: Path, repeats: int) -> float:
    from core.journal.history import HistoryPager

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pager = HistoryPager(journal, "fills", 200)
        page = pager.read_page(10**9)  # clamped to the oldest page
        times.append((time.perf_counter() - t0) * 1000)
        if page.more or not page.items:
            raise RuntimeError("the deepest history page is not the oldest one")
    return statistics.median(times)


if __name__ == "__main__":
    print(json.dumps(bench_journal_year("--quick" in sys.argv)))
