"""The real `perpdesk` in a real terminal (tmux), used the way a trader uses it over SSH.

An outside ccxt client (plain, unmodified ccxt) opens a position on the account of the embedded
simulator; the position must appear on the screen; `c` then `y` closes it; the journal gets a
`manual` close row; `q` quits with exit code 0 and no traceback anywhere on the screen.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from core.journal import read_trades
from tests.helpers.tmux import PERPDESK, Tmux, free_port, outside_client, wait_port

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)"),
    pytest.mark.timeout(120),
]


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


def test_the_console_takes_the_terminals_size_not_stale_size_variables(tmp_path: Path) -> None:
    """COLUMNS=80 LINES=24 in the environment of a 120x40 pane: the console lays out at 120x40,
    and at the new size after the window is resized (shutil, which Textual asks, prefers the
    variables to the terminal: the console stayed at 80x24 whatever the window did)."""
    port = free_port()
    (tmp_path / "config.toml").write_text(
        '[exchange]\nvenue = "sim"\nsymbols = ["BTC/USDT:USDT"]\n'
        f'[sim]\nport = {port}\nspeed = 1\nfunding_interval_s = 3600\n'
        '[strategy]\nname = "none"\n'
    )
    tmux = Tmux(f"exec env COLUMNS=80 LINES=24 {PERPDESK} --config config.toml", tmp_path)

    def laid_out_at(width: int) -> Callable[[str], bool]:
        def check(screen: str) -> bool:  # a pane's top border runs the whole width
            return "Positions" in screen and any(
                "Positions" in line and len(line.rstrip()) == width for line in screen.splitlines())
        return check

    try:
        tmux.wait_screen(laid_out_at(120), "the console at the pane's 120 columns")
        tmux.resize(140, 40)
        tmux.wait_screen(laid_out_at(140), "the console at 140 columns after the resize")
    finally:
        tmux.kill()
