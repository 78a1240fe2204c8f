"""The trading state persisted beside the journal (``<journal>/state.json``).

Why: a halt (loss limit, kill switch) must survive a crash or a restart; only the trader's explicit
resume ends it. Written crash-safely (temp file, fsync, rename, fsync of the folder) as a 0600 file
through core.safefile. A file that cannot be read is treated as halted: refusing entries is the
safe side of not knowing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from core.events import TradingState
from core.safefile import UnsafeFileError, check_entry, write_atomic

STATE_FILE = "state.json"


@dataclass(frozen=True, slots=True)
class SavedState:
    state: TradingState
    since: str = ""  # ISO time of the change
    rule: str = ""
    message: str = ""


def load_state(directory: Path) -> SavedState:
    """The saved state; RUNNING when there is none; HALTED (rule ``state_file``) when unreadable."""
    path = directory / STATE_FILE
    try:
        if check_entry(path) is None:
            return SavedState(TradingState.RUNNING)
        data = orjson.loads(path.read_bytes())
        return SavedState(TradingState(data["state"]), str(data.get("since") or ""),
                          str(data.get("rule") or ""), str(data.get("message") or ""))
    except (OSError, UnsafeFileError, orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        return SavedState(TradingState.HALTED, "", "state_file",
                          f"{path} could not be read ({exc}); halted until resumed")


def save_state(directory: Path, saved: SavedState) -> None:
    """Write ``saved`` atomically: a crash leaves the old file or the new one, never half."""
    write_atomic(directory / STATE_FILE, orjson.dumps(
        {"state": saved.state.value, "since": saved.since, "rule": saved.rule, "message": saved.message},
        option=orjson.OPT_INDENT_2) + b"\n")
