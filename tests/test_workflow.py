"""The daily workflow with real processes: a run, then the commands a trader types after it."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
