"""Opening a journal day file to read it: ours only, no symlink followed, one plain error.

Why its own module: the reader (rows) and the index (bytes) both read day files, and the index
cannot import the reader (the reader imports the writer, which imports the index)."""
from __future__ import annotations

import os
from pathlib import Path

from core.journal.errors import JournalError
from core.safefile import UnsafeFileError, open_private


def open_day_file(path: Path) -> int:
    """A read-only fd of ``path``; JournalError naming the file when it cannot be ours to read."""
    try:
        return open_private(path, os.O_RDONLY)
    except UnsafeFileError as exc:
        raise JournalError(f"journal file {exc.message}") from None
    except OSError as exc:
        raise JournalError(f"cannot read journal file {path}: {exc.strerror or exc}") from exc
