"""startup_s: from process start to the first painted frame of `perpdesk` with the committed config.

The committed config.toml is copied unchanged into a temp folder (its journal and logs paths are
relative to the config file, so nothing lands in the repository) and `perpdesk --config <copy>`
runs in a pseudo-terminal of 160x50 with TERM=xterm-256color. The clock starts just before the
process is spawned and stops when the terminal output contains the positions pane's title
("Positions"), i.e. the first frame with the app's content. Then `q` quits it (SIGTERM/SIGKILL
only if it does not exit).
"""
from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, console_script, median, per_ref, ref_loop_ms, spread

MARKER = b"Positions"


def first_paint(timeout: float = 20.0) -> tuple[float | None, int]:
    """Seconds to the first frame (None on timeout) and the exit code after `q`."""
    with tempfile.TemporaryDirectory(prefix="perpdesk-startup-") as tmp:
        cfg = Path(tmp) / "config.toml"
        shutil.copyfile(REPO / "config.toml", cfg)
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        # PYTHONPATH: the venv's editable install may predate console/ and themes/ as packages
        env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color", "COLORTERM": "truecolor", "LINES": "50", "COLUMNS": "160"}
        t0 = time.perf_counter()
        proc = subprocess.Popen([console_script("perpdesk"), "--config", str(cfg)], cwd=tmp, stdin=slave, stdout=slave,
                                stderr=slave, env=env, start_new_session=True, close_fds=True)
        os.close(slave)
        seen = b""
        painted: float | None = None
        try:
            while time.perf_counter() - t0 < timeout:
                ready, _, _ = select.select([master], [], [], 0.05)
                if ready:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:
                        break
                    seen = seen[-64:] + chunk
                    if MARKER in seen:
                        painted = time.perf_counter() - t0
                        break
                elif proc.poll() is not None:
                    break
            os.write(master, b"q")
            deadline = time.perf_counter() + 10
            while proc.poll() is None and time.perf_counter() < deadline:  # keep draining the pty
                if select.select([master], [], [], 0.05)[0]:
                    try:
                        os.read(master, 65536)
                    except OSError:
                        break
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
            return painted, proc.wait()
        finally:
            os.close(master)


def bench_startup(repeats: int) -> dict[str, Any]:
    """Median of ``repeats`` starts, each followed by the host reference (``startup_x_ref``: the
    start in reference loops, per round, then the median and the spread of the rounds)."""
    runs: list[tuple[float | None, int]] = []
    refs: list[float] = []
    for _ in range(repeats):
        runs.append(first_paint())
        refs.append(ref_loop_ms())
    paired = [(t, r) for (t, _), r in zip(runs, refs, strict=True) if t is not None]
    times = sorted(t for t, _ in paired)
    x, x_spread = per_ref([t for t, _ in paired], [r / 1000 for _, r in paired], 1)
    return {"startup_s": round(median(times), 3) if times else None,
            "startup_x_ref": x if paired else None,
            "refs": refs,
            "spread": {"startup_s": spread(times, 3), "startup_x_ref": x_spread} if paired else {},
            "_detail": f"runs {[None if t is None else round(t, 3) for t, _ in runs]} s, "
                       f"host reference {[round(r, 1) for r in refs]} ms, "
                       f"exit codes after q {[rc for _, rc in runs]}"}


if __name__ == "__main__":
    print(bench_startup(3))
