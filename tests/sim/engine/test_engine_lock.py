"""Issue 19 item 4: one engine per journal folder.

Two engines on one journal journaled every fill, close and funding bill twice (and forked the
embedded simulator's state file). The second start must be refused with exit 2 and one line
naming the running engine, before it reads or writes anything in the folder; the lock dies with
its process (SIGKILL), so the next start after a crash succeeds. Real processes throughout.
"""
from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from core.service.lock import LOCK_FILE, EngineRunning, LockInfo, acquire, read_holder
from core.service.runner import build_stack
from tests.helpers.lock_helpers import PERPDESK, embedded_config, spawn, start_engine, stop, wait_until
from tests.helpers.runner_helpers import _settings

pytestmark = pytest.mark.timeout(120)


def _refused(proc) -> str:  # type: ignore[no-untyped-def]
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # it ran instead of being refused
        proc.kill()
        proc.communicate(timeout=30)
        raise AssertionError("the second engine started instead of being refused") from None
    assert proc.returncode == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_second_headless_on_one_journal_is_refused_and_names_the_first(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path)
    first = start_engine(cfg)
    try:
        state = tmp_path / "journal" / "sim-state.json"
        before = state.read_bytes() if state.exists() else None
        line = _refused(spawn(cfg, "--headless"))
        assert f"pid {first.pid}" in line and "since" in line and str(tmp_path / "journal") in line
        assert first.poll() is None  # the running engine is untouched
        assert (state.read_bytes() if state.exists() else None) == before
        lock = tmp_path / "journal" / LOCK_FILE
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        held = read_holder(tmp_path / "journal")
        assert held is not None and held.pid == first.pid
    finally:
        assert stop(first) == 0
    assert read_holder(tmp_path / "journal") is None  # released at a clean stop


def test_sigkilled_engine_leaves_a_stale_lock_the_next_start_takes(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path)
    first = start_engine(cfg)
    assert stop(first, signal.SIGKILL) == -signal.SIGKILL
    stale = LockInfo.from_bytes((tmp_path / "journal" / LOCK_FILE).read_bytes())
    assert stale is not None and stale.pid == first.pid  # the dead engine's details remain...
    assert read_holder(tmp_path / "journal") is None  # ...but nobody holds the lock
    second = start_engine(cfg)
    try:
        held = read_holder(tmp_path / "journal")
        assert held is not None and held.pid == second.pid
    finally:
        assert stop(second) == 0


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_console_and_headless_on_one_journal(tmp_path: Path) -> None:
    from tests.helpers.tmux import Tmux

    cfg = embedded_config(tmp_path)
    jdir = tmp_path / "journal"
    exit_file = tmp_path / "exit.txt"
    tmux = Tmux(f"{PERPDESK} --config config.toml; echo $? > {exit_file}", tmp_path)
    try:  # the console first: a headless start is refused, naming the console's process
        wait_until(lambda: read_holder(jdir) is not None, 30, "the console's engine to start")
        console = read_holder(jdir)
        assert console is not None
        line = _refused(spawn(cfg, "--headless"))
        assert f"pid {console.pid}" in line
        assert not exit_file.exists()
        tmux.keys("q")
        wait_until(exit_file.exists, 30, "the console to quit")
        assert exit_file.read_text().strip() == "0"
    finally:
        tmux.kill()

    headless = start_engine(cfg)  # then a headless first: plain `perpdesk` attaches to it (issue 22)
    exit_file.unlink()
    tmux = Tmux(f"{PERPDESK} --config config.toml; echo $? > {exit_file}", tmp_path)
    try:
        screen = tmux.wait_screen(lambda s: f"engine pid {headless.pid}" in s, "the attach notice")
        assert "Traceback" not in screen
        tmux.keys("q")
        wait_until(exit_file.exists, 30, "the attached console to quit")
        assert exit_file.read_text().strip() == "0"
        assert headless.poll() is None  # quitting an attached console leaves the engine running
        held = read_holder(jdir)
        assert held is not None and held.pid == headless.pid
    finally:
        tmux.kill()
        assert stop(headless) == 0


async def test_build_stack_refuses_a_second_engine_before_touching_the_folder(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    async with build_stack(settings):
        names = sorted(os.listdir(settings.journal.dir))
        with pytest.raises(EngineRunning) as refused:
            async with build_stack(settings):
                pass
        assert f"pid {os.getpid()}" in refused.value.message
        assert sorted(os.listdir(settings.journal.dir)) == names
    lock = acquire(settings.journal.dir)  # released at the stop: it can be taken again
    assert lock.held
    lock.release()


def test_a_console_looking_for_the_engine_does_not_make_a_start_fail(tmp_path: Path) -> None:
    """read_holder (plain `perpdesk`, `attach`) holds a shared lock for a moment when no engine
    runs; an engine starting in that moment waits it out instead of refusing itself."""
    import fcntl
    import threading

    jdir = tmp_path / "journal"
    acquire(jdir).release()  # the lock file exists, nobody holds it
    probe = os.open(jdir / LOCK_FILE, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
    threading.Timer(0.03, lambda: os.close(probe)).start()
    lock = acquire(jdir)
    assert lock.held and read_holder(jdir) is not None
    lock.release()
