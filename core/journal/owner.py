"""Is an engine running on this journal folder? (Linux: the processes holding its index open.)

Why: the embedded simulator's exchange (``sim-state.json``) belongs to the engine that runs on
the journal; a command that started a second simulator from the same file would fork the
exchange (two diverging copies, one of them lost at the next save). An engine keeps the journal
index (``.index.sqlite3``) open for its whole life, so another process holding that file open
is the sign. Only processes this user may inspect are seen (an engine runs as its trader); where
/proc is absent nothing is found, and callers must treat that as "unknown".
"""
from __future__ import annotations

import os
from pathlib import Path

from core.journal.index import INDEX_NAME

_PROC = Path("/proc")


def journal_holders(journal_dir: Path) -> list[int]:
    """The ids of other processes that hold this journal's index open, lowest first."""
    index = os.path.realpath(Path(journal_dir) / INDEX_NAME)
    targets = {index, index + "-wal"}
    me = os.getpid()
    found: list[int] = []
    try:
        pids = [int(name) for name in os.listdir(_PROC) if name.isdigit()]
    except OSError:
        return []
    for pid in sorted(pids):
        if pid == me:
            continue
        fd_dir = _PROC / str(pid) / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or another user's
        for fd in fds:
            try:
                if os.readlink(fd_dir / fd) in targets:
                    found.append(pid)
                    break
            except OSError:
                continue
    return found
