"""The commands run as real processes name the file and line of a damaged journal."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers.journal_files import ORDERS, _journal, _rewrite
from tests.helpers.journal_rows import T0, fill

# ---- the commands: exit 2 and one line naming the file and the line --------------------------
PERPDESK = Path(sys.executable).with_name("perpdesk")


def _perpdesk(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "config.toml").write_text('[exchange]\nvenue = "sim"\n[journal]\ndir = "journal"\n'
                                          '[strategy]\nname = "none"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}
    return subprocess.run([str(PERPDESK), "--config", "config.toml", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=90)


def _one_line(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.timeout(120)
def test_commands_name_file_and_line_of_a_renamed_header_or_bad_byte(tmp_path: Path) -> None:
    jdir = tmp_path / "journal"
    assert _perpdesk(tmp_path, "--headless", "--duration", "0.2").returncode == 0  # binds the folder
    j = _journal(jdir)
    j.record_fill(fill("F1"))
    j.record_fill(fill("F2", ts=T0 + timedelta(seconds=1)))
    j.close_sync()
    path = jdir / ORDERS
    _rewrite(path, lambda rows: [["id" if c == "fill_id" else c for c in rows[0]], *rows[1:]])
    for args in (("report",), ("--headless", "--duration", "5")):
        _one_line(_perpdesk(tmp_path, *args), str(path.name), "line 1", "fill_id")
    _rewrite(path, lambda rows: [["fill_id" if c == "id" else c for c in rows[0]], *rows[1:]])
    path.write_bytes(path.read_bytes().replace(b",buy,", b",b\xffuy,", 1))
    for args in (("report",), ("--headless", "--duration", "5")):
        _one_line(_perpdesk(tmp_path, *args), str(path.name), "line 2", "column side")
