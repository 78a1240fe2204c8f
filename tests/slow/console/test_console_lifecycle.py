"""The console survives its terminal (issue 11): the real `perpdesk` in tmux, the terminal then
taken away the way a dropped SSH session does it (the tmux server goes, the pty hangs up and the
process gets SIGHUP).

- default ``[ui] on_hangup = "stop"``: it stops like `q`: exit code 0, a log line naming the
  signal and the position left open on the exchange, the journal complete;
- ``on_hangup = "headless"``: the engine keeps running and journaling without a terminal (a
  fill made from outside after the hangup is journaled), and SIGTERM then stops it cleanly.

The shell around perpdesk does what a login shell does on a hangup, it passes SIGHUP on to its
job, but outlives the terminal to record perpdesk's exit code.
"""
from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from core.journal import read_fills
from tests.helpers.lock_helpers import wait_until
from tests.helpers.tmux import PERPDESK, Tmux, free_port, outside_client, wait_port

pytestmark = [pytest.mark.skipif(Tmux is None, reason="tmux helper unavailable"),
              pytest.mark.timeout(150)]


FORWARD_HUP = ("trap 'kill -HUP $P' HUP; {cmd} <&0 & P=$!; "
               "while :; do wait $P; s=$?; kill -0 $P 2>/dev/null || break; done; "
               "echo $s > exit.txt")
IGNORE_HUP = "trap '' HUP; {cmd}; echo $? > exit.txt"  # perpdesk only sees its writes fail


def start(tmp_path: Path, on_hangup: str | None,
          shell: str = FORWARD_HUP) -> tuple[Tmux, int, int]:
    """perpdesk in tmux on a fresh simulator; returns (tmux, sim port, perpdesk pid)."""
    port = free_port()
    (tmp_path / "config.toml").write_text(
        '[exchange]\nvenue = "sim"\nsymbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]\n'
        f'[sim]\nport = {port}\nspeed = 1\nfunding_interval_s = 3600\n'
        '[strategy]\nname = "none"\n'
        + (f'[ui]\non_hangup = "{on_hangup}"\n' if on_hangup else ""))
    tmux = Tmux(shell.format(cmd=f"{PERPDESK} --config config.toml"), tmp_path)
    sh = int(tmux.pane("#{pane_pid}"))
    children = Path(f"/proc/{sh}/task/{sh}/children")
    wait_until(lambda: children.read_text().split() != [], what="perpdesk to start")
    pid = int(children.read_text().split()[0])
    wait_port(port)
    return tmux, port, pid


def open_long(tmux: Tmux, port: int, tmp_path: Path, symbol: str, contracts: int) -> Any:
    """The outside client buys ``contracts`` of ``symbol``; returns the client once the console
    shows the long and the journal holds its fill (the only one so far)."""
    ex = outside_client(port)
    ex.load_markets()
    ex.create_order(symbol, "market", "buy", contracts)
    base = symbol.split("/")[0]
    tmux.wait_screen(lambda s: base in s and "long" in s.lower(), "the position on screen")
    wait_until(lambda: len(fills(tmp_path)) == 1, what="the fill in the journal")
    return ex


def fills(tmp_path: Path) -> list[dict]:
    journal = tmp_path / "journal"
    return read_fills(journal) if journal.exists() else []


def log_text(tmp_path: Path) -> str:
    return "".join(p.read_text() for p in sorted((tmp_path / "logs").glob("perpdesk_*.log")))


def exited(tmp_path: Path) -> bool:
    exit_file = tmp_path / "exit.txt"
    return exit_file.exists() and exit_file.read_text().strip() != ""


@pytest.mark.parametrize(("shell", "reasons"), [(FORWARD_HUP, ("SIGHUP", "terminal lost")),
                                                (IGNORE_HUP, ("terminal lost",))],
                         ids=["sighup", "no-sighup"])
def test_a_lost_terminal_stops_the_console_like_q(tmp_path: Path, shell: str,
                                                  reasons: tuple[str, ...]) -> None:
    """With SIGHUP (a login shell passes it on), and without: the terminal's writes fail, which
    used to hang the console for ever (Textual's writer thread died on EIO). With both, the
    first to arrive names the stop (a repaint may fail before the signal is delivered)."""
    tmux, port, pid = start(tmp_path, None, shell)
    try:
        open_long(tmux, port, tmp_path, "BTC/USDT:USDT", 30)
    finally:
        tmux.kill()  # the terminal goes away: the pty hangs up, perpdesk gets SIGHUP
    wait_until(lambda: exited(tmp_path), what="perpdesk to exit after the hangup")
    assert (tmp_path / "exit.txt").read_text().strip() == "0"
    log = log_text(tmp_path)
    reason = next((r for r in reasons if f"STOP ({r})" in log), None)
    assert reason is not None, log
    head = "SIGHUP: terminal lost" if reason == "SIGHUP" else "terminal lost"
    assert f"{head}, stopping the console like q" in log
    assert (f"STOP ({reason}): 1 position(s) left open on the exchange: "
            "BTC/USDT:USDT long 30 ct (0.3) entry") in log
    assert "Traceback" not in log
    assert len(fills(tmp_path)) == 1  # the journal is complete and readable
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_on_hangup_headless_keeps_journaling_until_sigterm(tmp_path: Path) -> None:
    tmux, port, pid = start(tmp_path, "headless")
    try:
        ex = open_long(tmux, port, tmp_path, "BTC/USDT:USDT", 30)
    finally:
        tmux.kill()
    wait_until(lambda: "UI detached" in log_text(tmp_path), what="the detach log line")
    os.kill(pid, 0)  # still running without a terminal
    assert not exited(tmp_path)

    ex.create_order("ETH/USDT:USDT", "market", "sell", 5)  # from outside, after the hangup
    wait_until(lambda: len(fills(tmp_path)) == 2, what="the fill made after the hangup, journaled")
    assert {r["symbol"] for r in fills(tmp_path)} == {"BTC/USDT:USDT", "ETH/USDT:USDT"}

    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: exited(tmp_path), what="perpdesk to exit on SIGTERM")
    assert (tmp_path / "exit.txt").read_text().strip() == "0"
    log = log_text(tmp_path)
    assert "SIGTERM: stopping the detached engine" in log
    assert re.search(r"STOP \(SIGTERM \(after (SIGHUP|terminal lost)\)\): 2 position\(s\) "
                     r"left open on the exchange", log), log
    assert "ETH/USDT:USDT short 5 ct" in log
    assert "Traceback" not in log


def test_sigterm_stops_the_console_like_q_and_gives_the_terminal_back(tmp_path: Path) -> None:
    tmux, port, pid = start(tmp_path, None)
    try:
        open_long(tmux, port, tmp_path, "ETH/USDT:USDT", 7)
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: exited(tmp_path), what="perpdesk to exit on SIGTERM")
        screen = tmux.screen()
        assert "Traceback" not in screen and "Positions" not in screen  # the UI is gone
    finally:
        tmux.kill()
    assert (tmp_path / "exit.txt").read_text().strip() == "0"
    log = log_text(tmp_path)
    assert "SIGTERM: stopping the console like q" in log
    assert "STOP (SIGTERM): 1 position(s) left open on the exchange: ETH/USDT:USDT long 7 ct" in log
    assert len(fills(tmp_path)) == 1
