"""The console under load: event->screen, key->screen, CPU, loop lag and terminal bytes.

Set-up (everything real except the terminal):
* A simulator child process (``python -m bench.ui --sim``) with 50 swaps X00..X49. On command it
  moves every mark at 10 Hz (500 mark-price pushes/s), fills a 1-contract market order on a random
  instrument 5 times a second (alternating add/reduce, so fills, closes and position pushes flow),
  and for the key test adds a burst of 2,000 mark-price pushes per second on top.
* This process runs the product stack of the committed config (core.service.runner.build_stack, pointed at
  the child, 50 symbols, no strategy) and ``console.app.build_app(engine, settings)`` in the SAME
  loop, at 160x50, with a driver that is Textual's headless driver except that it reports a real
  terminal (so the app renders every frame to an ANSI string exactly as on a TTY, truecolor) and
  counts the bytes instead of writing them. 50 positions are opened through ``engine.submit``.

Probes (bench-side wrappers; nothing in the product is changed):
* a push enters: ``OkxStream._dispatch`` (right after the frame's orjson decode) stamps each
  mark-price item (symbol, mark);
* the changed line is rendered: the positions pane's ``render_line`` notes (symbol, mark) of each
  line it renders; the next driver write (the frame that carries it) closes the sample;
* ``c`` -> confirmation: a Key event is posted to the app as the driver's input thread does; the
  sample closes at the first driver write containing the modal's title;
* realistic account (``realistic_ui_cpu_pct``): after the key test, the console still up, the
  other 45 positions closed: 5 positions open, their marks at 5 Hz each (OKX's mark-price rate),
  no fills (the 45 are opened again after it);
* loop lag: a task sleeping 5 ms, lateness of each wake-up; CPU: process_time / wall time; then
  the same load with the console closed (``engine_only_cpu_pct``: stream, engine and journal;
  ``console_cpu_pts`` is the difference). Each CPU window is cut in ``ROUNDS`` parts with the host
  reference (bench.common.ref_loop_ms) between them, probes off: ``*_x_ref`` and the spreads.
* 80x24 over a slow link (after the 160x50 windows): the console again, at 80x24, written by
  Textual's own writer thread into a real pty whose far end reads as fast as it can
  (``screen_kb_per_s_80x24``), then only 20 KB/s after 10 s for the link's buffers to fill
  (``slow_link_frames_dropped``: feed draws skipped while frames waited, console/terminal.py;
  ``slow_link_loop_lag_ms_p99``). PERPDESK_BENCH_WRITER_FIX_OFF=1 runs it without that skipping,
to compare (A/B).
Marks replaced before the next screen flush (last-write-wins, by design) or on rows outside the
visible part of the pane are never drawn and are counted as "coalesced/offscreen".
"""
from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import wait_until
from core.sim.market import InstrumentSpec

REPO = Path(__file__).resolve().parent.parent
N_POS = 50
TICK_HZ = 10
FILLS_PER_S = 5
BURST_PER_S = 2000
KEY_MARKER = "Close position?"
ROUNDS = 4  # steady windows, each followed by the host reference
# A realistic account: 5 positions open (the other 45 closed for that window), their marks at
# OKX's mark-price rate (a push every 200 ms at most while the mark changes), no fills.
REALISTIC_POS = 5
REALISTIC_HZ = 5
SLOW_LINK_BYTES_PER_S = 20 * 1024
WRITER_FIX_OFF = bool(os.environ.get("PERPDESK_BENCH_WRITER_FIX_OFF"))  # A/B of console/terminal.py


def specs() -> dict[str, InstrumentSpec]:
    out = {}
    for i in range(N_POS):
        inst = f"X{i:02d}-USDT-SWAP"
        out[inst] = InstrumentSpec(inst, f"X{i:02d}", Decimal("1"), Decimal("1"), Decimal("1"), Decimal("0.01"),
                                   20, Decimal("0.01"), Decimal(100 + 10 * i), 0.5)
    return out


def symbol_of(inst: str) -> str:
    return inst.replace("-USDT-SWAP", "/USDT:USDT")


# ------------------------------------------------------------------ simulator child


async def _sim_child() -> None:
    from bench.common import quiet_logs
    from core.sim.server import SimServer

    quiet_logs()
    srv = SimServer(speed=0, seed=3, instruments=specs(), start_cash=Decimal("100000000"))
    await srv.start()
    insts = list(specs())
    rng = random.Random(3)
    mode = {"tick": 0.0, "fills": 0.0, "burst": 0.0, "few": 0.0}
    sides: dict[str, str] = {}

    def move(inst: str) -> None:
        px = srv.market.prices[inst]
        step = Decimal(str(round(rng.uniform(0.0002, 0.002), 6)))
        srv.set_price(inst, px * (1 + step if rng.random() < 0.5 else 1 - step))

    async def paced(key: str, act: Any) -> None:  # calls act() mode[key] times a second, drift-free
        done, t0 = 0, time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            rate = mode[key]
            if not rate:
                done, t0 = 0, time.perf_counter()
                continue
            due = int((time.perf_counter() - t0) * rate)
            for _ in range(min(due - done, int(rate))):
                act()
            done = due

    def round_robin(count: int) -> Any:  # moves the first ``count`` instruments' marks in turn
        counter = iter(range(10**9))
        return lambda: move(insts[next(counter) % count])

    def fill() -> None:
        inst = rng.choice(insts)
        side = sides[inst] = "sell" if sides.get(inst, "sell") == "buy" else "buy"
        srv.exchange.place_order(srv.account, {"instId": inst, "tdMode": "cross", "side": side,
                                               "ordType": "market", "sz": "1"})
        srv.flush()

    tick_one, burst_one = round_robin(len(insts)), round_robin(len(insts))
    few_one = round_robin(REALISTIC_POS)  # the realistic account: only these marks move
    tasks = [asyncio.create_task(paced("few", few_one)),
             asyncio.create_task(paced("tick", tick_one)), asyncio.create_task(paced("fills", fill)),
             asyncio.create_task(paced("burst", burst_one))]
    print(f"READY {srv.port}", flush=True)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "quit":
            break
        mode[line[0]] = float(line[1])
    for t in tasks:
        t.cancel()
    await srv.stop()


class SimChild:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.ui", "--sim"], cwd=REPO, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("READY"):
            self.proc.kill()
            raise RuntimeError(f"simulator child did not start: {line!r}")
        self.port = int(line.split()[1])

    def set(self, what: str, rate: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{what} {rate}\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        try:
            self.set("quit", 0)
            self.proc.wait(10)
        except Exception:  # noqa: BLE001
            self.proc.kill()


# ------------------------------------------------------------------ probes


class Probe:
    def __init__(self) -> None:
        self.on = False
        self.entered: dict[tuple[str, Decimal], float] = {}
        self.rendered: list[tuple[str, Decimal]] = []
        self.latencies: list[float] = []
        self.latencies_key: list[float] = []
        self.bytes = 0
        self.writes = 0
        self.key_watch: float | None = None
        self.key_seen = asyncio.Event()
        self.rows_seen: set[str] = set()

    def reset(self) -> None:
        self.entered.clear()
        self.rendered.clear()
        self.latencies.clear()
        self.rows_seen.clear()
        self.bytes = self.writes = 0

    def write(self, data: str) -> None:
        now = time.perf_counter()
        self.bytes += len(data.encode())
        self.writes += 1
        if self.rendered:
            for key in self.rendered:
                t = self.entered.pop(key, None)
                if t is not None:
                    self.latencies.append((now - t) * 1000)
                    self.rows_seen.add(key[0])
            self.rendered.clear()
        if self.key_watch is not None and KEY_MARKER in data:
            self.latencies_key.append((now - self.key_watch) * 1000)
            self.key_watch = None
            self.key_seen.set()


PROBE: Probe | None = None


def install_probes(pane: Any) -> Any:
    """Wrap the stream client's dispatch (class-wide) and the pane's render_line; returns the undo."""
    from core.venue.okx_stream import OkxStream

    original = OkxStream._dispatch

    def dispatch(self: Any, msg: dict[str, Any]) -> None:
        p = PROBE
        if p is not None and p.on and msg.get("arg", {}).get("channel") == "mark-price":
            now = time.perf_counter()
            for item in msg["data"]:
                p.entered[(symbol_of(item["instId"]), Decimal(item["markPx"]))] = now
        original(self, msg)

    OkxStream._dispatch = dispatch  # type: ignore[method-assign]
    render_line = pane.render_line

    def probed_render_line(y: int) -> Any:
        strip = render_line(y)
        p = PROBE
        if p is not None and p.on and y > 0:
            index = round(pane.scroll_y) + y - 1
            if index < len(pane._order):
                snap = pane.snapshots.get(pane._order[index])
                if snap is not None:
                    p.rendered.append((snap.symbol, snap.mark_price))
        return strip

    pane.render_line = probed_render_line

    def undo() -> None:
        OkxStream._dispatch = original  # type: ignore[method-assign]

    return undo


def driver_class() -> type:
    from textual.drivers.headless_driver import HeadlessDriver

    class MeasuringDriver(HeadlessDriver):
        """Headless input, but the app believes it has a terminal: frames are rendered and counted."""

        @property
        def is_headless(self) -> bool:
            return False

        def write(self, data: str) -> None:
            if PROBE is not None:
                PROBE.write(data)

        def flush(self) -> None:
            pass

    return MeasuringDriver


class PtyReader:
    """The far end of a pseudo-terminal, reading at most ``rate`` bytes/s (None: as fast as it can).

    Why a real pty: a slow SSH link is a terminal whose reads lag; the kernel's pty buffer then
    fills, Textual's writer thread blocks on it, and what matters is whether the loop notices."""

    def __init__(self, rate: float | None) -> None:
        import pty
        import threading
        import tty

        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)  # no newline translation: bytes as a terminal emulator gets them
        self.rate, self.bytes, self._stop = rate, 0, threading.Event()
        self.file = os.fdopen(self.slave, "w", encoding="utf-8", errors="replace", closefd=False)
        self._thread = threading.Thread(target=self._read, name="slow-terminal", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        import select

        t0 = time.perf_counter()
        while not self._stop.is_set():
            if self.rate is not None:  # read only what the link would have carried by now
                allowed = int((time.perf_counter() - t0) * self.rate) - self.bytes
                if allowed <= 0:
                    time.sleep(0.01)
                    continue
            else:
                allowed = 1 << 16
            if select.select([self.master], [], [], 0.05)[0]:
                try:
                    self.bytes += len(os.read(self.master, min(allowed, 1 << 16)))
                except OSError:
                    return

    def close(self) -> None:
        """Drain at full speed first: a writer still blocked on the pty would block the close."""
        import contextlib

        self.rate = None
        time.sleep(0.3)
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)  # a write still pending now fails instead of waiting forever
        with contextlib.suppress(OSError):
            self.file.close()
        os.close(self.slave)


def _pty_driver_class(reader: PtyReader) -> type:
    """Textual's own writer thread over a real pty (headless input), as LinuxDriver writes."""
    from textual.drivers._writer_thread import WriterThread

    base = driver_class()

    class PtyDriver(base):  # type: ignore[misc,valid-type]
        def start_application_mode(self) -> None:
            self._writer_thread = WriterThread(reader.file)  # the attribute name LinuxDriver uses
            self._writer_thread.start()
            super().start_application_mode()

        def write(self, data: str) -> None:
            super().write(data)
            self._writer_thread.write(data)

        def stop_application_mode(self) -> None:
            writer, self._writer_thread = self._writer_thread, None
            if writer is not None:
                writer._queue.put(None)  # stop without waiting for a link that may never drain
                writer.join(1.0)

    return PtyDriver


async def _slow_link(engine: Any, s: Any, child: SimChild, rate: float | None, seconds: float,
                     warm: float = 1.0) -> dict[str, Any]:
    """The console at 80x24 on a pty read at ``rate`` bytes/s, under the steady load.

    ``warm`` seconds pass before the window: with a slow reader, the kernel's pty buffer and
    Textual's 30-write queue take seconds to fill, and the stall (if any) starts only then."""
    from console.app import build_app

    global PROBE
    reader = PtyReader(rate)
    PROBE = probe = Probe()
    lag: list[float] = []
    try:
        app = build_app(engine, s)
        app.driver_class = _pty_driver_class(reader)
        if WRITER_FIX_OFF:  # A/B: Textual's blocking writer queue, every draw made
            import console.app

            class Off:
                dropped = 0

                def __init__(self, driver: Any) -> None:
                    pass

                def behind(self) -> bool:
                    return False

            console.app.WriterWatch = Off  # type: ignore[misc,assignment]
        run = asyncio.create_task(app.run_async(size=(80, 24), mouse=False))
        await wait_until(lambda: app.is_running and app.screen.query("#positions"), 20, "80x24 app running")
        child.set("tick", N_POS * TICK_HZ)
        child.set("fills", FILLS_PER_S)
        await asyncio.sleep(warm)
        lagger = asyncio.create_task(_lag_probe(lag))
        b0, w0, d0, t0 = reader.bytes, probe.writes, app.frames_dropped, time.perf_counter()
        await asyncio.sleep(seconds)
        b1, w1, d1, t1 = reader.bytes, probe.writes, app.frames_dropped, time.perf_counter()
        lagger.cancel()
        child.set("tick", 0)
        child.set("fills", 0)
        app.exit()
        await asyncio.wait_for(run, 15)
    finally:
        PROBE = None
        reader.close()
    return {"kb_per_s": round((b1 - b0) / 1024 / (t1 - t0), 1), "frames": w1 - w0, "dropped": d1 - d0,
            "lag_p99": round(pct(lag, 0.99) or 0.0, 2), "lag_max": round(max(lag, default=0.0), 1)}


async def _engine_only(child: SimChild, seconds: float, rounds: int = 4) -> tuple[list[float], list[float]]:
    """CPU % of this process under the same load with the console closed: the stream, the
    engine and the journal alone (what a headless run costs), so the console's share of
    ``ui_cpu_pct`` is the difference. ``rounds`` windows, each followed by the host reference
    (the loop is blocked meanwhile, outside the windows): (CPU % per window, reference ms each)."""
    from bench.common import ref_loop_ms

    child.set("tick", N_POS * TICK_HZ)
    child.set("fills", FILLS_PER_S)
    await asyncio.sleep(1.0)
    cpus: list[float] = []
    refs: list[float] = []
    for _ in range(rounds):
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds / rounds)
        cpu1, t1 = time.process_time(), time.perf_counter()
        cpus.append((cpu1 - cpu0) / (t1 - t0) * 100)
        refs.append(ref_loop_ms())
        await asyncio.sleep(0.05)  # the backlog the reference held up is handled outside the windows
    child.set("tick", 0)
    child.set("fills", 0)
    await asyncio.sleep(0.5)
    return cpus, refs


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


PROFILE_DIR = os.environ.get("PERPDESK_BENCH_PROFILE")  # a folder: cProfile each window into it


def _profiler() -> Any:
    if not PROFILE_DIR:
        return None
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    return prof


def _dump(prof: Any, name: str) -> None:
    if prof is not None:
        prof.disable()
        Path(PROFILE_DIR).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
        prof.dump_stats(str(Path(PROFILE_DIR) / f"{name}.pstats"))  # type: ignore[arg-type]


async def _lag_probe(out: list[float], gate: dict[str, bool] | None = None) -> None:
    while True:
        t = time.perf_counter()
        await asyncio.sleep(0.005)
        if gate is None or gate["on"]:
            out.append((time.perf_counter() - t - 0.005) * 1000)


async def _reference(probe: Probe, gate: dict[str, bool]) -> float:
    """The host reference between two steady windows, with the probes off: the ~50 ms it blocks
    the loop (and the frame it delays) is in no latency, lag or byte sample."""
    from bench.common import ref_loop_ms

    probe.on = gate["on"] = False
    await asyncio.sleep(0.05)
    ms = ref_loop_ms()
    await asyncio.sleep(0.1)  # the frame and the marks the reference held up go out unsampled
    probe.entered.clear()
    probe.rendered.clear()
    probe.on = gate["on"] = True
    return ms


async def _set_open(engine: Any, pane: Any, symbols: list[str], close: bool) -> None:
    """Close ``symbols``' positions (``close``) or open them again (10 contracts each), and wait
    until the positions pane shows it."""
    from core.events import ClosePosition, PlaceOrder
    from core.model import OrderSide

    commands = [ClosePosition(sym) if close else PlaceOrder(sym, OrderSide.BUY, Decimal(10)) for sym in symbols]
    results = await asyncio.gather(*(engine.submit(c) for c in commands))
    bad = [r.message for r in results if not r.ok]
    if bad:
        raise RuntimeError(f"{'closing' if close else 'opening'} positions failed: {bad[:3]}")
    want = N_POS - len(symbols) if close else N_POS
    await wait_until(lambda: len(pane.snapshots) == want, 30, f"{want} positions on screen")


async def _run(quick: bool, child: SimChild, tmp: Path) -> dict[str, Any]:
    global PROBE
    from textual import events

    from console.app import build_app
    from console.screens.confirm import ConfirmScreen
    from core.events import PlaceOrder
    from core.model import OrderSide
    from core.service.runner import build_stack
    from core.settings.config import load_settings

    os.environ.setdefault("COLORTERM", "truecolor")
    os.environ["TERM"] = "xterm-256color"
    s = load_settings(REPO / "config.toml", ui_state=False)
    s = replace(s, exchange=replace(s.exchange, url=f"http://127.0.0.1:{child.port}",
                                    symbols=tuple(symbol_of(i) for i in specs())),
                journal=replace(s.journal, dir=tmp / "journal"), logs=replace(s.logs, dir=tmp / "logs"),
                strategy=replace(s.strategy, name="none"))
    steady_s, keys = (8.0, 25) if quick else (20.0, 60)
    PROBE = probe = Probe()
    lag: list[float] = []
    async with build_stack(s) as stack:
        engine = stack.engine
        app = build_app(engine, s, freeze_heap=True)  # as run_app does
        app.driver_class = driver_class()
        run = asyncio.create_task(app.run_async(size=(160, 50), mouse=False))
        await wait_until(lambda: app.is_running and app.screen.query("#positions"), 20, "app running")
        results = await asyncio.gather(*(engine.submit(PlaceOrder(sym, OrderSide.BUY, Decimal(10)))
                                         for sym in engine.instruments))
        bad = [r.message for r in results if not r.ok]
        if bad:
            raise RuntimeError(f"opening positions failed: {bad[:3]}")
        pane = app.positions
        await wait_until(lambda: len(pane.snapshots) == N_POS, 30, f"{N_POS} positions on screen")
        undo_probes = install_probes(pane)
        gate = {"on": True}
        lagger = asyncio.create_task(_lag_probe(lag, gate))
        child.set("tick", N_POS * TICK_HZ)
        child.set("fills", FILLS_PER_S)
        probe.on = True
        await asyncio.sleep(2.0)  # warm-up
        probe.reset()
        lag.clear()
        fills0 = len(getattr(app.query_one("#fills"), "_rows", {}))
        prof = _profiler()
        # the steady window in ROUNDS parts, the host reference measured after each (probes off)
        ui_cpus: list[float] = []
        ui_refs: list[float] = []
        steady_cpu = steady_wall = 0.0
        steady_bytes = steady_writes = 0
        for _ in range(ROUNDS):
            b0, w0 = probe.bytes, probe.writes
            cpu0, t0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(steady_s / ROUNDS)
            cpu1, t1 = time.process_time(), time.perf_counter()
            steady_bytes += probe.bytes - b0
            steady_writes += probe.writes - w0
            steady_cpu += cpu1 - cpu0
            steady_wall += t1 - t0
            ui_cpus.append((cpu1 - cpu0) / (t1 - t0) * 100)
            ui_refs.append(await _reference(probe, gate))
        _dump(prof, "ui_steady")
        steady = {"lat": list(probe.latencies), "lag": list(lag), "bytes": steady_bytes, "writes": steady_writes,
                  "rows": len(probe.rows_seen), "left": len(probe.entered)}
        # key -> screen under the same load plus a burst
        child.set("burst", BURST_PER_S)
        await asyncio.sleep(1.0)
        lag.clear()
        misses, stuck = 0, False
        prof = _profiler()
        cpu2, t2 = time.process_time(), time.perf_counter()
        for _ in range(keys):
            if stuck:
                break
            probe.key_seen.clear()
            probe.key_watch = time.perf_counter()
            app.post_message(events.Key("c", "c"))
            try:
                await asyncio.wait_for(probe.key_seen.wait(), 5)
            except TimeoutError:
                misses += 1
                probe.key_watch = None
            await asyncio.sleep(0.05)
            for _ in range(300):  # answer n once the modal is up; wait until it is gone
                if isinstance(app.screen, ConfirmScreen):
                    app.post_message(events.Key("n", "n"))
                    try:
                        await wait_until(lambda: not isinstance(app.screen, ConfirmScreen), 15, "dismissed")
                    except TimeoutError:
                        stuck = True  # the app cannot keep up at all: stop pressing, report it
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1 + random.random() * 0.1)
        cpu3, t3 = time.process_time(), time.perf_counter()
        _dump(prof, "ui_burst")
        burst_lag = list(lag)
        child.set("burst", 0)
        child.set("tick", 0)
        child.set("fills", 0)
        # the realistic account, console up: only 5 positions open (the other 45 closed first, so
        # the panes and the engine carry what such an account carries), their marks at 5 Hz each,
        # host reference between; the 45 are opened again afterwards for the windows below
        await asyncio.sleep(1.0)
        others = [symbol_of(i) for i in list(specs())[REALISTIC_POS:]]
        await _set_open(engine, pane, others, close=True)
        child.set("few", REALISTIC_POS * REALISTIC_HZ)
        await asyncio.sleep(1.0)
        real_cpus: list[float] = []
        real_refs: list[float] = []
        prof = _profiler()
        for _ in range(ROUNDS):
            cpu4, t4 = time.process_time(), time.perf_counter()
            await asyncio.sleep(steady_s / ROUNDS / 2)
            cpu5, t5 = time.process_time(), time.perf_counter()
            real_cpus.append((cpu5 - cpu4) / (t5 - t4) * 100)
            real_refs.append(await _reference(probe, gate))
        _dump(prof, "ui_realistic")
        child.set("few", 0)
        real_open = len(pane.snapshots)
        await _set_open(engine, pane, others, close=False)
        probe.on = False
        undo_probes()
        lagger.cancel()
        fills_pane = len(getattr(app.query_one("#fills"), "_rows", {}))
        app.exit()
        await asyncio.wait_for(run, 15)
        eo_cpus, eo_refs = await _engine_only(child, steady_s / 2)
        link_s = 5.0 if quick else 10.0
        fast = await _slow_link(engine, s, child, None, link_s)
        slow = await _slow_link(engine, s, child, SLOW_LINK_BYTES_PER_S, link_s, warm=10.0)
    from bench.common import median, per_ref, spread

    lat, key_lat = steady["lat"], probe.latencies_key
    engine_only = round(sum(eo_cpus) / len(eo_cpus), 1)
    ui_cpu = round(steady_cpu / steady_wall * 100, 1)
    # CPU figures in reference units: CPU seconds a second / reference seconds = reference loops
    # of work a second (what the same load costs on any host); per round, then median and spread
    ui_x, ui_x_spread = per_ref([c / 100 for c in ui_cpus], [r / 1000 for r in ui_refs])
    eo_x, eo_x_spread = per_ref([c / 100 for c in eo_cpus], [r / 1000 for r in eo_refs])
    real_x, real_x_spread = per_ref([c / 100 for c in real_cpus], [r / 1000 for r in real_refs], 3)
    ref_ms = median(ui_refs + eo_refs + real_refs)
    e2s_p99 = round(pct(lat, 0.99), 1) if lat else None
    key_p99 = round(pct(key_lat, 0.99), 1) if key_lat else None
    return {
        "event_to_screen_ms_p50": round(pct(lat, 0.5), 1) if lat else None,
        "event_to_screen_ms_p99": e2s_p99,
        "key_to_screen_ms_p99": key_p99,
        # the session's first `c` builds the dialog (compose, its widgets' CSS, first layout at
        # the screen's size): its own figure, so the p99 above can be read
        "key_to_screen_first_ms": round(key_lat[0], 1) if key_lat else None,
        "ui_cpu_pct": ui_cpu,
        "engine_only_cpu_pct": engine_only,
        "console_cpu_pts": round(ui_cpu - engine_only, 1),
        "ui_cpu_x_ref": ui_x,
        "engine_only_cpu_x_ref": eo_x,
        "console_cpu_x_ref": round(ui_x - eo_x, 2),
        "event_to_screen_p99_x_ref": round(e2s_p99 / ref_ms, 2) if e2s_p99 is not None else None,
        "key_to_screen_p99_x_ref": round(key_p99 / ref_ms, 2) if key_p99 is not None else None,
        "loop_lag_ms_p99": round(pct(steady["lag"], 0.99), 2),
        "screen_kb_per_s": round(steady["bytes"] / 1024 / steady_wall, 1),
        "screen_kb_per_s_80x24": fast["kb_per_s"],
        "slow_link_frames_dropped": slow["dropped"],
        "slow_link_loop_lag_ms_p99": slow["lag_p99"],
        "realistic_ui_cpu_pct": round(median(real_cpus), 2),
        "realistic_ui_cpu_x_ref": real_x,
        "refs": ui_refs + eo_refs + real_refs,
        "spread": {"ui_cpu_pct": spread(ui_cpus, 1), "engine_only_cpu_pct": spread(eo_cpus, 1),
                   "ui_cpu_x_ref": ui_x_spread, "engine_only_cpu_x_ref": eo_x_spread,
                   "realistic_ui_cpu_pct": spread(real_cpus), "realistic_ui_cpu_x_ref": real_x_spread},
        "_slow_link_kb_per_s": slow["kb_per_s"],
        "_slow_link_loop_lag_ms_max": slow["lag_max"],
        "_key_to_screen_ms_p50": round(pct(key_lat, 0.5), 1) if key_lat else None,
        "_key_to_screen_ms_p99_after_first": round(pct(key_lat[1:], 0.99), 1) if key_lat[1:] else None,
        "_burst_loop_lag_ms_p99": round(pct(burst_lag, 0.99), 2) if burst_lag else None,
        "_burst_cpu_pct": round((cpu3 - cpu2) / (t3 - t2) * 100, 1),
        "_detail": (f"160x50, {N_POS} positions, marks {TICK_HZ} Hz each ({N_POS * TICK_HZ}/s), {FILLS_PER_S} fills/s; "
                    f"steady {steady_wall:.1f} s in {ROUNDS} windows (CPU % {[round(c, 1) for c in ui_cpus]}, host "
                    f"reference {[round(r, 1) for r in ui_refs]} ms): {len(lat)} event->screen samples over {steady['rows']} visible rows "
                    f"({steady['left']} marks coalesced/offscreen), {steady['writes']} frames, "
                    f"{steady['bytes'] / 1024:.0f} KB; loop lag p50 {pct(steady['lag'], 0.5):.2f} ms "
                    f"max {max(steady['lag']):.1f} ms; keys: {len(key_lat)} presses of c under +{BURST_PER_S} msg/s "
                    f"({misses} without a confirmation within 5 s{'; n not answered within 15 s, stopped' if stuck else ''}), key->screen max {max(key_lat, default=0):.1f} ms; "
                    f"fills pane rows {fills0}->{fills_pane}; refresh_hz {s.ui.refresh_hz:g}; "
                    f"realistic account ({real_open} positions open, marks at {REALISTIC_HZ} Hz each, no fills, "
                    f"console up): CPU % {[round(c, 2) for c in real_cpus]}; "
                    f"same load with the console closed: {engine_only} % CPU ({[round(c, 1) for c in eo_cpus]}, host "
                    f"reference {[round(r, 1) for r in eo_refs]} ms); "
                    f"80x24 for {link_s:g} s each, fast terminal: {fast}; terminal read at "
                    f"{SLOW_LINK_BYTES_PER_S // 1024} KB/s: {slow}"
                    f"{' (console/terminal.py fix OFF)' if WRITER_FIX_OFF else ''}"),
    }


def bench_ui(quick: bool) -> dict[str, Any]:
    from bench.common import run_async

    child = SimChild()
    try:
        with tempfile.TemporaryDirectory(prefix="perpdesk-ui-") as tmp:
            return run_async(_run(quick, child, Path(tmp)), 150 if quick else 300)
    finally:
        child.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["--sim"]:
        asyncio.run(_sim_child())
    else:
        from bench.common import quiet_logs

        quiet_logs()
        print(bench_ui("--quick" in sys.argv))
