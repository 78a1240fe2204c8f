"""The real console in a tmux pane, driven by keystrokes, with a loopback port and an outside client to watch it."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import ccxt

from core.sim.ccxt_client import okx_client

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

    def pane(self, field: str) -> str:
        """One of the pane's tmux format fields, e.g. ``#{pane_pid}`` (the shell) or ``#{pane_dead}``."""
        return self._tmux("display-message", "-p", "-t", self.name, field).strip()

    def resize(self, width: int, height: int) -> None:
        """Set the window's size; the program in it gets SIGWINCH and lays out again."""
        self._tmux("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))

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
        size = self.pane("#{window_width}x#{window_height} (window-size #{window-size})")
        raise AssertionError(f"timed out waiting for {what}; window {size}; screen was:\n{text}")

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
