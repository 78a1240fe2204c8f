"""Real `perpdesk` processes on one journal folder (tests of the one-engine-per-journal lock and
of the service): a config for the embedded simulator, start/stop of `--headless` / `serve`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PERPDESK = Path(sys.executable).with_name("perpdesk")


def embedded_config(tmp_path: Path, *, speed: str = "1", strategy: str = "none",
                    extra: str = "", port: int = 0) -> Path:
    """A config whose embedded simulator listens on a free port (so that two engines on it
    could both run if nothing stopped the second)."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('[exchange]\nvenue = "sim"\nsymbols = ["BTC/USDT:USDT"]\n'
                   f'[sim]\nport = {port}\nspeed = {speed}\nseed = 7\nfunding_interval_s = 3600\n'
                   f'[journal]\ndir = "journal"\n[strategy]\nname = "{strategy}"\n{extra}')
    return cfg


def spawn(cfg: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([str(PERPDESK), "--config", str(cfg), *args], cwd=cfg.parent,
                            env={**os.environ, **(env or {})}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def start_engine(cfg: Path, *args: str, env: dict[str, str] | None = None,
                 banner: str = "perpdesk headless") -> subprocess.Popen[str]:
    """A headless engine, returned once it printed its start line (its stack is up)."""
    proc = spawn(cfg, *(args or ("--headless",)), env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if banner not in line:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"the engine did not start: {line!r} {err}")
    return proc


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


def wait_until(pred, timeout: float = 30.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_serve(tmp_path: Path, cfg: Path, run_dir: Path | None = None,
          ) -> tuple[subprocess.Popen[str], Path, dict[str, str]]:
    """`perpdesk serve` on ``cfg`` with a socket folder of the test's own; (process, socket, env)."""
    from core.service.lock import read_holder

    env = {"PERPDESK_RUNTIME_DIR": str(run_dir or tmp_path / "run")}
    proc = start_engine(cfg, "serve", env=env, banner="perpdesk serve")
    holder = read_holder(cfg.parent / "journal")
    assert holder is not None and holder.socket, "the engine recorded no control socket"
    return proc, Path(holder.socket), env
