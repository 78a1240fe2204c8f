"""Issue 19 items 5 and 6: whatever a strategy does, the engine, the journal and the stop signals go on.

Real `perpdesk --headless` processes on the embedded simulator with the strategy given by
``[strategy] path``, where the defect was about the process (SystemExit or KeyboardInterrupt in a
callback ended it at once with exit 0 and no STOP line; a callback in time.sleep or an on_start
that never returns left it deaf to SIGTERM; SystemExit at import exited 0 without a word); the
engine stack on the simulator for the rest (a sleeping callback froze the engine's loop, a busy
one is stopped and its thread ends, CancelledError stopped the strategy silently, commands from a
stopped strategy are refused). Every way a strategy ends is a notice and the log line
``STRATEGY STOPPED <name>: <why>``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.events import Notice, PlaceOrder
from core.model import OrderSide
from core.service.runner import Stack, build_stack
from core.settings.config import load_settings
from tests.helpers.engine_helpers import BTC, BTC_ID, outside_client, wait_for
from tests.helpers.fault_helpers import LogCapture

pytestmark = pytest.mark.timeout(120)
PERPDESK = Path(sys.executable).with_name("perpdesk")

HEAD = "import asyncio, time\nfrom core.strategies.base import Strategy\n"


def strategy_file(tmp_path: Path, body: str, name: str = "mine") -> None:
    (tmp_path / "mine.py").write_text(HEAD + f"class Mine(Strategy):\n    name = {name!r}\n" + body,
                                      encoding="utf-8")


def config(tmp_path: Path, extra: str = "", sim: str = "") -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[exchange]\nvenue = "sim"\nsymbols = ["BTC/USDT:USDT"]\n'
                   f"[sim]\nseed = 3\nfunding_interval_s = 3600\n{sim}"
                   f'[journal]\ndir = "journal"\n[strategy]\npath = "mine.py"\n{extra}',
                   encoding="utf-8")
    return cfg


# ---------------------------------------------------------------- real processes


class Headless:
    """`perpdesk --headless` on the embedded simulator, its log file read as it grows."""

    def __init__(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}
        self.logs = tmp_path / "logs"
        self.proc = subprocess.Popen([str(PERPDESK), "--config", "config.toml", "--headless"],
                                     cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def log(self) -> str:
        return "".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in sorted(self.logs.glob("perpdesk_*.log")))

    def wait_log(self, needle: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"perpdesk ended (exit {self.proc.returncode}) before "
                                     f"{needle!r}: {self.proc.stderr.read() if self.proc.stderr else ''}"
                                     f"\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {needle!r} in the log:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def banner(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def term(self) -> float:
        """SIGTERM; seconds until the process ended."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        return time.monotonic() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.mark.parametrize("raised", ["SystemExit", "SystemExit(0)", "KeyboardInterrupt"])
def test_exit_exceptions_in_a_callback_stop_the_strategy_not_the_process(tmp_path: Path, raised: str) -> None:
    strategy_file(tmp_path, f"    tick_s = 0.2\n    async def on_tick(self, ctx):\n        raise {raised}\n",
                  name="quitter")
    config(tmp_path)
    proc = Headless(tmp_path)
    try:
        assert "perpdesk headless" in proc.banner()
        kind = raised.split("(")[0]
        proc.wait_log(f"STRATEGY STOPPED quitter: on_tick raised {kind}")
        time.sleep(1.0)
        assert proc.proc.poll() is None, "the process ended with the strategy"
        assert proc.term() < 5
        assert proc.proc.returncode == 0
        log = proc.log()
        assert "STOP (SIGTERM): 0 position(s) left open" in log
        assert log.count("STRATEGY STOPPED quitter") == 1  # ended once, said once
    finally:
        proc.kill()


@pytest.mark.parametrize("sleep", ["time.sleep(30)", "await asyncio.to_thread(time.sleep, 30)"])
def test_sigterm_is_honoured_while_a_callback_sleeps(tmp_path: Path, sleep: str) -> None:
    strategy_file(tmp_path, "    tick_s = 0.2\n    async def on_tick(self, ctx):\n"
                            f"        ctx.log('going to sleep')\n        {sleep}\n", name="sleeper")
    config(tmp_path, "max_callback_s = 60\n")
    proc = Headless(tmp_path)
    try:
        assert "perpdesk headless" in proc.banner()
        proc.wait_log("STRATEGY sleeper going to sleep")
        time.sleep(0.5)
        took = proc.term()
        assert proc.proc.returncode == 0 and took < 2.5, took
        log = proc.log()
        assert "STOP (SIGTERM)" in log
        assert "STRATEGY STOPPED sleeper: shutdown" in log
    finally:
        proc.kill()


def test_a_blocking_callback_is_named_and_stopped_the_process_goes_on(tmp_path: Path) -> None:
    strategy_file(tmp_path, "    tick_s = 0.2\n    async def on_tick(self, ctx):\n        time.sleep(30)\n",
                  name="sleeper")
    config(tmp_path, "max_callback_s = 1\n")
    proc = Headless(tmp_path)
    try:
        assert "perpdesk headless" in proc.banner()
        proc.wait_log("STRATEGY STOPPED sleeper: on_tick did not return within 1 s", timeout=10)
        assert proc.proc.poll() is None
        took = proc.term()
        assert proc.proc.returncode == 0 and took < 2.5, took
        assert "STOP (SIGTERM)" in proc.log()
    finally:
        proc.kill()


@pytest.mark.parametrize("forever", ["time.sleep(3600)", "await asyncio.Event().wait()"])
def test_an_on_start_that_never_returns_holds_neither_the_start_nor_sigterm(tmp_path: Path,
                                                                             forever: str) -> None:
    strategy_file(tmp_path, f"    async def on_start(self, ctx):\n        {forever}\n", name="stuck")
    config(tmp_path)
    proc = Headless(tmp_path)
    try:
        t0 = time.monotonic()
        assert "perpdesk headless" in proc.banner()  # the engine is up without the strategy
        assert time.monotonic() - t0 < 30
        proc.wait_log("ENGINE STARTED")
        took = proc.term()
        assert proc.proc.returncode == 0 and took < 2.5, took
        log = proc.log()
        assert "STOP (SIGTERM)" in log and "STRATEGY STOPPED stuck: shutdown" in log
    finally:
        proc.kill()


def test_system_exit_at_import_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("raise SystemExit('not today')\n", encoding="utf-8")
    config(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}
    done = subprocess.run([str(PERPDESK), "--config", "config.toml", "--headless"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    (line,) = done.stderr.strip().splitlines()
    assert line == "mine.py: cannot be loaded: SystemExit: not today"


# ---------------------------------------------------------------- the engine stack


def settings_for(tmp_path: Path, extra: str = "") -> object:
    s = load_settings(config(tmp_path, extra), ui_state=False)
    return replace(s, sim=replace(s.sim, speed=0))


def notices(stack: Stack) -> list[Notice]:
    got: list[Notice] = []
    stack.engine.subscribe(lambda e: got.append(e) if isinstance(e, Notice) else None)
    return got


async def test_a_sleeping_callback_does_not_freeze_the_engine_and_is_stopped(tmp_path: Path,
                                                                            logs: LogCapture) -> None:
    """time.sleep(5) in on_mark: an outside fill still reaches the engine at once; the watchdog
    stops the strategy after max_callback_s, naming it and the callback; a later command from it
    is refused; the engine trades on."""
    strategy_file(tmp_path, "    async def on_mark(self, ctx, mark):\n        time.sleep(5)\n", name="sleepy")
    async with build_stack(settings_for(tmp_path, "max_callback_s = 1\n")) as stack:  # type: ignore[arg-type]
        host = stack.strategy
        assert host is not None and host.running
        seen = notices(stack)
        stack.sim.set_price(BTC_ID, D("60100"))  # type: ignore[attr-defined]
        await wait_for(lambda: host._in_callback == "on_mark", what="the callback asleep")
        ext = outside_client(stack.sim)  # type: ignore[arg-type]
        try:
            await ext.load_markets()
            t0 = time.monotonic()
            await ext.create_order(BTC, "market", "buy", 1)
            await wait_for(lambda: len(stack.engine.positions()) == 1, timeout=10, what="outside fill")
            assert time.monotonic() - t0 < 2.0  # was the whole sleep (14 s seen) while a strategy slept
        finally:
            await ext.close()
        await wait_for(lambda: not host.running, timeout=5, what="watchdog stop")
        assert host.error is not None and host.error.startswith("on_mark did not return within 1 s")
        await wait_for(lambda: any(n.text.startswith("STRATEGY STOPPED sleepy: on_mark did not return")
                                   for n in seen), what="notice")
        assert logs.one("STRATEGY STOPPED sleepy: on_mark did not return within 1 s")
        res = await host.ctx.submit(PlaceOrder(BTC, OrderSide.BUY, D("1")))
        assert not res.ok and res.message == "strategy sleepy is stopped"
        assert (await stack.engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1")))).ok


async def test_a_busy_loop_is_stopped_and_its_thread_ends(tmp_path: Path, logs: LogCapture) -> None:
    strategy_file(tmp_path, "    async def on_mark(self, ctx, mark):\n        while True:\n            pass\n",
                  name="spinner")
    async with build_stack(settings_for(tmp_path, "max_callback_s = 0.5\n")) as stack:  # type: ignore[arg-type]
        host = stack.strategy
        assert host is not None
        stack.sim.set_price(BTC_ID, D("60100"))  # type: ignore[attr-defined]
        await wait_for(lambda: not host.running, timeout=5, what="watchdog stop")
        assert logs.one("STRATEGY STOPPED spinner: on_mark did not return within 0.5 s")
        thread = host._thread
        assert thread is not None
        await wait_for(lambda: not thread.is_alive(), timeout=3, what="the spinning thread to end")
        assert not any(t.name == "strategy-spinner" for t in threading.enumerate())


@pytest.mark.parametrize(("raise_", "shown"), [
    ("raise asyncio.CancelledError()", "on_mark raised CancelledError"),
    ("raise GeneratorExit('gone')", "on_mark raised GeneratorExit: gone"),
    ("raise SystemExit(3)", "on_mark raised SystemExit: 3"),
])
async def test_base_exceptions_from_a_callback_stop_the_strategy_with_a_notice(
        tmp_path: Path, logs: LogCapture, raise_: str, shown: str) -> None:
    strategy_file(tmp_path, f"    async def on_mark(self, ctx, mark):\n        {raise_}\n", name="odd")
    async with build_stack(settings_for(tmp_path)) as stack:  # type: ignore[arg-type]
        host = stack.strategy
        assert host is not None
        seen = notices(stack)
        stack.sim.set_price(BTC_ID, D("60100"))  # type: ignore[attr-defined]
        await wait_for(lambda: not host.running, what="strategy stopped")
        assert host.error == shown
        await wait_for(lambda: any(n.text == f"STRATEGY STOPPED odd: {shown}" for n in seen), what="notice")
        assert logs.one(f"STRATEGY STOPPED odd: {shown}")
        assert (await stack.engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1")))).ok


async def test_system_exit_in_a_task_the_strategy_started_stops_it_alone(tmp_path: Path,
                                                                        logs: LogCapture) -> None:
    strategy_file(tmp_path, "    async def on_start(self, ctx):\n"
                            "        async def later():\n            await asyncio.sleep(0.1)\n"
                            "            raise SystemExit('bye')\n"
                            "        self.task = asyncio.get_running_loop().create_task(later())\n",
                  name="tasker")
    async with build_stack(settings_for(tmp_path)) as stack:  # type: ignore[arg-type]
        host = stack.strategy
        assert host is not None
        await wait_for(lambda: not host.running, what="strategy stopped")
        assert logs.one("STRATEGY STOPPED tasker: its event loop ended: SystemExit: bye")
        assert (await stack.engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("1")))).ok


async def test_strategy_commands_from_its_thread_go_through_the_engine(tmp_path: Path) -> None:
    """The strategy's own thread sends an order: it runs on the engine's loop (the fill is journaled
    with origin strategy) and the strategy reads the position it opened through ctx."""
    strategy_file(tmp_path, "    async def on_mark(self, ctx, mark):\n"
                            "        if getattr(self, 'done', False):\n            return\n"
                            "        self.done = True\n"
                            "        from core.events import PlaceOrder\n"
                            "        from core.model import OrderSide\n"
                            "        from decimal import Decimal\n"
                            "        self.thread = __import__('threading').current_thread().name\n"
                            "        self.result = await ctx.submit(PlaceOrder(mark.symbol, OrderSide.BUY, Decimal('2')))\n"
                            "    async def on_fill(self, ctx, fill):\n"
                            "        self.seen = ctx.position(fill.symbol)\n", name="trader")
    async with build_stack(settings_for(tmp_path)) as stack:  # type: ignore[arg-type]
        host = stack.strategy
        assert host is not None
        stack.sim.set_price(BTC_ID, D("60100"))  # type: ignore[attr-defined]
        s = host.strategy
        await wait_for(lambda: hasattr(s, "seen"), what="the strategy's order")
        assert s.thread == "strategy-trader" and s.result.ok  # type: ignore[attr-defined]
        assert s.seen is not None and s.seen.contracts == D("2")  # type: ignore[attr-defined]
        await stack.journal.flush()
        from core.journal import read_fills

        assert [f["origin"] for f in read_fills(stack.journal.directory)] == ["strategy"]
        assert host.running


# ---------------------------------------------------------------- the console in a real terminal


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize("callback", ["    tick_s = 0.2\n    async def on_tick(self, ctx):\n",
                                      "    async def on_start(self, ctx):\n"])
def test_the_console_stays_live_while_a_callback_sleeps(tmp_path: Path, callback: str) -> None:
    """A strategy asleep in time.sleep (in on_tick, or in an on_start that never returns): the
    console is connected, an outside fill shows on screen within a couple of seconds (it took
    14 s; with on_start the console stayed at "connecting") and q quits at once (it was ignored
    for 45 s)."""
    from tests.helpers.tmux import Tmux, free_port, wait_port
    from tests.helpers.tmux import outside_client as sync_client

    port = free_port()
    strategy_file(tmp_path, callback + "        ctx.log('going to sleep')\n        time.sleep(60)\n",
                  name="sleeper")
    config(tmp_path, "max_callback_s = 120\n", sim=f"port = {port}\n")
    exit_file = tmp_path / "exit.txt"
    tmux = Tmux(f"{PERPDESK} --config config.toml; echo $? > {exit_file}", tmp_path)
    try:
        wait_port(port)
        deadline = time.monotonic() + 30
        logs = tmp_path / "logs"
        while "STRATEGY sleeper going to sleep" not in "".join(
                p.read_text() for p in logs.glob("perpdesk_*.log")):
            assert time.monotonic() < deadline, tmux.screen()
            time.sleep(0.1)
        ex = sync_client(port)
        ex.load_markets()
        t0 = time.monotonic()
        ex.create_order("BTC/USDT:USDT", "market", "buy", 30)
        tmux.wait_screen(lambda s: "0.3" in s and "long" in s.lower(), "the outside fill on screen", timeout=10)
        assert time.monotonic() - t0 < 3
        tmux.keys("q")
        t0 = time.monotonic()
        while not exit_file.exists():
            assert time.monotonic() - t0 < 10, f"q ignored; screen:\n{tmux.screen()}"
            time.sleep(0.1)
        assert time.monotonic() - t0 < 4
        assert exit_file.read_text().strip() == "0" and "Traceback" not in tmux.screen()
    finally:
        tmux.kill()


async def test_time_waiting_for_the_engine_does_not_count_against_a_callback(tmp_path: Path) -> None:
    """max_callback_s bounds the strategy's own time: an order the exchange takes 2.5 s to answer
    (a REST timeout fault on the simulator) does not get a 1 s strategy stopped."""
    strategy_file(tmp_path, "    async def on_mark(self, ctx, mark):\n"
                            "        if hasattr(self, 'took'):\n            return\n"
                            "        from core.events import PlaceOrder\n"
                            "        from core.model import OrderSide\n"
                            "        from decimal import Decimal\n"
                            "        t0 = time.monotonic()\n"
                            "        self.result = await ctx.submit(PlaceOrder(mark.symbol, OrderSide.BUY, Decimal('1')))\n"
                            "        self.took = time.monotonic() - t0\n", name="patient")
    async with build_stack(settings_for(tmp_path, "max_callback_s = 1\n")) as stack:  # type: ignore[arg-type]
        host = stack.strategy
        assert host is not None
        stack.sim.faults.append({"kind": "timeout", "count": 1, "delay": 2.5})  # type: ignore[attr-defined]
        stack.sim.set_price(BTC_ID, D("60100"))  # type: ignore[attr-defined]
        s = host.strategy
        await wait_for(lambda: hasattr(s, "took"), timeout=20, what="the order's answer")
        assert s.took > 2.0, s.took  # type: ignore[attr-defined]
        assert host.running and host.error is None


@pytest.mark.parametrize("raised", ["SystemExit", "KeyboardInterrupt", "SystemExit(4)"])
def test_exit_exceptions_at_import_or_init_are_one_strategy_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  raised: str) -> None:
    from core.strategies import StrategyError, load_class, load_strategy

    kind = raised.split("(")[0]
    (tmp_path / "quits_at_import.py").write_text(f"raise {raised}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(StrategyError) as info:
        load_class(module="quits_at_import:X")
    assert info.value.message.startswith(f'[strategy] module "quits_at_import": cannot be loaded: {kind}')
    strategy_file(tmp_path, f"    def __init__(self, params):\n        raise {raised}\n")
    settings = load_settings(config(tmp_path), ui_state=False)
    with pytest.raises(StrategyError) as info:
        load_strategy(settings.strategy)
    assert info.value.message.startswith(f"mine.py: Mine(params) failed: {kind}")
