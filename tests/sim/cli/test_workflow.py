"""The daily workflow with real processes: a run, then the commands a trader types after it."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.full_disk import fill, small_disk
from tests.helpers.paths import REPO

PERPDESK = Path(sys.executable).with_name("perpdesk")

pytestmark = pytest.mark.timeout(120)


def perpdesk(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}
    return subprocess.run([str(PERPDESK), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def quiet_config(tmp_path: Path) -> Path:
    """A config on the embedded simulator with a frozen market and no strategy."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('[exchange]\nvenue = "sim"\nsymbols = ["BTC/USDT:USDT"]\n'
                   '[sim]\nspeed = 0\nseed = 4\n[strategy]\nname = "none"\n')
    return cfg


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_files_an_older_version_left_0644_are_made_private_at_start(tmp_path: Path) -> None:
    quiet_config(tmp_path)
    first = perpdesk(["--headless", "--duration", "0.5"], tmp_path)
    assert first.returncode == 0, first.stderr
    journal, logs = tmp_path / "journal", tmp_path / "logs"
    made = sorted(p for p in [*journal.iterdir(), *logs.iterdir()] if p.is_file())
    assert any(p.name == "sim-state.json" for p in made) and any(p.suffix == ".log" for p in made)
    for path in made:  # what an older version left: readable by every user
        os.chmod(path, 0o644)
    os.chmod(journal, 0o755)
    os.chmod(logs, 0o755)
    foreign = journal / "notes.txt"  # not ours: left as the trader made it
    foreign.write_text("mine")
    os.chmod(foreign, 0o644)

    second = perpdesk(["--headless", "--duration", "0.5"], tmp_path)
    assert second.returncode == 0, second.stderr
    assert {p.name: _mode(p) for p in made} == {p.name: 0o600 for p in made}
    assert _mode(journal) == 0o700 and _mode(logs) == 0o700 and _mode(foreign) == 0o644
    log = "".join(p.read_text() for p in logs.glob("perpdesk_*.log"))
    lines = [line for line in log.splitlines() if "PERMISSIONS" in line]
    assert len(lines) == 1, lines
    assert str(journal / "sim-state.json") in lines[0] and str(logs) in lines[0]
    assert "notes.txt" not in lines[0]


def test_a_corrupt_ui_state_file_stops_no_command(tmp_path: Path) -> None:
    quiet_config(tmp_path)
    state = tmp_path / "ui-state.toml"
    state.write_bytes(b"\xef\xbb\xbf[ui\n\x00garbage")
    for args in (["--headless", "--duration", "0.5"], ["report"]):
        proc = perpdesk(args, tmp_path)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stderr == "", (args, proc.stderr)


def _immutable(folder: Path, on: bool) -> bool:
    """chattr +i/-i: a folder where not even root can create a file (as a read-only journal)."""
    import shutil

    if shutil.which("chattr") is None:
        return False
    flag = "+i" if on else "-i"
    return subprocess.run(["chattr", flag, str(folder)], capture_output=True).returncode == 0


def test_report_on_a_journal_it_cannot_write_prints_only_the_report(tmp_path: Path) -> None:
    quiet_config(tmp_path)
    assert perpdesk(["--headless", "--duration", "0.5"], tmp_path).returncode == 0
    journal = tmp_path / "journal"
    for extra in journal.glob(".index.sqlite3-*"):
        extra.unlink()  # the index must make its -wal and -shm again: it cannot
    if not _immutable(journal, True):
        pytest.skip("chattr +i is not available here")
    try:
        proc = perpdesk(["report"], tmp_path)
    finally:
        _immutable(journal, False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith("no journal rows in ")


def committed_config(tmp_path: Path) -> Path:
    """The committed config.toml, as is, in a folder of its own (journal and logs beside it)."""
    cfg = tmp_path / "config.toml"
    cfg.write_text((REPO / "config.toml").read_text())
    return cfg


def _state(journal: Path) -> list[tuple[str, bytes, int]]:
    """The saved exchange's files (the state and its change log, if any): bytes and mtime."""
    return [(p.name, p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(journal.glob("sim-state.json*"))]


@pytest.mark.parametrize("protocol", ["okx", "bybit"])
def test_reconcile_after_the_console_closed_uses_the_saved_exchange(tmp_path: Path, protocol: str) -> None:
    from core.journal import read_fills

    cfg = committed_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("[sim]\n", f'[sim]\nprotocol = "{protocol}"\n', 1))
    run = perpdesk(["--headless", "--duration", "10"], tmp_path)
    assert run.returncode == 0, run.stderr
    journal = tmp_path / "journal"
    assert read_fills(journal), "the committed strategy traded within 10 s"
    before = _state(journal)

    proc = perpdesk(["reconcile"], tmp_path)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"exchange: the embedded simulator as saved in {journal / 'sim-state.json'}")
    assert lines[-1].endswith("all match") and " 0 positions" not in lines[-1]
    assert _state(journal) == before  # read, never written
    assert not list(journal.glob(".sim-state.json.tmp"))


def test_reconcile_while_an_engine_runs_on_the_journal_refuses_in_one_line(tmp_path: Path) -> None:
    import time

    quiet_config(tmp_path)
    journal = tmp_path / "journal"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}
    engine = subprocess.Popen([str(PERPDESK), "--headless", "--duration", "30"], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert engine.stdout is not None
        assert "perpdesk headless" in engine.stdout.readline()
        deadline = time.monotonic() + 20
        while not (journal / "sim-state.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        proc = perpdesk(["reconcile"], tmp_path)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert f"an engine (process {engine.pid}) is running on journal {journal}" in proc.stderr
        assert "press r in its console" in proc.stderr
    finally:
        engine.terminate()
        engine.wait(timeout=20)
    assert engine.returncode == 0
    after = perpdesk(["reconcile"], tmp_path)  # stopped: the saved exchange is the one to compare
    assert after.returncode == 0, after.stderr


def test_a_start_on_a_full_disk_names_the_journal_folder(tmp_path: Path) -> None:
    """The committed config on a disk with no room left: one line naming the folder."""
    with small_disk(tmp_path / "disk") as disk:
        committed_config(disk)
        fill(disk)
        proc = perpdesk(["--headless", "--duration", "1"], disk)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert proc.stderr.strip().splitlines() == [
            f"the disk holding the journal folder {disk / 'journal'} is full (0 bytes free): "
            "free some space on it, then start again"], proc.stderr


def test_tighten_leaves_a_shared_folder_links_and_other_files_alone(tmp_path: Path) -> None:
    from core.support.safefile import tighten

    shared, own = tmp_path / "shared", tmp_path / "own"
    shared.mkdir(mode=0o755)
    own.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    os.chmod(own, 0o755)
    outside = tmp_path / "outside.csv"  # a link's target outside the folders: never changed
    outside.write_text("x")
    os.chmod(outside, 0o644)
    (own / "trades_2024-05-01.csv").symlink_to(outside)
    for folder in (shared, own):
        for name in ("orders_2024-05-01.csv", "perpdesk_2024-05-01.log", "config.toml"):
            (folder / name).write_text("x")
            os.chmod(folder / name, 0o644)
    changed = tighten([shared, own, tmp_path / "absent"], shared=[shared])
    assert sorted(changed) == sorted([own, own / "orders_2024-05-01.csv",
                                      own / "perpdesk_2024-05-01.log",
                                      shared / "orders_2024-05-01.csv",
                                      shared / "perpdesk_2024-05-01.log"])
    assert _mode(shared) == 0o755 and _mode(own) == 0o700  # the trader's shared folder is theirs
    assert _mode(own / "config.toml") == 0o644 and _mode(outside) == 0o644
    assert tighten([shared, own], shared=[shared]) == []  # once done, nothing more to say
