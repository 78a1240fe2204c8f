"""SIGKILL in the middle of a burst: whatever flush() acknowledged is on disk, exactly once, and
every journal file reads back as whole rows with the right columns."""
from __future__ import annotations

import csv
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from core.accounting.report import build_report, build_report_from_csv
from core.journal import COLUMNS, Journal, read_fills, read_funding
from core.journal.index import INDEX_NAME
from core.journal.schema import day_files
from tests.helpers.paths import HELPERS

HELPER = HELPERS / "journal_crash_writer.py"


def _run_and_kill(journal_dir: Path, out: Path, seed: int, delay: float) -> None:
    with open(out, "wb") as stdout:
        proc = subprocess.Popen([sys.executable, str(HELPER), str(journal_dir), str(seed)],
                                stdout=stdout, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while out.stat().st_size == 0:  # it is up and acknowledging
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "crash helper never acknowledged a row"
            time.sleep(0.01)
        time.sleep(delay)
        assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL


def _acked(out: Path) -> set[str]:
    text = out.read_text()
    return set(text[: text.rfind("\n") + 1].split())  # only whole lines were acknowledgements


@pytest.mark.timeout(120)
def test_sigkill_mid_burst_loses_no_acknowledged_row(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    acked: set[str] = set()
    for run, delay in enumerate([0.0, 0.05, 0.2, 0.45]):
        out = tmp_path / f"acked_{run}.txt"
        _run_and_kill(journal_dir, out, seed=run, delay=delay)
        acked |= _acked(out)

        Journal(journal_dir).open()  # the restart: repairs any torn tail
        files = day_files(journal_dir)
        assert {fam for fam, _ in files} == {"orders", "funding"}
        for family, path in files:
            assert path.read_bytes().endswith(b"\n")
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            assert tuple(rows[0]) == COLUMNS[family]
            assert all(len(r) == len(rows[0]) for r in rows[1:]), path

        fill_ids = Counter(str(r["fill_id"]) for r in read_fills(journal_dir))
        bill_ids = Counter(str(r["bill_id"]) for r in read_funding(journal_dir))
        assert [k for k, n in (fill_ids + bill_ids).items() if n > 1] == []
        missing = acked - set(fill_ids) - set(bill_ids)
        assert not missing, f"run {run}: acknowledged but not on disk: {sorted(missing)[:5]}"
        # the index (updated after each fsync, caught up at open) agrees with the CSV record
        db = sqlite3.connect(journal_dir / INDEX_NAME)
        try:
            assert {r[0] for r in db.execute("SELECT fill_id FROM fills")} == set(fill_ids)
            assert {r[0] for r in db.execute("SELECT bill_id FROM bills")} == set(bill_ids)
        finally:
            db.close()
        assert build_report(journal_dir) == build_report_from_csv(journal_dir)
    assert len(acked) > 100  # the bursts really happened
    assert len(day_files(journal_dir)) >= 3  # and crossed UTC midnight
