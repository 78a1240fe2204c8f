"""Issue 22's acceptance run, in real terminals: `perpdesk serve` in the background, `perpdesk
attach` in tmux (the real console on the real socket).

Panes live; `c` then `y` closes a position and the close row is in the journal once; `q` quits
the console and the strategy keeps trading; a second attach shows the fills made meanwhile;
`reconcile` exits 0; SIGHUP of an attached console only detaches it.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core.events import PauseStrategy
from core.journal import read_fills, read_trades
from core.service.codec import encode
from tests.helpers.lock_helpers import PERPDESK, embedded_config, start_serve, stop, wait_until
from tests.helpers.service_helpers import _safe
from tests.helpers.tmux import Tmux, free_port

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.timeout(180),
]


def _manual_closes(jdir: Path) -> list[dict]:  # type: ignore[type-arg]
    return [r for r in _safe(read_trades, jdir) if r["reason"] == "manual"]


def _pause(path: Path) -> None:
    """PauseStrategy through the socket, frame by frame (no new entries from here on)."""
    import socket as so

    from core.service import protocol as proto

    with so.socket(so.AF_UNIX) as s:
        s.connect(str(path))
        s.settimeout(20)
        s.sendall(proto.frame({"t": "hello", "v": proto.PROTOCOL_VERSION, "role": "console"}))
        s.sendall(proto.frame({"t": "cmd", "id": "pause-1", "cmd": encode(PauseStrategy())}))
        data = b""
        while b'"t":"result"' not in data:
            chunk = s.recv(65536)
            assert chunk, "the engine closed before answering"
            data += chunk


def test_serve_attach_close_quit_trade_on_reattach(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path, speed="20", strategy="demo_scalper", port=free_port(),
                          extra="[strategy.params]\ninterval_s = 0.3\nmax_positions = 1\n"
                                "partial_chance = 0\nseed = 11\nnotional = 600\n")
    jdir = tmp_path / "journal"
    proc, path, _ = start_serve(tmp_path, cfg)
    exit_file = tmp_path / "exit.txt"
    tmux = Tmux(f"{PERPDESK} --config config.toml attach; echo $? > {exit_file}", tmp_path)
    try:
        tmux.wait_screen(lambda s: "demo_scalper running" in s and "Fills" in s, "the attached console")
        for _ in range(10):  # the strategy's TP/SL may close the position first: try again
            tmux.wait_screen(lambda s: "BTC/USDT " in s.split("Closes")[0].split("Positions")[-1],
                             "a position on the pane")
            tmux.keys("c")
            try:
                tmux.wait_screen(lambda s: "Close position?" in s, "the confirmation", 3)
            except AssertionError:
                continue
            tmux.keys("y")
            try:
                wait_until(lambda: len(_manual_closes(jdir)) >= 1, 10, "the manual close row")
                break
            except AssertionError:
                continue
        time.sleep(2.0)
        assert len(_manual_closes(jdir)) == 1  # once
        tmux.wait_screen(lambda s: "manual" in s, "the close on the closes pane")

        tmux.keys("q")
        deadline = time.monotonic() + 20
        while not exit_file.exists() and time.monotonic() < deadline:
            if "Quit" in tmux.screen() and "(y)" in tmux.screen():
                tmux.keys("y")
            time.sleep(0.3)
        assert exit_file.read_text().strip() == "0"
        assert proc.poll() is None  # the engine runs on
    finally:
        tmux.kill()

    at_quit = {f["fill_id"] for f in _safe(read_fills, jdir)}
    wait_until(lambda: len({f["fill_id"] for f in _safe(read_fills, jdir)} - at_quit) >= 2, 60,
               "the strategy to keep trading without a console")
    _pause(path)  # few enough rows that all of them fit on the fills pane
    time.sleep(3.0)
    meanwhile = [f for f in read_fills(jdir) if f["fill_id"] not in at_quit]

    tmux = Tmux(f"exec {PERPDESK} --config config.toml attach", tmp_path, height=50)
    try:
        # every fill made meanwhile must fit on the fills pane (120x50); resized on the way, the
        # console follows the window (it once stayed at 80x24: COLUMNS/LINES in the pane's env)
        tmux.wait_screen(lambda s: "Fills" in s, "the attached console")
        tmux.resize(120, 49)
        tmux.resize(120, 50)
        def shows_all(screen: str) -> bool:
            pane = screen.split("Fills")[-1]
            return all(str(f["ts"])[11:19] in pane for f in meanwhile)

        tmux.wait_screen(shows_all, f"the {len(meanwhile)} fills made meanwhile on the fills pane")
        rec = subprocess.run([str(PERPDESK), "--config", str(cfg), "reconcile"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
        assert rec.returncode == 0, rec.stdout + rec.stderr

        pid = int(tmux.pane("#{pane_pid}"))
        import os

        os.kill(pid, signal.SIGHUP)  # a closed SSH session: the console detaches, nothing else
        wait_until(lambda: tmux.pane("#{pane_dead}") == "1", 20, "the console to detach")
        assert proc.poll() is None
    finally:
        tmux.kill()
        assert stop(proc) == 0
    assert len(_manual_closes(jdir)) == 1


def test_attached_console_shows_the_engine_lost_and_comes_back(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path)
    proc, _, env = start_serve(tmp_path, cfg)
    tmux = Tmux(f"exec {PERPDESK} --config config.toml attach", tmp_path)
    try:
        tmux.wait_screen(lambda s: "● live" in s, "the attached console, live")
        assert stop(proc) == 0
        tmux.wait_screen(lambda s: "ENGINE LOST" in s and "SIGTERM" in s,
                         "the header saying the engine is lost, and the notice why")
        from tests.helpers.lock_helpers import start_engine

        proc = start_engine(cfg, "serve", env=env, banner="perpdesk serve")
        started = time.monotonic()
        tmux.wait_screen(lambda s: "● live" in s and "ENGINE LOST" not in s, "the console reconnected", 10)
        assert time.monotonic() - started < 6
    finally:
        tmux.kill()
        assert stop(proc) == 0
