"""The simulator's command line started as a real process, and stopped."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

PERPDESK = Path(sys.executable).with_name("perpdesk")


def _start_cli(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}
    proc = subprocess.Popen([str(PERPDESK), "sim", "--port", "0", "--speed", "0", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        m = re.search(r"REST\s+(http://\S+)/api/v5", line)
        if m:
            url = m.group(1)
        if line.startswith("Ctrl-C"):
            break
    assert url, proc.stderr.read() if proc.stderr else ""
    return proc, url


def _stop_cli(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
