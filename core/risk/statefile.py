"""The trading state persisted beside the journal (``<journal>/state.json``).

Why: a halt (loss limit, kill switch) and a pause must survive a crash or a restart; only the
trader's explicit resume ends them. Written crash-safely (temp file, fsync, rename, fsync of the
folder) as a 0600 file through core.support.safefile. A file that cannot be read is treated as halted:
refusing entries is the safe side of not knowing.

A missing file is not taken for "running" when the journal says otherwise: every change of state
is also a row of the risk family (``risk_YYYY-MM-DD.csv``, column ``state`` = the state after the
event), so the newest such row rebuilds it: deleting state.json after a kill switch must not lift
the halt silently and let the strategy trade again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson

from core.events import TradingState
from core.journal import schema
from core.journal.errors import JournalError
from core.journal.reader import read_rows
from core.support.safefile import UnsafeFileError, check_entry, write_atomic

STATE_FILE = "state.json"


@dataclass(frozen=True, slots=True)
class SavedState:
    state: TradingState
    since: str = ""  # ISO time of the change
    rule: str = ""
    message: str = ""


def load_state(directory: Path) -> SavedState:
    """The saved state; when there is none, the state after the newest risk journal row (RUNNING
    when there is no row either); HALTED (rule ``state_file``) when anything is unreadable."""
    path = directory / STATE_FILE
    try:
        if check_entry(path) is None:
            return _from_risk_rows(directory)
        data = orjson.loads(path.read_bytes())
        return SavedState(TradingState(data["state"]), str(data.get("since") or ""),
                          str(data.get("rule") or ""), str(data.get("message") or ""))
    except (OSError, UnsafeFileError, orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        return SavedState(TradingState.HALTED, "", "state_file",
                          f"{path} could not be read ({exc}); halted until resumed")


def _from_risk_rows(directory: Path) -> SavedState:
    """The state the newest risk row left (newest day file holding a row first)."""
    files = [path for family, path in schema.day_files(directory) if family == schema.RISK]
    for path in reversed(files):  # day_files lists the oldest day first
        try:
            rows = read_rows(directory, schema.RISK, date.fromisoformat(path.stem.rpartition("_")[2]))
            if not rows:
                continue
            last = max(rows, key=lambda r: schema.parse_ts(r["ts"]))
            state = TradingState(last["state"])
        except (JournalError, ValueError, KeyError) as exc:
            return SavedState(TradingState.HALTED, "", "state_file",
                              f"{directory / STATE_FILE} is missing and {path.name} could not be read "
                              f"({exc}); halted until resumed")
        if state is TradingState.RUNNING:
            return SavedState(TradingState.RUNNING)
        return SavedState(state, last["ts"], last["rule"],
                          f"{last['message']} ({STATE_FILE} was missing: rebuilt from {path.name})")
    return SavedState(TradingState.RUNNING)


def save_state(directory: Path, saved: SavedState) -> None:
    """Write ``saved`` atomically: a crash leaves the old file or the new one, never half."""
    write_atomic(directory / STATE_FILE, orjson.dumps(
        {"state": saved.state.value, "since": saved.since, "rule": saved.rule, "message": saved.message},
        option=orjson.OPT_INDENT_2) + b"\n")
