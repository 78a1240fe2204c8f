"""The list of close rows written unconfirmed at stop, kept beside the journal for the next start.

Why a file of its own: at stop every close row still waiting for the exchange's confirmation is
written from the ledger (``source=ledger``) rather than dropped, and the journal is append-only,
so the journal itself cannot say "this row is still to be checked". This small JSON file can: the
next start checks each life it names against positions-history once and logs the outcome (a
differing life gets a warning line with the numbers; ``perpdesk reconcile`` shows it too), then
removes what it checked.

Written crash-safely (temp file, fsync, rename, fsync of the folder) and private (0600): a crash
mid-write leaves the previous version, never a torn one. A missing file means nothing is pending;
an unreadable one is reported once and set aside, never trusted; a symbolic link (or a pipe, or
another user's file) is refused like a journal day file, never followed.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger

from core.journal.errors import JournalError
from core.model import CloseResult
from core.support.safefile import UnsafeFileError, read_private, write_atomic

FILE_NAME = "unconfirmed_closes.json"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class UnconfirmedClose:
    """One close row written from the ledger without the exchange's confirmation.

    ``full`` tells whether it closed the life (then the life's rows can be compared with its
    positions-history record as a whole); the life is named by its journal ``position_id`` plus
    what ``core.confirm.history_match`` needs to find the record."""

    close_id: str
    position_id: str
    symbol: str
    pos_side: str
    side: str
    opened_at: str  # ISO 8601, UTC
    closed_at: str
    full: bool

    @staticmethod
    def of(close: CloseResult, pos_side: str) -> UnconfirmedClose:
        return UnconfirmedClose(close.close_key, close.position_id, close.symbol, pos_side,
                                close.side.value, close.opened_at.isoformat(),
                                close.closed_at.isoformat(), close.is_full)

    @property
    def opened(self) -> datetime:
        return datetime.fromisoformat(self.opened_at)

    @property
    def closed(self) -> datetime:
        return datetime.fromisoformat(self.closed_at)


def load(path: Path) -> list[UnconfirmedClose]:
    """The entries in ``path``; [] when it does not exist. A damaged file is renamed aside
    (``.bad``) with a warning: its rows are in the journal, only their check is lost. A symbolic
    link, a file that is not a regular one or one owned by another user is never read (a planted
    link would feed the check another file, a named pipe would block the start): JournalError
    naming it, as for a journal day file."""
    try:
        raw = read_private(path)
        if raw is None:
            return []
    except UnsafeFileError as exc:  # a link, a pipe, another user's file: refused like a day file
        raise JournalError(f"journal file {exc.message}") from None
    except OSError as exc:
        logger.warning(f"CLOSE CHECK cannot read {path}: {exc.strerror or exc}; the rows it lists "
                       "stay unchecked (perpdesk reconcile compares them)")
        return []
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise ValueError(f"unknown version {data.get('version') if isinstance(data, dict) else '?'}")
        return [UnconfirmedClose(**_entry(e)) for e in data.get("closes") or []]
    except (ValueError, TypeError) as exc:
        bad = path.with_name(path.name + ".bad")
        with contextlib.suppress(OSError):
            os.replace(path, bad)
        logger.warning(f"CLOSE CHECK {path} is not readable ({exc}); moved to {bad.name}; the rows it "
                       "lists stay unchecked (perpdesk reconcile compares them)")
        return []


def _entry(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ValueError("an entry is not an object")
    fields = UnconfirmedClose.__dataclass_fields__
    out = {k: item[k] for k in fields if k in item}
    if set(out) != set(fields):
        raise ValueError(f"an entry lacks {sorted(set(fields) - set(out))}")
    if not all(isinstance(out[k], str) for k in fields if k != "full") or not isinstance(
            out["full"], bool):
        raise ValueError("an entry has a field of the wrong type")
    return out


def save(path: Path, entries: list[UnconfirmedClose]) -> None:
    """Replace ``path`` atomically with ``entries`` (the file is removed when there are none).

    Raises OSError; the caller logs it (the rows themselves are in the journal either way)."""
    if not entries:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            _fsync_dir(path.parent)
        return
    write_atomic(path, json.dumps({"version": _VERSION, "closes": [asdict(e) for e in entries]},
                                  indent=1).encode() + b"\n")


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
