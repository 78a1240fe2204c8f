"""The shipper's high-water mark: per day file, the bytes already in PostgreSQL.

Why a local file and not a table: the engine's role can only insert, it cannot read what it
shipped. The mark is written (crash-safely, private) only after PostgreSQL committed the rows up
to it, so a crash in between ships those rows again, and the insert-or-ignore on each row's own
identity lands them once. ``target`` names the database and the engine: pointed at another
store, the engine ships its journal there from the start.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from core.store.errors import StoreError
from core.support.safefile import UnsafeFileError, read_private, write_atomic

MARK_FILE = "store-mark.json"


@dataclass
class Marks:
    """{file name: (inode, offset shipped)} for one target."""

    target: str
    files: dict[str, tuple[int, int]] = field(default_factory=dict)

    def offset(self, name: str, inode: int, size: int) -> int:
        """Where to resume in ``name``: 0 when the file is another one now, or shorter (rewritten)."""
        ino, off = self.files.get(name, (inode, 0))
        return off if ino == inode and off <= size else 0


def load_marks(journal_dir: Path, target: str) -> Marks:
    path = Path(journal_dir) / MARK_FILE
    try:
        raw = read_private(path)
    except (UnsafeFileError, OSError) as exc:
        why = getattr(exc, "message", None) or exc
        raise StoreError(f"cannot read the store's mark {path} ({why}); move it away and "
                         "the journal is shipped again from the start (each row lands once)") from None
    if raw is None:
        return Marks(target)
    try:
        d = json.loads(raw)
        if d.get("target") != target:
            return Marks(target)  # another store or engine name: ship everything there
        files = {str(k): (int(v[0]), int(v[1])) for k, v in d["files"].items()}
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return Marks(target)  # unreadable: ship again from the start, rows land once
    return Marks(target, files)


def save_marks(journal_dir: Path, marks: Marks) -> None:
    payload = {"target": marks.target, "files": {k: list(v) for k, v in sorted(marks.files.items())}}
    write_atomic(Path(journal_dir) / MARK_FILE, (json.dumps(payload) + "\n").encode())
