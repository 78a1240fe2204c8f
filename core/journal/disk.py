"""A full disk told apart from other write failures, and the one line that names it.

Why its own module: the journal, the simulator's first save and the engine lock each meet the
full disk first depending on what a start writes first, and all three must say the same thing.
"""
from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

SQLITE_FULL = 13  # sqlite3.SQLITE_FULL (Python 3.11 exposes the code on the error only)
FULL_BELOW = 64 * 1024  # free bytes under which a failed write is put down to a full disk


def disk_full(directory: Path, exc: BaseException) -> bool:
    """Did ``exc`` come from a full disk? SQLite says "database or disk is full", and sometimes
    only the "cannot rollback" that follows, so the folder's free space is asked too."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(cause, sqlite3.Error) and getattr(cause, "sqlite_errorcode", None) == SQLITE_FULL:
            return True
        cause = cause.__cause__ or cause.__context__
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < FULL_BELOW


def full_disk_message(directory: Path) -> str:
    """The one line a start on a full disk ends with."""
    return (f"the disk holding the journal folder {directory} is full ({free_space(directory)} "
            "free): free some space on it, then start again")


def free_space(directory: Path) -> str:
    """The free space of ``directory``'s disk, for a message ("12.0 KB")."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return "unknown"
    free = float(st.f_bavail * st.f_frsize)  # float ok: bytes for a message, not money
    if free < 1024:
        return f"{free:.0f} bytes"
    for unit in ("KB", "MB"):
        free /= 1024
        if free < 1024:
            return f"{free:.1f} {unit}"
    return f"{free / 1024:.1f} GB"
