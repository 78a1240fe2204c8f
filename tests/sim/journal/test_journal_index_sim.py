"""A journal on a small disk that is full at start: mounting one takes a real process."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.journal import Journal
from core.journal.index import INDEX_NAME
from tests.helpers import full_disk
from tests.helpers.journal_rows import _journal_with_rows


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with full_disk.small_disk(tmp_path / "disk") as mnt:
        yield mnt


def test_a_full_disk_at_start_names_the_folder_and_says_the_disk_is_full(small_disk: Path) -> None:
    from core.journal import JournalError

    journal = small_disk / "journal"
    _journal_with_rows(journal)
    for suffix in ("", "-wal", "-shm"):
        Path(str(journal / INDEX_NAME) + suffix).unlink(missing_ok=True)
    full_disk.fill(small_disk)
    with pytest.raises(JournalError) as err:
        Journal(journal).open()
    message = err.value.message
    assert f"the disk holding the journal folder {journal} is full" in message, message
    assert "free some space" in message and "\n" not in message
    assert "rollback" not in message and "OperationalError" not in message
    (small_disk / "filler").unlink()  # room again: the next start rebuilds the index
    j = Journal(journal)
    j.open()
    assert j.has_fill("F29")
    j.close_sync()
