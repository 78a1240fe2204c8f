"""The console attached to `perpdesk serve`: price -> screen, engine CPU, frozen console.

Set-up (the load and the probes of bench/ui.py, so the figures compare):
* the simulator child of bench/ui.py (50 swaps, every mark moved at 10 Hz = 500 mark pushes/s,
  5 fills/s), one fresh child for the in-process run and one for the attached run;
* in-process: this process runs build_stack + the console in one loop at 160x50 (the measuring
  driver and the render_line probe of bench/ui.py), 50 positions opened, a steady window: the
  in-process event -> screen p99 of THIS run (``attach_inproc_event_to_screen_ms_p99``);
* attached: a real `perpdesk serve` process (``python -m bench.attach --serve``: the product's
  own CLI `serve`, with the push probe of bench/ui.py installed in it) on the same load, and real
  console processes (``--console``: RemoteEngine on the Unix socket + the product's PerpdeskApp
  at 160x50 with the measuring driver), as `perpdesk attach` builds them (its signal handling
  aside). A push entering the engine's OkxStream._dispatch is stamped in the serve process, the
  frame carrying the changed line in the console process; both stamp time.perf_counter()
  (CLOCK_MONOTONIC, one clock for every process of the host), and the samples are matched as in
  bench/ui.py (a mark replaced before it was drawn is coalesced, not a sample).

Windows (``--quick`` shortens each, and the frozen one to 10 s instead of 30 s):
1. no console attached: the serve process's CPU (/proc/<pid>/stat), loop lag, fills;
2. one console: price -> screen through attach (``attach_event_to_screen_ms_p99``);
3. three consoles: the engine's CPU again (``attach_engine_cpu_ratio_3_vs_0``), lag, fills;
4. the same three, one of them SIGSTOPped for the window: the engine's loop lag p99 and fills/s
   (``attach_frozen_*``) against window 3.
Loop lag is the engine's own, measured in the serve process by a task sleeping 5 ms (as
bench/ui.py measures the in-process loop); fills are the journal's rows in each window.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import wait_until

REPO = Path(__file__).resolve().parent.parent
FROZEN_S = 30.0
FROZEN_QUICK_S = 10.0


def _key(symbol: str, mark: Decimal) -> str:
    return f"{symbol} {format(mark.normalize(), 'f')}"


def _config(tmp: Path, port: int) -> Path:
    from bench.ui import specs, symbol_of

    symbols = ", ".join(f'"{symbol_of(i)}"' for i in specs())
    cfg = tmp / "config.toml"
    cfg.write_text(f'[exchange]\nvenue = "sim"\nurl = "http://127.0.0.1:{port}"\nsymbols = [{symbols}]\n'
                   '[journal]\ndir = "journal"\n[logs]\ndir = "logs"\n[ui]\nrefresh_hz = 20\n'
                   '[strategy]\nname = "none"\n')
    return cfg


# ------------------------------------------------------------------ the serve process


def _serve_child(cfg: str, out: str) -> int:
    """`perpdesk --config CFG serve` with the engine-side probes; writes them to OUT at the stop."""
    from console.cli import main
    from core.service.server import ControlServer
    from core.venue.okx_stream import OkxStream

    entered: list[tuple[str, float]] = []
    lag: list[tuple[float, float]] = []
    original = OkxStream._dispatch

    def dispatch(self: Any, msg: dict[str, Any]) -> None:
        if msg.get("arg", {}).get("channel") == "mark-price":
            now = time.perf_counter()
            for item in msg["data"]:
                entered.append((_key(item["instId"].replace("-USDT-SWAP", "/USDT:USDT"),
                                     Decimal(item["markPx"])), now))
        original(self, msg)

    OkxStream._dispatch = dispatch  # type: ignore[method-assign]
    start = ControlServer.start

    async def probe_lag() -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            lag.append((now, (now - t - 0.005) * 1000))

    async def started(self: ControlServer) -> None:
        await start(self)
        self._bench_lag = asyncio.create_task(probe_lag())  # type: ignore[attr-defined]

    ControlServer.start = started  # type: ignore[method-assign]
    try:
        return main(["--config", cfg, "serve"])
    finally:
        Path(out).write_text(json.dumps({"entered": entered, "lag": lag}))


# ------------------------------------------------------------------ a console process


class _ScreenProbe:
    """bench/ui.py's Probe, console side only: when each (symbol, mark) line reached a frame."""

    def __init__(self, measure: bool) -> None:
        self.on = measure
        self.rendered: list[tuple[str, Decimal]] = []
        self.shown: list[tuple[str, float]] = []
        self.bytes = 0

    def write(self, data: str) -> None:
        now = time.perf_counter()
        self.bytes += len(data)
        if self.rendered:
            self.shown.extend((_key(sym, mark), now) for sym, mark in self.rendered)
            self.rendered.clear()


async def _console_child(cfg: str, sock: str, out: str, measure: bool) -> None:
    """A console attached over the socket (RemoteEngine + PerpdeskApp at 160x50), prints READY
    once the 50 positions are on its screen, and writes its probe to OUT when told ``quit``."""
    import bench.ui as ui
    from console.app import build_app
    from console.remote import RemoteEngine
    from core.settings.config import load_settings

    os.environ.setdefault("COLORTERM", "truecolor")
    os.environ["TERM"] = "xterm-256color"
    settings = load_settings(cfg, ui_state=False)
    probe = _ScreenProbe(measure)
    ui.PROBE = probe  # type: ignore[assignment]  # what the measuring driver writes to
    remote = RemoteEngine(Path(sock))
    await remote.connect()
    app = build_app(remote, settings, freeze_heap=True)
    app.driver_class = ui.driver_class()
    remote.start()
    run = asyncio.create_task(app.run_async(size=(160, 50), mouse=False))
    await wait_until(lambda: app.is_running and app.screen.query("#positions"), 30, "console running")
    await wait_until(lambda: len(app.positions.snapshots) == ui.N_POS, 30, "50 positions on the console")
    if measure:
        ui.install_probes(app.positions)
    os.write(1, b"READY\n")  # not print: Textual captures sys.stdout while the app runs
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.readline()  # quit (or the bench went away)
    app.exit()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(run, 15)
    await remote.close()
    Path(out).write_text(json.dumps({"shown": probe.shown, "bytes": probe.bytes}))


class _Console:
    def __init__(self, cfg: Path, sock: Path, out: Path, measure: bool) -> None:
        self.out = out
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.attach", "--console", str(cfg), str(sock),
                                      str(out), "1" if measure else "0"], cwd=REPO, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ready(self) -> None:
        import select

        assert self.proc.stdout is not None
        ready = select.select([self.proc.stdout], [], [], 90)[0]
        line = self.proc.stdout.readline() if ready else "(nothing within 90 s)"
        if "READY" not in line:
            self.proc.kill()
            raise RuntimeError(f"attached console did not start: {line!r}")

    def quit(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.send_signal(signal.SIGCONT)
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return json.loads(self.out.read_text()) if self.out.exists() else {}


# ------------------------------------------------------------------ the bench


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _matched(entered: list[tuple[str, float]], shown: list[tuple[str, float]], t0: float, t1: float) -> list[float]:
    """bench/ui.py's matching across two processes: a frame carrying a (symbol, mark) line
    closes the latest entry of that key not closed yet; entries replaced before that are not
    samples (coalesced). Only entries within [t0, t1)."""
    events: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for key, t in entered:
        events[key].append((t, 0))
    for key, t in shown:
        if key in events:
            events[key].append((t, 1))
    out: list[float] = []
    for seq in events.values():
        seq.sort()
        pending: float | None = None
        for t, kind in seq:
            if kind == 0:
                pending = t
            elif pending is not None:
                if t0 <= pending < t1:
                    out.append((t - pending) * 1000)
                pending = None
    return out


def _fills_in(jdir: Path, w0: float, w1: float) -> int:
    from core.journal import read_fills

    n = 0
    for row in read_fills(jdir):
        ts = datetime.fromisoformat(str(row["ts"])).timestamp()
        if w0 <= ts < w1:
            n += 1
    return n


async def _inprocess(quick: bool, tmp: Path) -> dict[str, Any]:
    """bench/ui.py's steady window only (same set-up, same probes), in this process."""
    import bench.ui as ui
    from console.app import build_app
    from core.events import PlaceOrder
    from core.model import OrderSide
    from core.service.runner import build_stack
    from core.settings.config import load_settings

    child = ui.SimChild()
    try:
        os.environ.setdefault("COLORTERM", "truecolor")
        os.environ["TERM"] = "xterm-256color"
        s = load_settings(_config(tmp, child.port), ui_state=False)
        probe = ui.PROBE = ui.Probe()
        async with build_stack(s) as stack:
            engine = stack.engine
            app = build_app(engine, s, freeze_heap=True)
            app.driver_class = ui.driver_class()
            run = asyncio.create_task(app.run_async(size=(160, 50), mouse=False))
            await wait_until(lambda: app.is_running and app.screen.query("#positions"), 20, "app running")
            await asyncio.gather(*(engine.submit(PlaceOrder(sym, OrderSide.BUY, Decimal(10)))
                                   for sym in engine.instruments))
            await wait_until(lambda: len(app.positions.snapshots) == ui.N_POS, 30, "50 positions")
            undo = ui.install_probes(app.positions)
            child.set("tick", ui.N_POS * ui.TICK_HZ)
            child.set("fills", ui.FILLS_PER_S)
            probe.on = True
            await asyncio.sleep(2.0)
            probe.reset()
            await asyncio.sleep(8.0 if quick else 20.0)
            lat = list(probe.latencies)
            probe.on = False
            undo()
            child.set("tick", 0)
            child.set("fills", 0)
            app.exit()
            await asyncio.wait_for(run, 15)
        ui.PROBE = None
    finally:
        child.close()
    return {"p50": ui.pct(lat, 0.5), "p99": ui.pct(lat, 0.99), "n": len(lat)}


async def _attached(quick: bool, tmp: Path) -> dict[str, Any]:
    import bench.ui as ui
    from console.remote import RemoteEngine
    from core.events import PlaceOrder
    from core.model import OrderSide
    from core.service.lock import read_holder

    window = 8.0 if quick else 20.0
    frozen_s = FROZEN_QUICK_S if quick else FROZEN_S
    child = ui.SimChild()
    cfg = _config(tmp, child.port)
    jdir = tmp / "journal"
    probe_out = tmp / "serve-probe.json"
    env = {**os.environ, "PERPDESK_RUNTIME_DIR": str(tmp / "run"), "PYTHONPATH": str(REPO)}
    serve = subprocess.Popen([sys.executable, "-m", "bench.attach", "--serve", str(cfg), str(probe_out)],
                             cwd=tmp, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    consoles: list[_Console] = []
    figures: dict[str, Any] = {}
    try:
        t_start = time.monotonic()
        sock: Path | None = None
        while sock is None or not sock.exists():
            if serve.poll() is not None or time.monotonic() - t_start > 60:
                raise RuntimeError(f"serve did not start: {serve.stderr.read() if serve.stderr else ''}")
            await asyncio.sleep(0.2)
            holder = read_holder(jdir) if (jdir / "engine.lock").exists() else None
            sock = Path(holder.socket) if holder is not None and holder.socket else None
        opener = RemoteEngine(sock)
        await opener.connect(30)
        opener.start()
        await asyncio.gather(*(opener.submit(PlaceOrder(sym, OrderSide.BUY, Decimal(10)))
                               for sym in opener.instruments))
        await wait_until(lambda: len(opener.positions()) == ui.N_POS, 30, "50 positions on the engine")
        await opener.close()
        child.set("tick", ui.N_POS * ui.TICK_HZ)
        child.set("fills", ui.FILLS_PER_S)
        await asyncio.sleep(2.0)

        async def measure(name: str) -> None:
            c0, p0, w0 = _cpu_s(serve.pid), time.perf_counter(), time.time()
            await asyncio.sleep(frozen_s if name == "frozen" else window)
            c1, p1, w1 = _cpu_s(serve.pid), time.perf_counter(), time.time()
            figures[name] = {"cpu_pct": (c1 - c0) / (p1 - p0) * 100, "p": (p0, p1), "w": (w0, w1)}

        await measure("none")
        consoles.append(_Console(cfg, sock, tmp / "console-0.json", measure=True))
        await asyncio.to_thread(consoles[0].ready)
        await asyncio.sleep(2.0)
        await measure("one")
        for i in (1, 2):
            consoles.append(_Console(cfg, sock, tmp / f"console-{i}.json", measure=False))
            await asyncio.to_thread(consoles[i].ready)
        await asyncio.sleep(2.0)
        await measure("three")
        consoles[2].proc.send_signal(signal.SIGSTOP)
        await measure("frozen")
        consoles[2].proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(2.0)
        child.set("tick", 0)
        child.set("fills", 0)
        shown = [c.quit() for c in consoles][0].get("shown", [])
        consoles.clear()
    finally:
        for c in consoles:
            c.quit()
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(60)
        except subprocess.TimeoutExpired:
            serve.kill()
        child.close()
    probe = json.loads(probe_out.read_text())
    entered = [(k, t) for k, t in probe["entered"]]
    lag = probe["lag"]
    p0, p1 = figures["one"]["p"]
    lat = _matched(entered, shown, p0, p1)
    for fig in figures.values():
        a, b = fig["p"]
        window_lag = [ms for t, ms in lag if a <= t < b]
        fig["lag_p99"] = ui.pct(window_lag, 0.99)
        fig["lag_max"] = max(window_lag, default=0.0)
        fig["fills_per_s"] = _fills_in(jdir, *fig["w"]) / (b - a)
    return {"p50": ui.pct(lat, 0.5), "p99": ui.pct(lat, 0.99), "n": len(lat), "windows": figures,
            "window_s": window, "frozen_s": frozen_s}


async def _run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="perpdesk-attach-a-") as a, \
            tempfile.TemporaryDirectory(prefix="perpdesk-attach-b-") as b:
        inproc = await _inprocess(quick, Path(a))
        att = await _attached(quick, Path(b))
    w = att["windows"]

    def r(v: float | None, n: int = 1) -> float | None:
        return None if v is None else round(v, n)

    diff = None if att["p99"] is None or inproc["p99"] is None else att["p99"] - inproc["p99"]
    ratio = w["three"]["cpu_pct"] / w["none"]["cpu_pct"] if w["none"]["cpu_pct"] else None
    load = os.getloadavg()[0]
    return {
        "attach_event_to_screen_ms_p99": r(att["p99"]),
        "attach_inproc_event_to_screen_ms_p99": r(inproc["p99"]),
        "attach_minus_inproc_ms_p99": r(diff),
        "attach_engine_cpu_ratio_3_vs_0": r(ratio, 2),
        "attach_frozen_loop_lag_ms_p99": r(w["frozen"]["lag_p99"], 2),
        "attach_unfrozen_loop_lag_ms_p99": r(w["three"]["lag_p99"], 2),
        "attach_frozen_fills_per_s": r(w["frozen"]["fills_per_s"], 2),
        "attach_unfrozen_fills_per_s": r(w["three"]["fills_per_s"], 2),
        "_attach_event_to_screen_ms_p50": r(att["p50"]),
        "_attach_inproc_event_to_screen_ms_p50": r(inproc["p50"]),
        "_attach_engine_cpu_pct_0": r(w["none"]["cpu_pct"]),
        "_attach_engine_cpu_pct_1": r(w["one"]["cpu_pct"]),
        "_attach_engine_cpu_pct_3": r(w["three"]["cpu_pct"]),
        "_detail": (f"price -> screen p99 attached {r(att['p99'])} ms vs in-process {r(inproc['p99'])} ms "
                    f"(difference {r(diff)} ms; p50 {r(att['p50'])} vs {r(inproc['p50'])}; samples "
                    f"{att['n']} / {inproc['n']} over {att['window_s']:g} s each); engine CPU "
                    f"{r(w['none']['cpu_pct'])} % with no console, {r(w['one']['cpu_pct'])} % with one, "
                    f"{r(w['three']['cpu_pct'])} % with three (x{r(ratio, 2)}); one of three SIGSTOPped for "
                    f"{att['frozen_s']:g} s{' (quick: 30 s in the full run)' if quick else ''}: loop lag p99 "
                    f"{r(w['frozen']['lag_p99'], 2)} ms (max {r(w['frozen']['lag_max'])}) vs "
                    f"{r(w['three']['lag_p99'], 2)} ms (max {r(w['three']['lag_max'])}) not stopped, fills "
                    f"{r(w['frozen']['fills_per_s'], 2)}/s vs {r(w['three']['fills_per_s'], 2)}/s; with no "
                    f"console lag p99 {r(w['none']['lag_p99'], 2)} ms; load average {load:.2f} "
                    f"on {os.cpu_count()} cores"),
    }


def bench_attach(quick: bool) -> dict[str, Any]:
    from bench.common import run_async

    return dict(run_async(_run(quick), 300 if quick else 600))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        sys.exit(_serve_child(sys.argv[2], sys.argv[3]))
    elif sys.argv[1:2] == ["--console"]:
        from bench.common import quiet_logs

        quiet_logs()
        asyncio.run(_console_child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1"))
    else:
        from bench.common import quiet_logs

        quiet_logs()
        print(bench_attach("--quick" in sys.argv))
