"""One journal, one account: the journal folder records the venue and account uid it belongs to.

Why: a journal folder pointed at the simulator and then at OKX (or at a second OKX account, or
at a simulator started anew) would turn the first account's open position lives into phantom
``external`` closes in the second's journal. So at first use
the folder gets ``account.json`` (venue, demo or live, the exchange's account uid, when), written
crash-safely and private; every later start, and ``perpdesk reconcile``, compares the account it
is connected to with it and refuses, before a single row is read or written, when they differ.

A folder that already holds rows but no record is refused too, never bound anew: the record was
deleted or lost, and binding the folder to whatever account this run is on would turn the open
positions of the rows' own account into ``external`` closes with made-up PnL.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from core.journal import schema
from core.support.errors import PerpdeskError
from core.support.safefile import UnsafeFileError, open_private, read_private, write_atomic

if TYPE_CHECKING:
    from core.settings.config import Settings

ACCOUNT_FILE = "account.json"


class JournalAccountError(PerpdeskError):
    """The journal belongs to another account (or its record is unusable): exit 2, one line."""


@dataclass(frozen=True, slots=True)
class AccountId:
    """Which account a journal belongs to: venue name, demo trading or not, the exchange's uid."""

    venue: str
    uid: str
    sandbox: bool = False

    def label(self) -> str:
        return f"{self.venue}{' demo' if self.sandbox else ''} account uid {self.uid}"


def read_binding(journal_dir: Path) -> AccountId | None:
    """The account recorded in ``journal_dir``; None before its first use."""
    path = Path(journal_dir) / ACCOUNT_FILE
    try:
        raw = read_private(path)
    except (UnsafeFileError, OSError) as exc:
        raise JournalAccountError(f"cannot read {path}: {getattr(exc, 'message', None) or exc}") from None
    if raw is None:
        return None
    try:
        d = json.loads(raw)
        return AccountId(venue=str(d["venue"]), uid=str(d["uid"]), sandbox=bool(d.get("sandbox", False)))
    except (ValueError, KeyError, TypeError) as exc:
        raise JournalAccountError(f"{path} is not a journal account record ({exc}); it names the "
                                  "account this journal belongs to: restore it, or use another "
                                  "[journal] dir") from None


def _has_rows(journal_dir: Path) -> bool:
    """True when a journal day file in ``journal_dir`` holds anything past its header line (an
    entry that is not a regular file of ours counts: the journal refuses it later by name)."""
    for _family, path in schema.day_files(journal_dir):
        try:
            fd = open_private(path, os.O_RDONLY)
        except (UnsafeFileError, OSError):
            return True
        try:
            head = os.read(fd, 65536)  # a header line and the start of the first row, if any
        except OSError:
            return True
        finally:
            os.close(fd)
        if head.partition(b"\n")[2].strip():
            return True
    return False


def bind_journal(journal_dir: Path, now: AccountId, *, record: bool = True) -> None:
    """Record ``now`` at the journal's first use; afterwards refuse any other account.

    ``record=False`` (reconcile, which only reads the journal) checks without recording.

    An account without a uid (a venue that cannot tell) is neither recorded nor checked: said in
    the log, since the check then cannot protect this journal.
    """
    journal_dir = Path(journal_dir)
    if not now.uid:
        logger.warning(f"JOURNAL ACCOUNT not checked: {now.venue} gave no account uid")
        return
    recorded = read_binding(journal_dir)
    if recorded is None and not record:
        return
    if recorded is None and _has_rows(journal_dir):
        raise JournalAccountError(
            f"journal {journal_dir} holds rows but no {ACCOUNT_FILE}, the record of the account they "
            f"belong to: restore {ACCOUNT_FILE} (from a backup or another copy of this folder), or "
            "set another [journal] dir for this account; perpdesk will not guess whose rows these are")
    if recorded is None:
        payload = {"venue": now.venue, "sandbox": now.sandbox, "uid": now.uid,
                   "since": datetime.now(UTC).isoformat(timespec="seconds")}
        try:
            write_atomic(journal_dir / ACCOUNT_FILE, (json.dumps(payload, indent=1) + "\n").encode())
        except (UnsafeFileError, OSError) as exc:
            raise JournalAccountError(f"cannot write {journal_dir / ACCOUNT_FILE}: "
                                      f"{getattr(exc, 'message', None) or exc}") from None
        logger.info(f"JOURNAL ACCOUNT {journal_dir} bound to {now.label()}")
        return
    if recorded != now:
        raise JournalAccountError(
            f"journal {journal_dir} belongs to {recorded.label()}, but this run is on {now.label()}: "
            f"set another [journal] dir for this account (or connect to {recorded.label()} again)")


def journal_account(settings: Settings, venue: object) -> AccountId:
    """The account a run is on, as the journal records it (venue name, demo or live, uid)."""
    return AccountId(venue=settings.exchange.venue, uid=getattr(venue, "account_uid", ""),
                     sandbox=bool(settings.exchange.sandbox))
