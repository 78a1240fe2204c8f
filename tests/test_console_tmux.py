"""The real `perpdesk` in a real terminal (tmux), used the way a trader uses it over SSH.

An outside ccxt client (plain, unmodified ccxt) opens a position on the account of the embedded
simulator; the position must appear on the screen; `c` then `y` closes it; the journal gets a
`manual` close row; `q` quits with exit code 0 and no traceback anywhere on the screen.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import ccxt
import pytest

from core.journal import read_trades
from core.sim.ccxt_client import okx_client

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)"),
    pytest.mark.timeout(120),
]

PERPDESK = Path(sys.executable).with_name("perpdesk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tmux:
    """One detached tmux session on a private server socket, so tests never touch a user's tmux."""

    def __init__(self, command: str, cwd: Path, width: int = 120, height: int = 40) -> None:
        self.sock = f"perpdesk-test-{uuid.uuid4().hex[:8]}"
        self.name = "pd"
        self._tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                   "-c", str(cwd), command)
        self._tmux("set-option", "-t", self.name, "remain-on-exit", "on")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.sock, *args], check=True, capture_output=True,
                              text=True).stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def wait_screen(self, pred: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if pred(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; screen was:\n{text}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"the embedded simulator never listened on 127.0.0.1:{port}")


def outside_client(port: int) -> ccxt.okx:
    return okx_client(ccxt.okx, f"http://127.0.0.1:{port}")


def test_close_a_position_from_the_keyboard_in_tmux(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "config.toml").write_text(
        '[exchange]\nvenue = "sim"\nsymbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]\n'
        f'[sim]\nport = {port}\nspeed = 1\nfunding_interval_s = 3600\n'
        '[strategy]\nname = "none"\n'
    )
    exit_file = tmp_path / "exit.txt"
    tmux = Tmux(f"{PERPDESK} --config config.toml; echo $? > {exit_file}", tmp_path)
    try:
        wait_port(port)
        ex = outside_client(port)
        ex.load_markets()
        ex.create_order("BTC/USDT:USDT", "market", "buy", 30)  # 30 contracts = 0.3 BTC

        tmux.wait_screen(lambda s: "BTC" in s and "0.3" in s and "long" in s.lower(),
                         "the outside client's BTC position on screen")
        tmux.keys("c")
        confirm = tmux.wait_screen(lambda s: "Close position?" in s and "(y)" in s, "the close confirmation")
        assert "0.3000 BTC" in confirm and "estimated PnL" in confirm
        tmux.keys("y")

        deadline = time.monotonic() + 30
        rows: list[dict] = []
        while time.monotonic() < deadline and not rows:
            rows = [r for r in read_trades(tmp_path / "journal") if r["reason"] == "manual"]
            time.sleep(0.3)
        assert len(rows) == 1, "no manual close row in the trades journal"
        row = rows[0]
        assert row["symbol"] == "BTC/USDT:USDT" and row["side"] == "long"
        assert (row["size_before"], row["size_closed"], row["size_after"]) == (
            Decimal("0.3"), Decimal("0.3"), Decimal("0"))
        assert row["net_pnl"] == row["gross_pnl"] - row["fee"] - row["liq_penalty"] + row["funding"]
        assert [p for p in ex.fetch_positions(["BTC/USDT:USDT"]) if p["contracts"]] == []

        tmux.keys("q")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not exit_file.exists():
            screen = tmux.screen()
            if "quit" in screen.lower() and "(y)" in screen:
                tmux.keys("y")  # a quit confirmation, if orders were still in flight
            time.sleep(0.3)
        assert exit_file.exists(), f"perpdesk did not exit on q; screen:\n{tmux.screen()}"
        assert exit_file.read_text().strip() == "0"
        assert "Traceback" not in tmux.screen()
    finally:
        tmux.kill()
