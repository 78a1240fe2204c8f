"""What the console does when the process is told to stop, or loses its terminal.

Why: a dropped SSH session sends SIGHUP, a supervisor or `kill` sends SIGTERM, and by default
both end the process at once: no log line, nothing said about the positions left open on the
exchange, the journal's last batch at the mercy of the interpreter's exit. Here:

- SIGTERM and SIGINT stop the console like `q` (without its question: nobody is there to
  answer it): the UI exits, the stack stops (journal flushed and closed), one log line names the
  signal and the positions left open with their TP/SL when known (core/service/runner.py log_stop).
- SIGHUP with ``[ui] on_hangup = "stop"`` does the same. With ``"headless"`` the UI is detached
  and the engine (and the strategy) keep running and journaling, as `perpdesk --headless` would,
  until SIGTERM or SIGINT. Further SIGHUPs are ignored.

After a hangup the terminal is gone: writes to it fail (EIO) and would turn the UI's teardown,
a warning or the interpreter's final flush into errors. stdout and stderr are pointed at
/dev/null first, so nothing can fail on a dead terminal (the log file is the record).

Why the driver is wrapped too: Textual's writer thread dies on the first failed write, after
which the UI blocks for ever on its full output queue, signals included (measured: a tmux pane
killed under a shell that did not forward SIGHUP left perpdesk hung at 40 % CPU). The terminal
file given to the driver swallows the failure and reports it as a hangup, so a terminal lost
without a SIGHUP is handled the same way.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from typing import IO, Any

from textual.driver import Driver

from console.errors import log_line

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
ON_HANGUP = ("stop", "headless")


def _silence_terminal() -> None:
    """Point fds 1 and 2 at /dev/null: the terminal behind them hung up."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            os.dup2(null, fd)
    os.close(null)


class TerminalFile:
    """The terminal stream Textual writes to, made to survive a terminal that hung up: the
    first failed write or flush calls ``lost`` (from the writer thread) and later ones are
    dropped."""

    def __init__(self, file: IO[str], lost: Callable[[], None]) -> None:
        self.file = file
        self.lost = lost
        self.broken = False

    def _failed(self) -> None:
        if not self.broken:
            self.broken = True
            self.lost()

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.file.write(text)
            except (OSError, ValueError):
                self._failed()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.file.flush()
            except (OSError, ValueError):
                self._failed()

    def fileno(self) -> int:
        return self.file.fileno()

    def isatty(self) -> bool:
        return True


def hangup_safe(driver_class: type[Driver], lost: Callable[[], None]) -> type[Driver]:
    """``driver_class`` writing through a TerminalFile (Textual's Linux driver only; any other
    driver is returned as it is)."""
    try:
        from textual.drivers.linux_driver import LinuxDriver
    except ImportError:  # pragma: no cover - not a POSIX terminal
        return driver_class
    if not issubclass(driver_class, LinuxDriver):
        return driver_class

    class HangupSafeDriver(driver_class):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            original: IO[str] = self._file  # type: ignore[has-type]
            self._file = TerminalFile(original, lost)
            size_from_the_terminal()

    return HangupSafeDriver


def size_from_the_terminal() -> None:
    """Drop COLUMNS and LINES from the environment when stdout is a terminal.

    Why: Textual reads the size through ``shutil.get_terminal_size``, which prefers those two
    variables to the terminal itself. Exported once (by a shell, a multiplexer's pane: tmux
    panes were seen carrying COLUMNS=80 LINES=24 at 120x50), they pin the console to that size
    and every later resize reads the same numbers again: an 80x24 layout in a bigger window,
    panes that never grow. On a terminal, the terminal's own size is the truth."""
    stdout = sys.__stdout__
    try:
        on_a_terminal = stdout is not None and os.isatty(stdout.fileno())
    except (OSError, ValueError):
        on_a_terminal = False
    if on_a_terminal:
        os.environ.pop("COLUMNS", None)
        os.environ.pop("LINES", None)


class Lifecycle:
    """The signal handlers of one console run (installed around the UI and the detached run)."""

    def __init__(self, exit_ui: Callable[[], None], on_hangup: str = "stop") -> None:
        if on_hangup not in ON_HANGUP:
            raise ValueError(f"on_hangup must be one of {ON_HANGUP}, got {on_hangup!r}")
        self.exit_ui = exit_ui
        self.on_hangup = on_hangup
        self.reason = "q"  # what ended the run: "q", or the signal's name
        self.detached = False  # the UI is gone, the engine runs on (on_hangup = "headless")
        self.stopped = asyncio.Event()  # a stop signal arrived
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ui_up = True

    def install(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self._on_signal, sig)

    def uninstall(self) -> None:
        if self._loop is None:
            return
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.remove_signal_handler(sig)
        self._loop = None

    def terminal_lost(self) -> None:
        """A write to the terminal failed (called from Textual's writer thread): a hangup."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._hangup, "terminal lost")

    def ui_closed(self) -> None:
        """The UI has exited (by `q` or by a signal)."""
        self._ui_up = False

    def _on_signal(self, sig: signal.Signals) -> None:
        name = signal.Signals(sig).name
        if sig == signal.SIGHUP:
            self._hangup(name)
            return
        if self.stopped.is_set():
            return
        self.reason = name if not self.detached else f"{name} (after {self.reason})"
        self.stopped.set()
        log_line("WARNING", f"{name}: stopping" + (" the console like q" if self._ui_up else
                                                     " the detached engine"))
        if self._ui_up:
            self.exit_ui()

    def _hangup(self, name: str) -> None:
        if self.detached or self.stopped.is_set():
            return
        _silence_terminal()
        self.reason = name
        head = "terminal lost" if name == "terminal lost" else f"{name}: terminal lost"
        if self.on_hangup == "headless" and self._ui_up:
            self.detached = True
            log_line("WARNING", f"{head}, UI detached ([ui] on_hangup = "
                                '"headless"); the engine and the strategy keep running and '
                                "journaling until SIGTERM or SIGINT")
        else:
            self.stopped.set()
            log_line("WARNING", f"{head}, stopping the console like q")
        if self._ui_up:
            self.exit_ui()

    async def wait_detached(self) -> None:
        """When the UI was detached: run on until a stop signal."""
        if self.detached:
            await self.stopped.wait()
            log_line("INFO", "detached engine: stopping")
